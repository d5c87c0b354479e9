import Foundation
import TallyStorage

/// Aggregation operators, as Prometheus 2.42's `evaluator.aggregation`: groups in the order their
/// first element arrives, the same running formulas (so results agree to the last bit where
/// floating-point order matters), and `topk`/`bottomk` through Go's heap.
extension Evaluator {
    func evalAggregate(_ node: AggregateNode) throws -> Matrix {
        if let parameter = node.parameter, case .string(let label) = parameter.unwrappedInvariant {
            node.countValuesGrouping?.startEvaluation()
            return try rangeEval([node.expr]) { vectors, _, _ in
                try Self.aggregate(node, countLabel: label, parameter: 0, vectors[0], keys: nil)
            }
        }
        guard let parameter = node.parameter else {
            let input = try eval(node.expr).matrix
            return try fold(node, input) ?? stepped(node, input)
        }
        let keys = GroupKeys()
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

    /// The aggregations without a parameter over a range, one input series at a time rather than one
    /// step at a time: each group's state at each step takes its series' values in the order the
    /// step's vector would give them (input order), so the answers are the same to the bit, without a
    /// vector per step. Series come out in the order `rangeEval` would make them: by the step each
    /// group first has a value, then by the input series that gave it. Nil (nothing done) for an
    /// instant query, an input point off the step grid, or more groups x steps than input points
    /// (the state would outgrow the input).
    func fold(_ node: AggregateNode, _ input: Matrix) throws -> Matrix? {
        let op = node.op, without = node.without, grouping = Set(node.grouping)
        guard !isInstant, node.parameter == nil, op != .countValues, op != .quantile, op != .topk, op != .bottomk else { return nil }
        let steps = stepCount
        let keys = GroupKeys()
        let groupOfSeries = input.indices.map { s in
            keys.key(s) { without ? input[s].labels.removing(grouping.union([Labels.metricName])) : input[s].labels.keeping(grouping) }
        }
        let inputPoints = input.reduce(0) { $0 &+ $1.points.count }
        let (cells, overflow) = keys.idCount.multipliedReportingOverflow(by: steps)
        guard !overflow, cells <= inputPoints else { return nil }
        // A cell per group and step; `count` 0 until a value comes.
        var state = [Running](repeating: Running(first: 0, .count, count: 0), count: cells)
        var firstStep = [Int](repeating: .max, count: keys.idCount)
        var firstSeries = [Int](repeating: 0, count: keys.idCount)
        var filled = 0
        for s in input.indices {
            try deadline.check()
            let group = groupOfSeries[s].id, row = group * steps
            for point in input[s].points {
                guard let step = stepIndex(of: point.timestamp) else { return nil }
                let cell = row + step
                guard state[cell].count > 0 else {
                    state[cell] = Running(first: point.value, op)
                    filled += 1
                    // Input order: the first series to reach a group's first step is the one `rangeEval` meets first.
                    if step < firstStep[group] { (firstStep[group], firstSeries[group]) = (step, s) }
                    continue
                }
                state[cell].add(point.value, op)
            }
        }
        try budget.take(filled)
        budget.release(inputPoints)
        var labels = [Labels](repeating: Labels([]), count: keys.idCount)
        if without || !grouping.isEmpty { for entry in groupOfSeries { labels[entry.id] = entry.key } }
        let order = (0..<keys.idCount).filter { firstStep[$0] != .max }.sorted { (firstStep[$0], firstSeries[$0]) < (firstStep[$1], firstSeries[$1]) }
        return order.map { group in
            var points: [Point] = []
            for step in firstStep[group]..<steps where state[group * steps + step].count > 0 {
                points.append(Point(timestamp: start &+ Int64(step) &* interval, value: state[group * steps + step].result(op)))
            }
            return EvalSeries(labels: labels[group], points: points)
        }
    }

    /// An aggregation without a parameter over its evaluated input, step by step (`rangeEval`'s way).
    func stepped(_ node: AggregateNode, _ input: Matrix) throws -> Matrix {
        let keys = GroupKeys()
        return try rangeEval(inputs: [input]) { vectors, _, _ in try Self.aggregate(node, countLabel: nil, parameter: 0, vectors[0], keys: keys) }
    }

    /// The step whose time `timestamp` is, if it is one.
    private func stepIndex(of timestamp: Int64) -> Int? {
        guard interval > 0, timestamp >= start, timestamp <= end else { return nil }
        let offset = (timestamp &- start).quotientAndRemainder(dividingBy: interval)
        return offset.remainder == 0 ? Int(offset.quotient) : nil
    }

    /// The running state of `sum`, `avg`, `count`, `group`, `min`, `max`, `stddev` and `stdvar` for
    /// one group, with Prometheus 2.42's formulas.
    struct Running {
        var value: Double
        var mean: Double
        var count: Int

        /// The state after the group's first value.
        init(first v: Double, _ op: AggregateOp, count: Int = 1) {
            switch op {
            case .stdvar, .stddev: value = 0
            case .group: value = 1
            default: value = v
            }
            mean = v
            self.count = count
        }

        mutating func add(_ v: Double, _ op: AggregateOp) {
            switch op {
            case .sum:
                value += v
            case .avg:
                count += 1
                if mean.isInfinite {
                    if v.isInfinite && (mean > 0) == (v > 0) { return }
                    if !v.isInfinite && !v.isNaN { return }
                }
                let n = Double(count)
                mean += v / n - mean / n
            case .max:
                if value < v || value.isNaN { value = v }
            case .min:
                if value > v || value.isNaN { value = v }
            case .count, .countValues:
                count += 1
            case .stdvar, .stddev:
                count += 1
                let delta = v - mean
                mean += delta / Double(count)
                value += delta * (v - mean)
            case .group, .topk, .bottomk, .quantile:
                break
            }
        }

        func result(_ op: AggregateOp) -> Double {
            switch op {
            case .avg: mean
            case .count, .countValues: Double(count)
            case .stdvar: value / Double(count)
            case .stddev: (value / Double(count)).squareRoot()
            default: value
            }
        }
    }

    /// One group's running state within a step. A value, not an object: a step made one object per
    /// group, with a heap, which cost more than the arithmetic.
    private struct Group {
        let labels: Labels
        var running: Running
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
            // Prometheus' `convertibleToInt64`: at most the largest float64 below 2^63 (a literal
            // 9223372036854775807 is 2^63 as a float64, and overflows).
            guard parameter <= 9_223_372_036_854_774_784 && parameter >= -9_223_372_036_854_775_808 else {
                throw EvalFailure.execution("Scalar value \(GoNumbers.format(parameter)) overflows int64")
            }
            k = goInt64(parameter)
            if k < 1 { return [] }
        }
        var groupingSet = Set(node.grouping)
        if let countLabel {
            guard PromQL.isValidLabelName(countLabel) else { throw EvalFailure.execution("invalid label name \(GoFormat.quote(countLabel))") }
            if let list = node.countValuesGrouping { groupingSet = list.step(valueLabel: countLabel) }
        }
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
                var group = Group(labels: without || !groupingSet.isEmpty ? key : Labels([]), running: Running(first: element.value, op))
                switch op {
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
            case .sum, .avg, .group, .max, .min, .count, .countValues, .stdvar, .stddev:
                groups[slot].running.add(v, op)
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
            case .topk, .bottomk:
                var elements = group.heap?.elements ?? []
                if elements.count > 1 { GoSort.sortReversed(&elements, heapLess: heapLess) }
                out += elements
                continue
            case .quantile: value = quantile(parameter, group.all.map(\.value))
            default: value = group.running.result(op)
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
    // Sorted by Go's sort with `vectorByValueHeap.Less` (NaN first): 0 and -0 compare equal, and
    // which of them lands at a rank is where Go's steps leave them (`count_values` shows the sign).
    var sorted = values
    GoPdqsort.sort(&sorted) { a, b in a.isNaN || a < b }
    let n = Double(sorted.count)
    let rank = q * (n - 1)
    let lower = max(0, rank.rounded(.down))
    let upper = min(n - 1, lower + 1)
    let weight = rank - rank.rounded(.down)
    return sorted[Int(lower)] * (1 - weight) + sorted[Int(upper)] * weight
}
