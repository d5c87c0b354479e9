import TallyStorage

/// Evaluates a node at every step from `start` to `end`, as Prometheus 2.42's `evaluator`: each node
/// yields a matrix with a point per step where it has a value; functions and operators see one
/// instant vector per step. Selectors stream their series' chunks step by step, so memory follows
/// series x steps (and one range window per series), never all samples of the range.
final class Evaluator {
    let start: Int64
    let end: Int64
    let interval: Int64
    let options: QueryOptions
    let querier: TenantQuerier
    let deadline: Deadline
    let budget: SampleBudget
    private let warningSink: WarningSink

    init(start: Int64, end: Int64, interval: Int64, options: QueryOptions, querier: TenantQuerier, deadline: Deadline,
         budget: SampleBudget, warnings: WarningSink = WarningSink()) {
        self.start = start
        self.end = end
        self.interval = interval
        self.options = options
        self.querier = querier
        self.deadline = deadline
        self.budget = budget
        warningSink = warnings
    }

    var warnings: [String] { warningSink.lines }

    private func child(start: Int64, end: Int64, interval: Int64) -> Evaluator {
        Evaluator(start: start, end: end, interval: interval, options: options, querier: querier, deadline: deadline,
                  budget: budget, warnings: warningSink)
    }

    var isInstant: Bool { start == end }

    /// How many steps `forEachStep` takes.
    var stepCount: Int { start > end ? 0 : Int(clamping: (end.subtractingSaturated(start)) / max(interval, 1)) &+ 1 }

    /// The evaluation times, start to end by the interval, never overflowing.
    func forEachStep(deadline: Deadline? = nil, _ body: (_ step: Int, _ ts: Int64) throws -> Void) throws {
        var nothing: Void = ()
        try forEachStep(deadline: deadline, carrying: &nothing) { step, ts, _ in try body(step, ts) }
    }

    /// `forEachStep` handing `state` to each step: a loop over a state of its own, where a closure
    /// capturing variables would have each access checked for exclusivity while the program runs.
    func forEachStep<State>(deadline: Deadline? = nil, carrying state: inout State,
                            _ body: (_ step: Int, _ ts: Int64, _ state: inout State) throws -> Void) throws {
        let deadline = deadline ?? self.deadline
        var ts = start, step = 0
        while ts <= end {
            try deadline.check()
            try body(step, ts, &state)
            step += 1
            let (next, overflow) = ts.addingReportingOverflow(interval)
            if overflow { break }
            ts = next
        }
    }

    // MARK: dispatch

    func eval(_ node: EvalNode) throws -> EvalValue {
        try deadline.check()
        switch node {
        case .number(let value):
            return .matrix(try rangeEval([]) { _, _, _ in [VectorElement(labels: Labels([]), timestamp: 0, value: value)] })
        case .string(let text):
            return .string(text)
        case .selector(let selector):
            return .matrix(try evalSelector(selector))
        case .matrix(let selector, let range):
            return .matrix(try evalMatrixSelector(selector, range: range))
        case .subquery(let subquery):
            return .matrix(try evalSubquery(subquery))
        case .aggregate(let aggregate):
            return .matrix(try evalAggregate(aggregate))
        case .binary(let binary):
            return .matrix(try evalBinary(binary))
        case .call(let call):
            return .matrix(try evalCall(call))
        case .negate(let inner):
            var matrix = try eval(inner).matrix
            for i in matrix.indices {
                matrix[i].labels = matrix[i].labels.withoutMetricName
                for j in matrix[i].points.indices { matrix[i].points[j].value = -matrix[i].points[j].value }
            }
            try Self.checkDistinct(matrix.map(\.labels))
            return .matrix(matrix)
        case .stepInvariant(let inner):
            return try evalStepInvariant(inner)
        }
    }

    static func checkDistinct(_ labelSets: [Labels]) throws(EvalFailure) {
        guard labelSets.count > 1 else { return }
        var seen = Set<Labels>(minimumCapacity: labelSets.count)
        for labels in labelSets where !seen.insert(labels).inserted {
            throw EvalFailure.execution("vector cannot contain metrics with the same labelset")
        }
    }

    // MARK: step by step

    /// Evaluates `args` (strings are left out), then calls `body` at each step with the instant
    /// vector of each argument and the step's time, and collects its answers into series.
    func rangeEval(_ args: [EvalNode], _ body: (_ vectors: [[VectorElement]], _ ts: Int64, _ step: Int) throws -> [VectorElement]) throws -> Matrix {
        var inputs: [Matrix] = []
        for arg in args {
            if case .string = arg.unwrappedInvariant { inputs.append([]) } else { inputs.append(try eval(arg).matrix) }
        }
        return try rangeEval(inputs: inputs, body)
    }

