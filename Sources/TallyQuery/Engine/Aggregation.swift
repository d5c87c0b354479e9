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
        /// By input series index: nil until the series first appears.
        private var bySeries: [(key: Labels, id: Int)?] = []
        private var ids: [Labels: Int] = [:]
        var idCount: Int { ids.count }

        func key(_ series: Int, _ make: () -> Labels) -> (key: Labels, id: Int) {
            if series < bySeries.count, let known = bySeries[series] { return known }
            let key = make()
            let id = ids[key] ?? ids.count
            ids[key] = id
            if series >= bySeries.count { bySeries += Array(repeating: nil, count: series + 1 - bySeries.count) }
            bySeries[series] = (key, id)
            return (key, id)
        }
    }

    /// One group's running state within a step. A value, not an object: a step made one object per
    /// group, with a heap, which cost more than the arithmetic.
    private struct Group {
        let labels: Labels
        var value: Double
        var mean: Double
        var count = 1
        /// `topk` and `bottomk` only.
        var heap: GoHeap?
        /// `quantile` only.
        var all: [VectorElement] = []
    }

    /// One step's aggregation. With `keys`, the group key of an element from `rangeEval`'s input (its
    /// `series` set) is looked up rather than made.
    private static func aggregate(_ node: AggregateNode, countLabel: String?, parameter: Double, _ vector: [VectorElement],
                                  keys: GroupKeys?) throws -> [VectorElement] {
        // The node's fields taken once: read through `node` in the loop, the whole node (its
        // expressions too) was copied and destroyed for every element.
        let op = node.op, without = node.without
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
            if !without {
                grouping.append(countLabel)
            }
        }
        let groupingSet = Set(grouping)
        let heapLess: (VectorElement, VectorElement) -> Bool = op == .bottomk ? { GoSort.descendingNaNFirst($0, $1) } : { GoSort.ascendingNaNFirst($0, $1) }
        // Groups in the order their first element arrives, found by key id or, for elements without
        // one, by key.
        var groups: [Group] = []
        var slotByKey: [Labels: Int] = [:]
        var slotByID = [Int](repeating: -1, count: keys?.idCount ?? 0)
        for var element in vector {
            if let countLabel {
                element.labels = element.labels.setting(countLabel, GoNumbers.fixed(element.value))
            }
            let labels = element.labels
            func make() -> Labels { without ? labels.removing(groupingSet.union([Labels.metricName])) : labels.keeping(groupingSet) }
            let (key, id) = if let keys, element.series >= 0 { keys.key(element.series, make) } else { (make(), -1) }
            if id >= slotByID.count { slotByID += Array(repeating: -1, count: id + 1 - slotByID.count) }
            guard let slot = id >= 0 ? (slotByID[id] >= 0 ? slotByID[id] : nil) : slotByKey[key] else {
                var group = Group(labels: without || !grouping.isEmpty ? key : Labels([]), value: element.value, mean: element.value)
                switch op {
                case .stdvar, .stddev: group.value = 0
                case .group: group.value = 1
                case .quantile: group.all = [element]
                case .topk, .bottomk:
                    group.heap = GoHeap(elements: [VectorElement(labels: element.labels, timestamp: 0, value: element.value)], less: heapLess)
                default: break
                }
                if id >= 0 { slotByID[id] = groups.count } else { slotByKey[key] = groups.count }
                groups.append(group)
                continue
            }
            let v = element.value
            switch op {
            case .sum:
                groups[slot].value += v
            case .avg:
                groups[slot].count += 1
                let mean = groups[slot].mean
                if mean.isInfinite {
                    if v.isInfinite && (mean > 0) == (v > 0) { break }
                    if !v.isInfinite && !v.isNaN { break }
                }
                let count = Double(groups[slot].count)
                groups[slot].mean += v / count - mean / count
            case .group:
                break
            case .max:
                if groups[slot].value < v || groups[slot].value.isNaN { groups[slot].value = v }
            case .min:
                if groups[slot].value > v || groups[slot].value.isNaN { groups[slot].value = v }
            case .count, .countValues:
                groups[slot].count += 1
            case .stdvar, .stddev:
                groups[slot].count += 1
                let delta = v - groups[slot].mean
                groups[slot].mean += delta / Double(groups[slot].count)
                groups[slot].value += delta * (v - groups[slot].mean)
            case .topk, .bottomk:
                guard var heap = groups[slot].heap else { break }
                groups[slot].heap = nil
                defer { groups[slot].heap = heap }
                let top = heap.elements[0].value
                let wins = op == .topk ? top < v : top > v
                if Int64(heap.elements.count) < k || wins || top.isNaN {
                    let entry = VectorElement(labels: element.labels, timestamp: 0, value: v)
                    if Int64(heap.elements.count) == k {
                        if k == 1 {
                            heap.elements[0] = entry
                            break
                        }
                        heap.pop()
                    }
                    heap.push(entry)
                }
            case .quantile:
                groups[slot].all.append(element)
            }
        }
        var out: [VectorElement] = []
        out.reserveCapacity(groups.count)
        for group in groups {
            let value: Double
            switch op {
            case .avg: value = group.mean
            case .count, .countValues: value = Double(group.count)
            case .stdvar: value = group.value / Double(group.count)
            case .stddev: value = (group.value / Double(group.count)).squareRoot()
            case .topk, .bottomk:
                var elements = group.heap?.elements ?? []
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
