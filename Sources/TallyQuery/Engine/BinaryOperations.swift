import Foundation
import TallyStorage

/// Binary operators between scalars and vectors, with Prometheus 2.42's matching rules and errors.
extension Evaluator {
    func evalBinary(_ node: BinaryNode) throws -> Matrix {
        switch (node.lhs.valueType, node.rhs.valueType) {
        case (.scalar, .scalar):
            return try rangeEval([node.lhs, node.rhs]) { v, _, _ in
                [VectorElement(labels: Labels([]), timestamp: 0, value: Self.scalarOperation(node.op, v[0].first?.value ?? .nan, v[1].first?.value ?? .nan))]
            }
        case (.vector, .scalar):
            return try rangeEval([node.lhs, node.rhs]) { v, _, _ in
                Self.vectorScalar(node.op, v[0], v[1].first?.value ?? .nan, swapped: false, returnBool: node.returnBool)
            }
        case (.scalar, .vector):
            return try rangeEval([node.lhs, node.rhs]) { v, _, _ in
                Self.vectorScalar(node.op, v[1], v[0].first?.value ?? .nan, swapped: true, returnBool: node.returnBool)
            }
        default:
            let matching = node.matching ?? VectorMatching(cardinality: node.op.isSetOperator ? .manyToMany : .oneToOne, matchingLabels: [], on: false, include: [])
            let signature = Self.signature(matching)
            return try rangeEval([node.lhs, node.rhs]) { v, _, _ in
                switch node.op {
                case .and: return Self.and(v[0], v[1], signature)
                case .or: return Self.or(v[0], v[1], signature)
                case .unless: return Self.unless(v[0], v[1], signature)
                default: return try Self.vectorVector(node.op, v[0], v[1], matching, returnBool: node.returnBool, signature)
                }
            }
        }
    }

    /// The labels two sides are matched on: only the `on` labels, or all but `__name__` and the
    /// `ignoring` labels.
    private static func signature(_ matching: VectorMatching) -> (Labels) -> Labels {
        if matching.on {
            let names = Set(matching.matchingLabels)
            return { $0.keeping(names) }
        }
        let names = Set(matching.matchingLabels + [Labels.metricName])
        return { $0.removing(names) }
    }

    private static func and(_ lhs: [VectorElement], _ rhs: [VectorElement], _ signature: (Labels) -> Labels) -> [VectorElement] {
        guard !lhs.isEmpty, !rhs.isEmpty else { return [] }
        let right = Set(rhs.map { signature($0.labels) })
        return lhs.filter { right.contains(signature($0.labels)) }
    }

    private static func or(_ lhs: [VectorElement], _ rhs: [VectorElement], _ signature: (Labels) -> Labels) -> [VectorElement] {
        if lhs.isEmpty { return rhs }
        if rhs.isEmpty { return lhs }
        let left = Set(lhs.map { signature($0.labels) })
        return lhs + rhs.filter { !left.contains(signature($0.labels)) }
    }

    private static func unless(_ lhs: [VectorElement], _ rhs: [VectorElement], _ signature: (Labels) -> Labels) -> [VectorElement] {
        guard !lhs.isEmpty, !rhs.isEmpty else { return lhs }
        let right = Set(rhs.map { signature($0.labels) })
        return lhs.filter { !right.contains(signature($0.labels)) }
    }

