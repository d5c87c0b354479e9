import Foundation
import TallyStorage

/// Aggregation operators, as Prometheus 2.42's `evaluator.aggregation`: groups in the order their
/// first element arrives, the same running formulas (so results agree to the last bit where
/// floating-point order matters), and `topk`/`bottomk` through Go's heap.
extension Evaluator {
    func evalAggregate(_ node: AggregateNode) throws -> Matrix {
        if let parameter = node.parameter, case .string(let label) = parameter.unwrappedInvariant {
            return try rangeEval([node.expr]) { vectors, _, _ in
                try Self.aggregate(node, countLabel: label, parameter: 0, vectors[0], keys: nil)
            }
        }
        let keys = GroupKeys()
        guard let parameter = node.parameter else {
            return try rangeEval([node.expr]) { vectors, _, _ in try Self.aggregate(node, countLabel: nil, parameter: 0, vectors[0], keys: keys) }
        }
        return try rangeEval([parameter, node.expr]) { vectors, _, _ in
            try Self.aggregate(node, countLabel: nil, parameter: vectors[0].first?.value ?? .nan, vectors[1], keys: keys)
        }
    }

    /// The group key of each input series, made once rather than at every step (a new label set and
    /// a hash of it each time); equal keys share an id, by which a step finds its groups.
    private final class GroupKeys {
        private var bySeries: [Int: (key: Labels, id: Int)] = [:]
        private var ids: [Labels: Int] = [:]

        func key(_ series: Int, _ make: () -> Labels) -> (key: Labels, id: Int) {
            if let known = bySeries[series] { return known }
            let key = make()
            let id = ids[key] ?? ids.count
            ids[key] = id
            bySeries[series] = (key, id)
            return (key, id)
        }
    }

    private final class Group {
        let labels: Labels
        var value: Double
        var mean: Double
        var count = 1
        var heap: GoHeap
        var all: [VectorElement] = []

        init(labels: Labels, first: VectorElement, heapLess: @escaping (VectorElement, VectorElement) -> Bool) {
            self.labels = labels
            value = first.value
            mean = first.value
            heap = GoHeap(elements: [first], less: heapLess)
        }
    }

    /// One step's aggregation. With `keys`, the group key of an element from `rangeEval`'s input (its
    /// `series` set) is looked up rather than made.
    private static func aggregate(_ node: AggregateNode, countLabel: String?, parameter: Double, _ vector: [VectorElement],
                                  keys: GroupKeys?) throws -> [VectorElement] {
        let op = node.op
        var k: Int64 = 0
        if op == .topk || op == .bottomk {
            guard parameter <= 9.223372036854775807e18 && parameter >= -9.223372036854775808e18 else {
                throw EvalFailure.execution("Scalar value \(GoNumbers.format(parameter)) overflows int64")
            }
            k = goInt64(parameter)
            if k < 1 { return [] }
        }
        var grouping = node.grouping
        if let countLabel {
            guard PromQL.isValidLabelName(countLabel) else { throw EvalFailure.execution("invalid label name \(GoFormat.quote(countLabel))") }
            if !node.without {
                grouping.append(countLabel)
            }
        }
        let groupingSet = Set(grouping)
        let heapLess: (VectorElement, VectorElement) -> Bool = op == .bottomk ? { GoSort.descendingNaNFirst($0, $1) } : { GoSort.ascendingNaNFirst($0, $1) }
        var groups: [Labels: Group] = [:]
        var groupsByID: [Int: Group] = [:]
        var ordered: [Group] = []
        for var element in vector {
            if let countLabel {
                element.labels = element.labels.setting(countLabel, GoNumbers.fixed(element.value))
            }
            let labels = element.labels
            let make = { node.without ? labels.removing(groupingSet.union([Labels.metricName])) : labels.keeping(groupingSet) }
            let (key, id) = element.series >= 0 ? keys.map { $0.key(element.series, make) } ?? (make(), -1) : (make(), -1)
            guard let group = id >= 0 ? groupsByID[id] : groups[key] else {
                let labels = node.without || !grouping.isEmpty ? key : Labels([])
                let group = Group(labels: labels, first: VectorElement(labels: element.labels, timestamp: 0, value: element.value), heapLess: heapLess)
                switch op {
                case .stdvar, .stddev: group.value = 0
                case .group: group.value = 1
                case .quantile: group.all = [element]
                default: break
                }
                if id >= 0 { groupsByID[id] = group } else { groups[key] = group }
                ordered.append(group)
                continue
            }
            let v = element.value
            switch op {
            case .sum:
                group.value += v
            case .avg:
                group.count += 1
                if group.mean.isInfinite {
                    if v.isInfinite && (group.mean > 0) == (v > 0) { break }
                    if !v.isInfinite && !v.isNaN { break }
                }
                group.mean += v / Double(group.count) - group.mean / Double(group.count)
            case .group:
                break
            case .max:
                if group.value < v || group.value.isNaN { group.value = v }
            case .min:
                if group.value > v || group.value.isNaN { group.value = v }
            case .count, .countValues:
                group.count += 1
            case .stdvar, .stddev:
                group.count += 1
                let delta = v - group.mean
                group.mean += delta / Double(group.count)
                group.value += delta * (v - group.mean)
            case .topk, .bottomk:
                let top = group.heap.elements[0].value
                let wins = op == .topk ? top < v : top > v
                if Int64(group.heap.elements.count) < k || wins || top.isNaN {
                    let entry = VectorElement(labels: element.labels, timestamp: 0, value: v)
                    if Int64(group.heap.elements.count) == k {
                        if k == 1 {
                            group.heap.elements[0] = entry
                            break
                        }
                        group.heap.pop()
                    }
                    group.heap.push(entry)
                }
            case .quantile:
                group.all.append(element)
            }
        }
        var out: [VectorElement] = []
        for group in ordered {
            let value: Double
            switch op {
            case .avg: value = group.mean
            case .count, .countValues: value = Double(group.count)
            case .stdvar: value = group.value / Double(group.count)
            case .stddev: value = (group.value / Double(group.count)).squareRoot()
            case .topk, .bottomk:
                var elements = group.heap.elements
                if elements.count > 1 { GoSort.sortReversed(&elements, heapLess: heapLess, ascending: op == .bottomk) }
                out += elements
                continue
            case .quantile: value = quantile(parameter, group.all.map(\.value))
            default: value = group.value
            }
            out.append(VectorElement(labels: group.labels, timestamp: 0, value: value))
        }
        return out
    }
}

/// Prometheus' `quantile`: NaN for no values or q NaN, ±Inf outside [0, 1], else linear
/// interpolation between the closest ranks.
func quantile(_ q: Double, _ values: [Double]) -> Double {
    if values.isEmpty || q.isNaN { return .nan }
    if q < 0 { return -.infinity }
    if q > 1 { return .infinity }
    // NaN sorts first, as Prometheus' `vectorByValueHeap` orders it.
    let sorted = values.sorted { a, b in a.isNaN ? !b.isNaN : (!b.isNaN && a < b) }
    let n = Double(sorted.count)
    let rank = q * (n - 1)
    let lower = max(0, rank.rounded(.down))
    let upper = min(n - 1, lower + 1)
    let weight = rank - rank.rounded(.down)
    return sorted[Int(lower)] * (1 - weight) + sorted[Int(upper)] * weight
}