    /// `rangeEval` over arguments evaluated already; their points are released from the budget at the end.
    func rangeEval(inputs: [Matrix], _ body: (_ vectors: [[VectorElement]], _ ts: Int64, _ step: Int) throws -> [VectorElement]) throws -> Matrix {
        var cursors = inputs.map { [Int](repeating: 0, count: $0.count) }
        var output: Matrix = []
        var outputIndex: [Labels: Int] = [:]
        var lastIndices: [Int] = []
        var result: Matrix?
        try forEachStep { step, ts in
            var vectors: [[VectorElement]] = []
            vectors.reserveCapacity(inputs.count)
            for i in inputs.indices {
                var vector: [VectorElement] = []
                vector.reserveCapacity(inputs[i].count)
                inputs[i].withUnsafeBufferPointer { input in
                    cursors[i].withUnsafeMutableBufferPointer { cursor in
                        for s in input.indices {
                            let c = cursor[s]
                            guard c < input[s].points.count, input[s].points[c].timestamp == ts else { continue }
                            vector.append(VectorElement(labels: input[s].labels, timestamp: ts, value: input[s].points[c].value, series: s))
                            cursor[s] = c + 1
                        }
                    }
                }
                vectors.append(vector)
            }
            let answer = try body(vectors, ts, step)
            if isInstant {
                try Self.checkDistinct(answer.map(\.labels))
                try budget.take(answer.count)
                result = answer.map { EvalSeries(labels: $0.labels, points: [Point(timestamp: ts, value: $0.value)]) }
                return
            }
            // Each element's output series: the one the element at its place in the last step's
            // answer went to when the labels are the same (steps usually answer alike, and labels
            // that share storage compare at once), else found by a hash of its labels. A series
            // that already has a point at `ts` means this step gave its label set twice.
            var nextIndices: [Int] = []
            nextIndices.reserveCapacity(answer.count)
            defer { lastIndices = nextIndices }
            for (place, element) in answer.enumerated() {
                let index: Int
                if place < lastIndices.count, output[lastIndices[place]].labels == element.labels {
                    index = lastIndices[place]
                    guard output[index].points.last?.timestamp != ts else {
                        throw EvalFailure.execution("vector cannot contain metrics with the same labelset")
                    }
                } else if let known = outputIndex[element.labels] {
                    guard output[known].points.last?.timestamp != ts else {
                        throw EvalFailure.execution("vector cannot contain metrics with the same labelset")
                    }
                    index = known
                } else {
                    index = output.count
                    outputIndex[element.labels] = index
                    output.append(EvalSeries(labels: element.labels, points: []))
                }
                output[index].points.append(Point(timestamp: ts, value: element.value))
                nextIndices.append(index)
            }
            try budget.take(answer.count)
        }
        for input in inputs { budget.release(input.reduce(0) { $0 + $1.points.count }) }
        return result ?? output
    }

    // MARK: selectors

    /// Reads each step's value of every matching series: the newest sample at or before the
    /// step's time (less the offset), if it is at most the lookback delta old and not a staleness marker.
    private func evalSelector(_ selector: SelectorNode) throws -> Matrix {
        let lookback = options.lookbackDelta
        let (readableFrom, readableThrough) = (selector.readableFrom, selector.readableThrough)
        let series = try select(selector, from: max(start.subtractingSaturated(selector.offset).subtractingSaturated(lookback), readableFrom),
                                through: min(end.subtractingSaturated(selector.offset), readableThrough))
        let work = series.reduce(0) { $0 &+ $1.sampleCount } &+ series.count &* stepCount
        // Read through `selector` at each step, the whole node (its matchers too) was copied.
        let offset = selector.offset
        let points = try perSeries(series.count, work: work) { i, budget, deadline in
            var series = (cursor: LatestSampleCursor(series[i].makeIterator()), points: [Point]())
            try forEachStep(deadline: deadline, carrying: &series) { _, ts, series in
                let refTime = ts.subtractingSaturated(offset)
                guard let sample = series.cursor.latest(atOrBefore: min(refTime, readableThrough),
                                                        notBefore: max(refTime.subtractingSaturated(lookback), readableFrom)) else { return }
                try budget.take()
                series.points.append(Point(timestamp: ts, value: Double(bitPattern: sample.valueBits)))
            }
            return series.points
        }
        return zip(series, points).compactMap { s, points in points.isEmpty ? nil : EvalSeries(labels: s.labels, points: points) }
    }

