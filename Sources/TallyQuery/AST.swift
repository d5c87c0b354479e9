/// The PromQL syntax tree, as Prometheus 2.42's `promql/parser` builds it: one case per node kind,
/// each a plain value. Positions are byte offsets into the query text, so an error found later (by the
/// type checker, or at evaluation) can point at the part of the query it is about.

/// Byte offsets `[start, end)` of a node in the query text.
public struct PositionRange: Sendable, Equatable, Hashable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
}

/// The four PromQL value types, plus `none` for what has no value.
public enum ValueType: Sendable, Equatable {
    case none, scalar, vector, matrix, string

    /// The name in Prometheus' type-check messages ("expected type range vector ...").
    public var documentedName: String {
        switch self {
        case .vector: "instant vector"
        case .matrix: "range vector"
        default: internalName
        }
    }

    /// The name Prometheus prints with `%s` (the subquery message uses it).
    public var internalName: String {
        switch self {
        case .none: "none"
        case .scalar: "scalar"
        case .vector: "vector"
        case .matrix: "matrix"
        case .string: "string"
        }
    }
}

public indirect enum Expr: Sendable, Equatable {
    case number(NumberLiteral)
    case string(StringLiteral)
    case vectorSelector(VectorSelector)
    case matrixSelector(MatrixSelector)
    case subquery(SubqueryExpr)
    case aggregate(AggregateExpr)
    case binary(BinaryExpr)
    case call(Call)
    case paren(ParenExpr)
    case unary(UnaryExpr)

    /// The type the expression evaluates to (`Expr.Type()` in Prometheus).
    public var type: ValueType {
        switch self {
        case .number: .scalar
        case .string: .string
        case .vectorSelector, .aggregate: .vector
        case .matrixSelector, .subquery: .matrix
        case .binary(let b): b.lhs.type == .scalar && b.rhs.type == .scalar ? .scalar : .vector
        case .call(let c): c.function.returnType
        case .paren(let p): p.expr.type
        case .unary(let u): u.expr.type
        }
    }

    public var position: PositionRange {
        switch self {
        case .number(let n): n.position
        case .string(let s): s.position
        case .vectorSelector(let v): v.position
        case .matrixSelector(let m): m.position
        case .subquery(let s): s.position
        case .aggregate(let a): a.position
        case .binary(let b): PositionRange(start: b.lhs.position.start, end: b.rhs.position.end)
        case .call(let c): c.position
        case .paren(let p): p.position
        case .unary(let u): PositionRange(start: u.start, end: u.expr.position.end)
        }
    }
}

public struct NumberLiteral: Sendable, Equatable {
    public var value: Double
    public var position: PositionRange

    /// Two literals are the same when their bits are: NaN equals NaN, 0 differs from -0.
    public static func == (lhs: NumberLiteral, rhs: NumberLiteral) -> Bool {
        lhs.value.bitPattern == rhs.value.bitPattern && lhs.position == rhs.position
    }
}

public struct StringLiteral: Sendable, Equatable {
    public var value: String
    public var position: PositionRange
}

public struct LabelMatcher: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable {
        case equal = "=", notEqual = "!=", regexMatch = "=~", regexNoMatch = "!~"
    }

    public var name: String
    public var kind: Kind
    public var value: String

    public init(name: String, kind: Kind, value: String) {
        self.name = name
        self.kind = kind
        self.value = value
    }
}

/// `@ <timestamp>`, `@ start()` or `@ end()`.
public enum AtModifier: Sendable, Equatable {
    /// Milliseconds since the epoch.
    case timestamp(Int64)
    case start
    case end
}

public struct VectorSelector: Sendable, Equatable {
    /// The metric name written before the braces, if any.
    public var name: String?
    /// The matchers written inside the braces, in the order written.
    public var matchers: [LabelMatcher]
    /// `offset` in milliseconds (negative looks ahead); 0 when absent.
    public var offset: Int64
    public var at: AtModifier?
    public var position: PositionRange

