import TallyStorage

/// Function calls: those over a range vector run one series at a time over a moving window; the
/// rest step by step over instant vectors.
extension Evaluator {
    func evalCall(_ call: CallNode) throws -> Matrix {
        if call.name == "timestamp", case .selector(let selector) = call.args[0].unwrappedInvariant {
            return try evalTimestampOfSelector(selector)
        }
        guard let matrixIndex = call.args.firstIndex(where: { $0.unwrappedInvariant.valueType == .matrix }) else {
            let function = try InstantFunctions.function(call.name)
            var state = FunctionState(budget: budget, deadline: deadline)
            return try rangeEval(call.args) { vectors, ts, _ in
                try function(vectors, call.args, ts, &state)
            }
        }
        var scalarArgs: [Int: Matrix] = [:]
        for (i, arg) in call.args.enumerated() where i != matrixIndex {
            scalarArgs[i] = try eval(arg).matrix
        }
        let window: WindowedInput
        switch call.args[matrixIndex].unwrappedInvariant {
        case .matrix(let selector, let range):
            // Only the samples up to its readable end are read, as Prometheus 2.42 selects them
            // (with `@`, up to `@ - offset`); a window moving past them (a time-dependent call,
            // `predict_linear`, is evaluated at every step over an offset fixed at the start)
            // finds fewer, then none.
            let latest = selector.readableThrough
            let lo = start.subtractingSaturated(selector.offset).subtractingSaturated(range)
            let hi = min(end.subtractingSaturated(selector.offset), latest)
            let series = lo <= hi ? try querier.select(selector.matchers, minTime: lo, maxTime: hi) : []
            window = WindowedInput(series: series.map { ($0.labels, RangeWindow.Source.stored($0.makeIterator())) },
                                   range: range, offset: selector.offset, latest: latest, written: selector.written,
                                   work: series.reduce(0) { $0 &+ $1.sampleCount } &+ series.count &* stepCount)
        case .subquery(let subquery):
            let matrix = try evalSubquery(subquery)
            let offset = subquery.timestamp.map { subquery.originalOffset.addingSaturated(start.subtractingSaturated($0)) } ?? subquery.offset
            window = WindowedInput(series: matrix.map { ($0.labels, RangeWindow.Source.computed($0.points)) },
                                   range: subquery.range, offset: offset, latest: .max, written: nil,
                                   work: matrix.reduce(0) { $0 &+ $1.points.count } &+ matrix.count &* stepCount)
            let result = try evalRangeFunction(call, window, scalarArgs: scalarArgs, matrixIndex: matrixIndex)
            // The subquery's points were held only while the function read them.
            budget.release(matrix.reduce(0) { $0 + $1.points.count })
            return result
        default:
            throw EvalFailure.execution("unexpected range argument to \(call.name)")
        }
        return try evalRangeFunction(call, window, scalarArgs: scalarArgs, matrixIndex: matrixIndex)
    }

    private struct WindowedInput {
        let series: [(Labels, RangeWindow.Source)]
        let range: Int64
        let offset: Int64
        /// The newest time a window reads: a selector's readable end, none for a subquery's points.
        let latest: Int64
        /// The selector's matchers as written, for `absent_over_time`'s labels; nil for a subquery.
        let written: [LabelMatcher]?
        /// Samples and steps the windows will go through, about.
        let work: Int
    }

    private func evalRangeFunction(_ call: CallNode, _ input: WindowedInput, scalarArgs: [Int: Matrix], matrixIndex: Int) throws -> Matrix {
        let function = try RangeFunctions.function(call.name)
        // What every step reads, taken out of `input` once: read through it, the whole input (its
        // matchers too) was copied and destroyed at each step.
        let range = input.range, offset = input.offset, latest = input.latest
        let sideBySide = options.sideBySideWindows && scalarArgs.isEmpty ? RangeFunctions.sideBySide(call.name) : nil
        let points = try perSeries(input.series.count, work: input.work) { i, budget, deadline in
            // A series' points are taken from the budget once its loop is done, as Prometheus counts
            // them; more than the budget has left then fails there whatever comes after, so the
            // loop fails as soon as they pass it. A subquery of days at a millisecond step held
            // gigabytes of one series' points first.
            let room = budget.limit &- budget.current
            if let sideBySide {
                return try stepsSideBySide(RangeWindow(input.series[i].1), sideBySide, range: range, offset: offset, latest: latest,
                                           room: room, budget: budget, deadline: deadline)
            }
            var series = (window: RangeWindow(input.series[i].1), points: [Point]())
            try forEachStep(deadline: deadline, carrying: &series) { step, ts, series in
                let maxTime = ts.subtractingSaturated(offset)
                let value = try series.window.slide(minTime: maxTime.subtractingSaturated(range), maxTime: min(maxTime, latest), budget: budget) {
                    samples throws(EvalFailure) -> Double? in
                    guard !samples.isEmpty else { return nil }
                    // Scalars have a point at every step.
                    let scalars = scalarArgs.isEmpty ? [:] : scalarArgs.mapValues { $0.first.flatMap { step < $0.points.count ? $0.points[step].value : nil } ?? .nan }
                    return try function(samples, RangeContext(ts: ts, range: range, offset: offset, scalars: scalars))
                }
                if let value {
                    series.points.append(Point(timestamp: ts, value: value))
                    if series.points.count > room { throw EvalFailure.tooManySamples }
                }
            }
            series.window.release(budget)
            if !series.points.isEmpty { try budget.take(series.points.count) }
            return series.points
        }
        var matrix: Matrix = []
        for ((labels, _), points) in zip(input.series, points) where !points.isEmpty {
            matrix.append(EvalSeries(labels: call.name == "last_over_time" ? labels : labels.withoutMetricName, points: points))
        }
        if call.name == "absent_over_time" {
            return try absentOverTime(matrix, written: input.written)
        }
        try Self.checkDistinct(matrix.map(\.labels))
        return matrix
    }

