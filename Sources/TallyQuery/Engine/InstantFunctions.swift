import Foundation
import TallyStorage

/// What a function keeps from one step to the next: `label_replace`'s compiled regex, which finds
/// its groups in time linear in the value, as the label matchers do, and the label values it and
/// `label_join` made, each made (and counted against the query's budget) once, not once per step.
struct FunctionState {
    let budget: SampleBudget
    /// The query's deadline, which `label_replace` checks while it matches a long value.
    let deadline: Deadline
    var regex: LinearRegex?
    /// `label_replace`'s new value for each source value (nil where the regex does not match),
    /// keyed by bytes as all label values are (see `ByteString`).
    var replacements: [ByteString: String?] = [:]
    /// `label_join`'s value for each list of source values.
    var joins: [[ByteString]: String] = [:]

    init(budget: SampleBudget, deadline: Deadline) {
        self.budget = budget
        self.deadline = deadline
    }
}

/// The functions over instant vectors and scalars, as Prometheus 2.42 computes them. Each gets
/// the step's vector per argument (a scalar is a one-element vector, a string an empty one), the
/// argument nodes (for strings and `absent`'s labels) and the step's time.
enum InstantFunctions {
    typealias Function = ([[VectorElement]], [EvalNode], Int64, inout FunctionState) throws(EvalFailure) -> [VectorElement]

    static func function(_ name: String) throws(EvalFailure) -> Function {
        if let f = mathFunctions[name] { return { v, _, _, _ in map(v[0], f) } }
        switch name {
        case "abs": return { v, _, _, _ in map(v[0], abs) }
        case "absent":
            return { v, args, _, _ in
                guard v[0].isEmpty else { return [] }
                if case .selector(let selector) = args[0] { return [VectorElement(labels: absentLabels(selector.written), timestamp: 0, value: 1)] }
                return [VectorElement(labels: Labels([]), timestamp: 0, value: 1)]
            }
        case "clamp":
            return { v, _, _, _ in
                let low = scalar(v[1]), high = scalar(v[2])
                guard !(high < low) else { return [] }
                return map(v[0]) { goMax(low, goMin(high, $0)) }
            }
        case "clamp_max": return { v, _, _, _ in let high = scalar(v[1]); return map(v[0]) { goMin(high, $0) } }
        case "clamp_min": return { v, _, _, _ in let low = scalar(v[1]); return map(v[0]) { goMax(low, $0) } }
        case "round":
            return { v, _, _, _ in
                let inverse = 1.0 / (v.count > 1 ? scalar(v[1]) : 1)
                return map(v[0]) { ($0 * inverse + 0.5).rounded(.down) / inverse }
            }
        case "scalar": return { v, _, _, _ in [element(v[0].count == 1 ? v[0][0].value : .nan)] }
        case "vector": return { v, _, _, _ in [element(scalar(v[0]))] }
        case "time": return { _, _, ts, _ in [element(Double(ts) / 1000)] }
        case "pi": return { _, _, _, _ in [element(.pi)] }
        case "timestamp":
            return { v, _, _, _ in v[0].map { VectorElement(labels: $0.labels.withoutMetricName, timestamp: 0, value: Double($0.timestamp) / 1000) } }
        case "sort":
            return { v, _, _, _ in
                var out = v[0]
                GoSort.sortReversed(&out, heapLess: GoSort.descendingNaNFirst)
                return out
            }
        case "sort_desc":
            return { v, _, _, _ in
                var out = v[0]
                GoSort.sortReversed(&out, heapLess: GoSort.ascendingNaNFirst)
                return out
            }
        case "histogram_quantile": return { v, _, _, _ in histogramQuantile(scalar(v[0]), v[1]) }
        // The engine reads no native histograms yet: every sample is a float, which these skip.
        case "histogram_count", "histogram_sum", "histogram_fraction": return { _, _, _, _ in [] }
        case "label_replace": return labelReplace
        case "label_join": return labelJoin
        default:
            if let field = DateFunctions.fields[name] {
                return { v, _, ts, _ in
                    guard let vector = v.first else { return [element(field(DateFunctions.civil(seconds: ts / 1000)))] }
                    return vector.map {
                        VectorElement(labels: $0.labels.withoutMetricName, timestamp: 0, value: field(DateFunctions.civil(seconds: goInt64($0.value))))
                    }
                }
            }
            throw EvalFailure.execution("unknown function \(name)")
        }
    }