    private static func vectorVector(_ op: BinaryOp, _ lhsIn: [VectorElement], _ rhsIn: [VectorElement], _ matching: VectorMatching,
                                     returnBool: Bool, _ signature: (Labels) -> Labels) throws(EvalFailure) -> [VectorElement] {
        guard !lhsIn.isEmpty, !rhsIn.isEmpty else { return [] }
        let swapped = matching.cardinality == .oneToMany
        let (lhs, rhs) = swapped ? (rhsIn, lhsIn) : (lhsIn, rhsIn)
        var right: [Labels: VectorElement] = [:]
        for element in rhs {
            let key = signature(element.labels)
            if let duplicate = right[key] {
                let matched = matching.on ? element.labels.keeping(Set(matching.matchingLabels))
                    : element.labels.removing(Set(matching.matchingLabels + [Labels.metricName]))
                throw EvalFailure.execution("found duplicate series for the match group \(matched) on the \(swapped ? "left" : "right") hand-side of the operation: [\(element.labels), \(duplicate.labels)];many-to-many matching not allowed: matching labels must be unique on one side")
            }
            right[key] = element
        }
        var matchedOneToOne = Set<Labels>()
        var matchedManyToOne: [Labels: Set<Labels>] = [:]
        var out: [VectorElement] = []
        for element in lhs {
            let key = signature(element.labels)
            guard let other = right[key] else { continue }
            let (left, rightValue) = swapped ? (other.value, element.value) : (element.value, other.value)
            var (value, keep) = elementOperation(op, left, rightValue)
            if returnBool {
                value = keep ? 1 : 0
            } else if !keep {
                continue
            }
            var labels = resultLabels(element.labels, other.labels, op, matching)
            if returnBool { labels = labels.withoutMetricName }
            if matching.cardinality == .oneToOne {
                guard matchedOneToOne.insert(key).inserted else {
                    throw EvalFailure.execution("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
                }
            } else {
                guard matchedManyToOne[key, default: []].insert(labels).inserted else {
                    throw EvalFailure.execution("multiple matches for labels: grouping labels must ensure unique matches")
                }
            }
            out.append(VectorElement(labels: labels, timestamp: 0, value: value))
        }
        return out
    }

    /// The result's labels: the "many" side's, without `__name__` for arithmetic, cut to the
    /// matching labels for one-to-one, plus the `group_x` labels from the "one" side.
    private static func resultLabels(_ lhs: Labels, _ rhs: Labels, _ op: BinaryOp, _ matching: VectorMatching) -> Labels {
        var labels = dropsMetricName(op) ? lhs.withoutMetricName : lhs
        if matching.cardinality == .oneToOne {
            labels = matching.on ? labels.keeping(Set(matching.matchingLabels)) : labels.removing(Set(matching.matchingLabels))
        }
        for name in matching.include {
            labels = labels.setting(name, rhs.value(name))
        }
        return labels
    }

    private static func vectorScalar(_ op: BinaryOp, _ vector: [VectorElement], _ scalar: Double, swapped: Bool, returnBool: Bool) -> [VectorElement] {
        var out: [VectorElement] = []
        out.reserveCapacity(vector.count)
        for var element in vector {
            let (l, r) = swapped ? (scalar, element.value) : (element.value, scalar)
            var (value, keep) = elementOperation(op, l, r)
            if op.isComparison && swapped { value = r }
            if returnBool {
                value = keep ? 1 : 0
                keep = true
            }
            guard keep else { continue }
            element.value = value
            if dropsMetricName(op) || returnBool { element.labels = element.labels.withoutMetricName }
            out.append(element)
        }
        return out
    }

    /// Arithmetic drops the metric name; comparisons, `atan2` and set operators keep it.
    private static func dropsMetricName(_ op: BinaryOp) -> Bool {
        switch op {
        case .add, .sub, .mul, .div, .pow, .mod: true
        default: false
        }
    }

    static func scalarOperation(_ op: BinaryOp, _ l: Double, _ r: Double) -> Double {
        let (value, keep) = elementOperation(op, l, r)
        return op.isComparison ? (keep ? 1 : 0) : value
    }

    /// The value and, for comparisons, whether the element is kept (the value is then the left side).
    static func elementOperation(_ op: BinaryOp, _ l: Double, _ r: Double) -> (Double, Bool) {
        switch op {
        case .add: (l + r, true)
        case .sub: (l - r, true)
        case .mul: (l * r, true)
        case .div: (l / r, true)
        case .pow: (GoMath.pow(l, r), true)
        case .mod: (fmod(l, r), true)
        case .atan2: (GoMath.atan2(l, r), true)
        case .equal: (l, l == r)
        case .notEqual: (l, l != r)
        case .greater: (l, l > r)
        case .less: (l, l < r)
        case .greaterOrEqual: (l, l >= r)
        case .lessOrEqual: (l, l <= r)
        case .and, .or, .unless: (l, true)
        }
    }
}