    /// One series' points from a range function that works on `RangeFunctions.lanes` steps'
    /// windows at once: the points, and the samples taken from `budget`, that the step-by-step loop
    /// gives, failing as it does once the points pass `room`.
    private func stepsSideBySide(_ window: RangeWindow, _ function: RangeFunctions.SideBySide, range: Int64, offset: Int64, latest: Int64,
                                 room: Int, budget: SampleBudget, deadline: Deadline) throws -> [Point] {
        var steps = StepsSideBySide(window: window)
        try forEachStep(deadline: deadline, carrying: &steps) { _, ts, steps throws in
            let maxTime = ts.subtractingSaturated(offset)
            steps.times.append(ts)
            steps.bounds.append((maxTime.subtractingSaturated(range), min(maxTime, latest)))
            if steps.bounds.count == RangeFunctions.lanes {
                try steps.flush(function, budget: budget)
                if steps.points.count > room { throw EvalFailure.tooManySamples }
            }
        }
        try steps.flush(function, budget: budget)
        steps.window.release(budget)
        if !steps.points.isEmpty { try budget.take(steps.points.count) }
        return steps.points
    }

    /// The steps waiting to go through a side-by-side range function together, and the points so far.
    private struct StepsSideBySide {
        var window: RangeWindow
        var points: [Point] = []
        var times: [Int64] = []
        var bounds: [(minTime: Int64, maxTime: Int64)] = []
        var places: [Range<Int>] = []
        var values: [Double] = []

        mutating func flush(_ function: RangeFunctions.SideBySide, budget: SampleBudget) throws(EvalFailure) {
            guard !bounds.isEmpty else { return }
            try window.slide(over: bounds, budget: budget, places: &places, applying: function, into: &values)
            for (j, place) in places.enumerated() where !place.isEmpty { points.append(Point(timestamp: times[j], value: values[j])) }
            times.removeAll(keepingCapacity: true)
            bounds.removeAll(keepingCapacity: true)
        }
    }

    /// 1 at each step where no series had a sample in its window, with the labels the selector
    /// pins down; nothing where some series had one. Each point counts against the query's samples
    /// and the loop against its deadline, as any step's output: a range of centuries at a
    /// millisecond step must end in the samples limit, not in an allocation the machine cannot make.
    private func absentOverTime(_ present: Matrix, written: [LabelMatcher]?) throws -> Matrix {
        var found = Set<Int64>()
        for series in present { for point in series.points { found.insert(point.timestamp) } }
        // The present points end here: only their times are kept.
        budget.release(present.reduce(0) { $0 &+ $1.points.count })
        var points: [Point] = []
        try forEachStep { _, ts in
            guard !found.contains(ts) else { return }
            try budget.take()
            points.append(Point(timestamp: ts, value: 1))
        }
        guard !points.isEmpty else { return [] }
        return [EvalSeries(labels: absentLabels(written), points: points)]
    }

    /// `timestamp(selector)`: the time of the sample each step reads, not the step's own time.
    private func evalTimestampOfSelector(_ selector: SelectorNode) throws -> Matrix {
        let lookback = options.lookbackDelta
        // The newest sample at or before `latest`, and not before `earliest`. As Prometheus 2.42:
        // with `@`, the selector reads at the `@` time whatever its offset, but among the samples
        // its series were selected with, [@ - offset - lookback, @ - offset].
        func reach(_ ts: Int64) -> (latest: Int64, earliest: Int64) {
            guard let at = selector.timestamp else {
                let t = ts.subtractingSaturated(selector.offset)
                return (t, t.subtractingSaturated(lookback))
            }
            let shifted = at.subtractingSaturated(selector.originalOffset)
            return (min(at, shifted), max(at, shifted).subtractingSaturated(lookback))
        }
        let (a, b) = (reach(start), reach(end))
        let series = try querier.select(selector.matchers, minTime: min(a.earliest, b.earliest), maxTime: max(a.latest, b.latest))
        var cursors = series.map { LatestSampleCursor($0.makeIterator()) }
        return try rangeEval([]) { _, ts, _ in
            var out: [VectorElement] = []
            let (latest, earliest) = reach(ts)
            for i in series.indices {
                guard let sample = cursors[i].latest(atOrBefore: latest, notBefore: earliest) else { continue }
                out.append(VectorElement(labels: series[i].labels.withoutMetricName, timestamp: sample.timestamp,
                                         value: Double(sample.timestamp) / 1000))
            }
            return out
        }
    }
}

/// The labels `absent` and `absent_over_time` give their answer: each label an equality matcher
/// pins once (a label matched twice, or otherwise, is left out), never `__name__`.
func absentLabels(_ written: [LabelMatcher]?) -> Labels {
    guard let written else { return Labels([]) }
    var values: [String: String] = [:]
    var seen = Set<String>()
    for m in written where m.name != Labels.metricName {
        if m.kind == .equal && !seen.contains(m.name) {
            values[m.name] = m.value
            seen.insert(m.name)
        } else {
            values[m.name] = nil
        }
    }
    return Labels(values.filter { !$0.value.isEmpty }.map { Label($0.key, $0.value) })
}