    private static let mathFunctions: [String: @Sendable (Double) -> Double] = [
        "ceil": { $0.rounded(.up) }, "floor": { $0.rounded(.down) }, "exp": GoMath.exp, "sqrt": { $0.squareRoot() },
        "ln": GoMath.log, "log2": GoMath.log2, "log10": GoMath.log10,
        "sin": GoMath.sin, "cos": GoMath.cos, "tan": GoMath.tan,
        "asin": GoMath.asin, "acos": GoMath.acos, "atan": GoMath.atan,
        "sinh": GoMath.sinh, "cosh": GoMath.cosh, "tanh": GoMath.tanh,
        "asinh": GoMath.asinh, "acosh": GoMath.acosh, "atanh": GoMath.atanh,
        "rad": { $0 * .pi / 180 }, "deg": { $0 * 180 / .pi },
        "sgn": { $0 < 0 ? -1 : ($0 > 0 ? 1 : $0) },
    ]

    private static func map(_ vector: [VectorElement], _ f: (Double) -> Double) -> [VectorElement] {
        vector.map { VectorElement(labels: $0.labels.withoutMetricName, timestamp: 0, value: f($0.value)) }
    }

    private static func element(_ value: Double) -> VectorElement { VectorElement(labels: Labels([]), timestamp: 0, value: value) }

    private static func scalar(_ vector: [VectorElement]) -> Double { vector.first?.value ?? .nan }

    /// The text of a string argument.
    private static func string(_ node: EvalNode) -> String {
        if case .string(let text) = node.unwrappedInvariant { return text }
        return ""
    }

    private static func labelReplace(_ v: [[VectorElement]], _ args: [EvalNode], _ ts: Int64, _ state: inout FunctionState) throws(EvalFailure) -> [VectorElement] {
        let destination = string(args[1]), replacement = string(args[2]), source = string(args[3]), pattern = string(args[4])
        if state.regex == nil {
            guard RegexSyntax.refusal(of: pattern, isUTF8: true) == nil, let regex = LinearRegex(pattern) else {
                throw EvalFailure.execution("invalid regular expression in label_replace(): \(pattern)")
            }
            guard PromQL.isValidLabelName(destination) else {
                throw EvalFailure.execution("invalid destination label name in label_replace(): \(destination)")
            }
            state.regex = regex
        }
        let regex = state.regex!
        var out: [VectorElement] = []
        out.reserveCapacity(v[0].count)
        for element in v[0] {
            let value = element.labels.value(source)
            let expanded: String?
            if let known = state.replacements[ByteString(value)] {
                expanded = known
            } else {
                if let groups = try regex.captures(value, check: state.deadline.check) {
                    guard let made = GoTemplate.expand(replacement, groups: groups, names: regex.groupNames, limit: state.budget.labelByteLimit) else {
                        throw EvalFailure.labelBytesExceeded("label_replace", limit: state.budget.labelByteLimit)
                    }
                    try state.budget.takeLabelBytes(made.utf8.count, in: "label_replace")
                    expanded = made
                } else {
                    expanded = nil
                }
                state.replacements[ByteString(value)] = .some(expanded)
            }
            out.append(VectorElement(labels: expanded.map { element.labels.setting(destination, $0) } ?? element.labels, timestamp: 0, value: element.value))
        }
        return out
    }

