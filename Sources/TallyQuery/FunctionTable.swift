/// A PromQL function's signature, as in Prometheus 2.42's function table (`promql/parser/functions.go`):
/// the parser checks calls against it before anything is evaluated.
public struct PromQLFunction: Sendable, Equatable, Hashable {
    public let name: String
    public let argTypes: [ValueType]
    /// 0: exactly `argTypes.count` arguments. n > 0: the last argument type is optional and may be
    /// given up to n times. -1: the last argument type repeats without limit.
    public let variadic: Int
    public let returnType: ValueType

    init(name: String, argTypes: [ValueType], variadic: Int = 0, returnType: ValueType) {
        self.name = name
        self.argTypes = argTypes
        self.variadic = variadic
        self.returnType = returnType
    }

    /// The functions of Prometheus 2.42, by name.
    public static let all: [String: PromQLFunction] = Dictionary(uniqueKeysWithValues: table.map { ($0.name, $0) })

    private static let table: [PromQLFunction] = [
        PromQLFunction(name: "abs", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "absent", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "absent_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "acos", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "acosh", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "asin", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "asinh", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "atan", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "atanh", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "avg_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "ceil", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "changes", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "clamp", argTypes: [.vector, .scalar, .scalar], returnType: .vector),
        PromQLFunction(name: "clamp_max", argTypes: [.vector, .scalar], returnType: .vector),
        PromQLFunction(name: "clamp_min", argTypes: [.vector, .scalar], returnType: .vector),
        PromQLFunction(name: "cos", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "cosh", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "count_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "days_in_month", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "day_of_month", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "day_of_week", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "day_of_year", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "deg", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "delta", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "deriv", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "exp", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "floor", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "histogram_count", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "histogram_sum", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "histogram_fraction", argTypes: [.scalar, .scalar, .vector], returnType: .vector),
        PromQLFunction(name: "histogram_quantile", argTypes: [.scalar, .vector], returnType: .vector),
        PromQLFunction(name: "holt_winters", argTypes: [.matrix, .scalar, .scalar], returnType: .vector),
        PromQLFunction(name: "hour", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "idelta", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "increase", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "irate", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "label_replace", argTypes: [.vector, .string, .string, .string, .string], returnType: .vector),
        PromQLFunction(name: "label_join", argTypes: [.vector, .string, .string, .string], variadic: -1, returnType: .vector),
        PromQLFunction(name: "last_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "ln", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "log10", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "log2", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "max_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "min_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "minute", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "month", argTypes: [.vector], variadic: 1, returnType: .vector),
        PromQLFunction(name: "pi", argTypes: [], returnType: .scalar),
        PromQLFunction(name: "predict_linear", argTypes: [.matrix, .scalar], returnType: .vector),
        PromQLFunction(name: "present_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "quantile_over_time", argTypes: [.scalar, .matrix], returnType: .vector),
        PromQLFunction(name: "rad", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "rate", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "resets", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "round", argTypes: [.vector, .scalar], variadic: 1, returnType: .vector),
        PromQLFunction(name: "scalar", argTypes: [.vector], returnType: .scalar),
        PromQLFunction(name: "sgn", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "sin", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "sinh", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "sort", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "sort_desc", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "sqrt", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "stddev_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "stdvar_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "sum_over_time", argTypes: [.matrix], returnType: .vector),
        PromQLFunction(name: "tan", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "tanh", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "time", argTypes: [], returnType: .scalar),
        PromQLFunction(name: "timestamp", argTypes: [.vector], returnType: .vector),
        PromQLFunction(name: "vector", argTypes: [.scalar], returnType: .vector),
        PromQLFunction(name: "year", argTypes: [.vector], variadic: 1, returnType: .vector),
    ]
}