    /// Every matcher a series must pass: the braces' matchers, then `__name__` for a written name.
    public var allMatchers: [LabelMatcher] {
        guard let name else { return matchers }
        return matchers + [LabelMatcher(name: LabelMatcher.metricNameLabel, kind: .equal, value: name)]
    }
}

extension LabelMatcher {
    public static let metricNameLabel = "__name__"
}

public struct MatrixSelector: Sendable, Equatable {
    /// The selector the range applies to; its offset and `@` belong to the range selector.
    public var selector: VectorSelector
    /// Milliseconds.
    public var range: Int64
    public var position: PositionRange
}

public struct SubqueryExpr: Sendable, Equatable {
    public var expr: Expr
    /// Milliseconds.
    public var range: Int64
    /// Milliseconds; 0 means the default evaluation interval.
    public var step: Int64
    public var offset: Int64
    public var at: AtModifier?
    public var position: PositionRange
}

public enum AggregateOp: String, Sendable, CaseIterable {
    case sum, avg, count, min, max, group, stddev, stdvar, topk, bottomk
    case countValues = "count_values"
    case quantile

    /// The kind of the parameter before the vector argument, for the four that take one.
    var parameterType: ValueType? {
        switch self {
        case .topk, .bottomk, .quantile: .scalar
        case .countValues: .string
        default: nil
        }
    }
}

public struct AggregateExpr: Sendable, Equatable {
    public var op: AggregateOp
    public var expr: Expr
    public var parameter: Expr?
    public var grouping: [String]
    public var without: Bool
    public var position: PositionRange
}

public enum BinaryOp: String, Sendable, CaseIterable {
    case add = "+", sub = "-", mul = "*", div = "/", mod = "%", pow = "^", atan2
    case equal = "==", notEqual = "!=", greater = ">", less = "<", greaterOrEqual = ">=", lessOrEqual = "<="
    case and, or, unless

    public var isComparison: Bool {
        switch self {
        case .equal, .notEqual, .greater, .less, .greaterOrEqual, .lessOrEqual: true
        default: false
        }
    }

    public var isSetOperator: Bool { self == .and || self == .or || self == .unless }

    /// Higher binds tighter: `or` < `and unless` < comparisons < `+ -` < `* / % atan2` < `^`.
    var precedence: Int {
        switch self {
        case .or: 1
        case .and, .unless: 2
        case .equal, .notEqual, .greater, .less, .greaterOrEqual, .lessOrEqual: 3
        case .add, .sub: 4
        case .mul, .div, .mod, .atan2: 5
        case .pow: 6
        }
    }

    var isRightAssociative: Bool { self == .pow }
}

public struct VectorMatching: Sendable, Equatable {
    public enum Cardinality: Sendable {
        case oneToOne, manyToOne, oneToMany, manyToMany
    }

    public var cardinality: Cardinality
    /// The `on` or `ignoring` labels.
    public var matchingLabels: [String]
    /// `on` (true) or `ignoring` (false).
    public var on: Bool
    /// The `group_left` / `group_right` labels.
    public var include: [String]

    public init(cardinality: Cardinality, matchingLabels: [String], on: Bool, include: [String]) {
        self.cardinality = cardinality
        self.matchingLabels = matchingLabels
        self.on = on
        self.include = include
    }
}

public struct BinaryExpr: Sendable, Equatable {
    public var op: BinaryOp
    public var lhs: Expr
    public var rhs: Expr
    /// Present only between two instant vectors once the type checker has run.
    public var matching: VectorMatching?
    public var returnBool: Bool
}

public struct Call: Sendable, Equatable {
    public var function: PromQLFunction
    public var args: [Expr]
    public var position: PositionRange
}

public struct ParenExpr: Sendable, Equatable {
    public var expr: Expr
    public var position: PositionRange
}

public enum UnaryOp: String, Sendable {
    case plus = "+", minus = "-"
}

public struct UnaryExpr: Sendable, Equatable {
    public var op: UnaryOp
    public var expr: Expr
    /// Offset of the operator.
    public var start: Int
}