    private static func labelJoin(_ v: [[VectorElement]], _ args: [EvalNode], _ ts: Int64, _ state: inout FunctionState) throws(EvalFailure) -> [VectorElement] {
        let destination = string(args[1]), separator = string(args[2])
        var sources: [String] = []
        for arg in args.dropFirst(3) {
            let source = string(arg)
            guard PromQL.isValidLabelName(source) else { throw EvalFailure.execution("invalid source label name in label_join(): \(source)") }
            sources.append(source)
        }
        guard PromQL.isValidLabelName(destination) else { throw EvalFailure.execution("invalid destination label name in label_join(): \(destination)") }
        var out: [VectorElement] = []
        out.reserveCapacity(v[0].count)
        for element in v[0] {
            let values = sources.map { element.labels.value($0) }
            let joined: String
            let key = values.map { ByteString($0) }
            if let known = state.joins[key] {
                joined = known
            } else {
                try state.budget.takeLabelBytes(values.reduce(separator.utf8.count * max(0, values.count - 1)) { $0 + $1.utf8.count }, in: "label_join")
                joined = values.joined(separator: separator)
                state.joins[key] = joined
            }
            out.append(VectorElement(labels: element.labels.setting(destination, joined), timestamp: 0, value: element.value))
        }
        return out
    }

    /// Classic histograms: per series without `le`, the buckets' `le` and counts, interpolated.
    private static func histogramQuantile(_ q: Double, _ vector: [VectorElement]) -> [VectorElement] {
        var groups: [Labels: (labels: Labels, buckets: [(upperBound: Double, count: Double)])] = [:]
        var order: [Labels] = []
        for element in vector {
            // Prometheus skips a bucket whose bound `strconv.ParseFloat` refuses.
            guard case let .value(upperBound) = GoNumbers.parseFloat(element.labels.value("le")) else { continue }
            let key = element.labels.removing(["le"])
            if groups[key] == nil {
                groups[key] = (element.labels.removing(["le", Labels.metricName]), [])
                order.append(key)
            }
            groups[key]!.buckets.append((upperBound, element.value))
        }
        return order.map { key in
            let group = groups[key]!
            return VectorElement(labels: group.labels, timestamp: 0, value: bucketQuantile(q, group.buckets))
        }
    }

    static func bucketQuantile(_ q: Double, _ unsorted: [(upperBound: Double, count: Double)]) -> Double {
        if q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        var sorted = unsorted.sorted { $0.upperBound < $1.upperBound }
        guard let last = sorted.last, last.upperBound == .infinity else { return .nan }
        // Buckets with the same bound are added together, then counts made non-decreasing.
        var buckets: [(upperBound: Double, count: Double)] = []
        for b in sorted {
            if let previous = buckets.last, previous.upperBound == b.upperBound {
                buckets[buckets.count - 1].count += b.count
            } else {
                buckets.append(b)
            }
        }
        sorted = buckets
        var maximum = sorted[0].count
        for i in sorted.indices.dropFirst() {
            if sorted[i].count > maximum { maximum = sorted[i].count } else if sorted[i].count < maximum { sorted[i].count = maximum }
        }
        guard sorted.count >= 2 else { return .nan }
        let observations = sorted[sorted.count - 1].count
        guard observations != 0 else { return .nan }
        var rank = q * observations
        // sort.Search over all but the last bucket: the first whose count reaches the rank.
        var low = 0, high = sorted.count - 1
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle].count >= rank { high = middle } else { low = middle + 1 }
        }
        let b = low
        if b == sorted.count - 1 { return sorted[sorted.count - 2].upperBound }
        if b == 0 && sorted[0].upperBound <= 0 { return sorted[0].upperBound }
        var bucketStart = 0.0
        let bucketEnd = sorted[b].upperBound
        var count = sorted[b].count
        if b > 0 {
            bucketStart = sorted[b - 1].upperBound
            count -= sorted[b - 1].count
            rank -= sorted[b - 1].count
        }
        return bucketStart + (bucketEnd - bucketStart) * (rank / count)
    }

}

/// Go's `math.Max`: +Inf wins, then NaN; +0 beats -0.
func goMax(_ x: Double, _ y: Double) -> Double {
    if x == .infinity || y == .infinity { return .infinity }
    if x.isNaN || y.isNaN { return .nan }
    if x == 0 && x == y { return x.sign == .minus ? y : x }
    return x > y ? x : y
}

/// Go's `math.Min`: -Inf wins, then NaN; -0 beats +0.
func goMin(_ x: Double, _ y: Double) -> Double {
    if x == -.infinity || y == -.infinity { return -.infinity }
    if x.isNaN || y.isNaN { return .nan }
    if x == 0 && x == y { return x.sign == .minus ? x : y }
    return x < y ? x : y
}