    private func select(_ selector: SelectorNode, from minTime: Int64, through maxTime: Int64) throws -> [QueriedSeries] {
        guard minTime <= maxTime else { return [] }
        return try querier.select(selector.matchers, minTime: minTime, maxTime: maxTime)
    }

    /// A range selector asked for on its own (instant queries only): the raw samples in
    /// [t - offset - range, t - offset].
    private func evalMatrixSelector(_ selector: SelectorNode, range: Int64) throws -> Matrix {
        let maxTime = start.subtractingSaturated(selector.offset)
        let minTime = maxTime.subtractingSaturated(range)
        var matrix: Matrix = []
        for s in try select(selector, from: minTime, through: maxTime) {
            var window = RangeWindow(.stored(s.makeIterator()))
            let points = try window.slide(minTime: minTime, maxTime: maxTime, budget: budget) { Array($0) }
            if !points.isEmpty { matrix.append(EvalSeries(labels: s.labels, points: points)) }
            try deadline.check()
        }
        return matrix
    }

    /// Evaluates the inner expression over the subquery's own steps: multiples of its step,
    /// from the first after `start - offset - range` to `end - offset`.
    func evalSubquery(_ subquery: SubqueryNode) throws -> Matrix {
        let step = subquery.step > 0 ? subquery.step : max(1, options.defaultSubqueryStep)
        let earliest = start.subtractingSaturated(subquery.offset).subtractingSaturated(subquery.range)
        var first = step.multipliedSaturated(earliest / step)
        if first < earliest { first = first.addingSaturated(step) }
        var inner = subquery.expr
        if first != start { inner = inner.withAtOffsets(evaluationTime: first) }
        return try child(start: first, end: end.subtractingSaturated(subquery.offset), interval: step).eval(inner).matrix
    }

    /// A step-invariant part is evaluated once, at the start, and its value repeated at every step.
    private func evalStepInvariant(_ inner: EvalNode) throws -> EvalValue {
        switch inner {
        case .number, .string: return try eval(inner)
        default: break
        }
        let value = try child(start: start, end: start, interval: interval).eval(inner)
        switch inner {
        case .matrix, .subquery: return value
        default: break
        }
        guard case .matrix(var matrix) = value else { return value }
        for i in matrix.indices {
            guard let first = matrix[i].points.first else { continue }
            var ts = start
            while true {
                let (next, overflow) = ts.addingReportingOverflow(interval)
                if overflow || next > end { break }
                ts = next
                try deadline.check()
                try budget.take()
                matrix[i].points.append(Point(timestamp: ts, value: first.value))
            }
        }
        return .matrix(matrix)
    }
}

/// Warnings from anywhere in one query's evaluation.
final class WarningSink {
    private(set) var lines: [String] = []

    func add(_ line: String) { if !lines.contains(line) { lines.append(line) } }
}

/// The newest sample at or before a moving time, for a series read forward once. It reads a
/// batch of samples ahead and walks them step by step: one call into storage a sample cost more
/// than decoding it.
struct LatestSampleCursor {
    private var iterator: SeriesIterator
    private var ahead: [Sample] = []
    private var position = 0
    private var exhausted = false
    private var latest: Sample?

    init(_ iterator: SeriesIterator) { self.iterator = iterator }

    /// The newest sample at or before `t` if it is at `earliest` or later and not a staleness
    /// marker; neither bound ever moves back between calls. Chunks that end before `earliest`
    /// are passed over undecoded: a query whose steps are far apart (a day over a month of
    /// two-hour chunks) reads a chunk a step, not every sample.
    mutating func latest(atOrBefore t: Int64, notBefore earliest: Int64) -> Sample? {
        if position < ahead.count && ahead[ahead.count - 1].timestamp < earliest { position = ahead.count }
        while true {
            if position == ahead.count {
                if exhausted { break }
                ahead.removeAll(keepingCapacity: true)
                position = 0
                iterator.skipChunks(endingBefore: earliest)
                iterator.appendSamples(through: .max, to: &ahead, limit: 256)
                if ahead.isEmpty {
                    exhausted = true
                    break
                }
            }
            let next = ahead[position]
            guard next.timestamp <= t else { break }
            latest = next
            position += 1
        }
        guard let latest, latest.timestamp >= earliest, latest.valueBits != staleMarkerBits else { return nil }
        return latest
    }
}

extension Int64 {
    func addingSaturated(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    func subtractingSaturated(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : difference
    }

    func multipliedSaturated(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) != (other < 0) ? .min : .max) : product
    }
}
