import TallyStorage

/// The samples of one series in a window that moves forward: [minTime, maxTime], both closed, as
/// in Prometheus 2.42, without a stored series' staleness markers. Samples that leave the window
/// are dropped.
///
/// The window keeps its samples as storage hands them over, in one array that the iterator appends
/// to and the range functions read in place as points (`Sample` and `Point` are both a timestamp
/// and 64 value bits): copying every sample into a second array of points, one append at a time,
/// cost more than decoding it.
struct RangeWindow {
    enum Source {
        case stored(SeriesIterator)
        case computed([Point])
    }

    /// The source, split so that a stored series' iterator advances in place: held in the enum (or
    /// an optional), it was copied out and back, its arrays retained and released, for every sample.
    private var iterator: SeriesIterator
    private let isStored: Bool
    private let computed: [Point]
    private var position = 0
    /// The window is `samples[first...]`; the samples before `first` have left it and are removed
    /// once they are at least half the array.
    private var samples: [Sample] = []
    private var first = 0

    init(_ source: Source) {
        switch source {
        case .stored(let iterator):
            self.iterator = iterator
            isStored = true
            computed = []
        case .computed(let all):
            iterator = SeriesIterator()
            isStored = false
            computed = all
        }
    }

    /// Moves the window to [minTime, maxTime] (neither ever moving back) and calls `body` with its
    /// samples, which stay valid only during the call.
    mutating func slide<Result>(minTime: Int64, maxTime: Int64, budget: SampleBudget,
                                _ body: (UnsafeBufferPointer<Point>) throws(EvalFailure) -> Result) throws(EvalFailure) -> Result {
        let kept = samples.count - first
        dropSamples(before: minTime)
        budget.release(kept - (samples.count - first))
        let before = samples.count
        load(minTime: minTime, maxTime: maxTime)
        try budget.take(samples.count - before)
        return try samples.withUnsafeBufferPointer { all throws(EvalFailure) in
            try UnsafeBufferPointer(rebasing: all[first...]).withMemoryRebound(to: Point.self, body)
        }
    }

    /// Moves the window over each of `bounds` in turn (the bounds of consecutive steps, as `slide`
    /// takes them) and applies `function` to them all at once, its answers in `values` and each
    /// window's place among the samples in `places`. The window ends where `slide` over each in
    /// turn would leave it, and the budget has held each window's samples in turn, as it would have.
    mutating func slide(over bounds: [(minTime: Int64, maxTime: Int64)], budget: SampleBudget, places: inout [Range<Int>],
                        applying function: RangeFunctions.SideBySide, into values: inout [Double]) throws(EvalFailure) {
        guard let firstBounds = bounds.first, let lastBounds = bounds.last else { preconditionFailure("no window to slide over") }
        var held = samples.count - first
        dropSamples(before: firstBounds.minTime)
        load(minTime: firstBounds.minTime, maxTime: lastBounds.maxTime)
        places.removeAll(keepingCapacity: true)
        for (minTime, maxTime) in bounds {
            let lower = firstIndex(from: first) { $0 >= minTime }
            let upper = max(lower, firstIndex(from: lower) { $0 > maxTime })
            budget.release(held)
            try budget.take(upper - lower)
            held = upper - lower
            places.append(lower..<upper)
        }
        // What stays is the last window, as after `slide` to it: its samples are the last loaded.
        first = places[places.count - 1].lowerBound
        values.removeAll(keepingCapacity: true)
        samples.withUnsafeBufferPointer { all in
            all.withMemoryRebound(to: Point.self) { points in function(points, places, &values) }
        }
    }

    /// The first index from `start` on whose sample's time passes `test` (samples are in time
    /// order, so it is found by halving), or the end.
    private func firstIndex(from start: Int, where test: (Int64) -> Bool) -> Int {
        samples.withUnsafeBufferPointer { all in
            var low = start, high = all.count
            while low < high {
                let middle = (low + high) / 2
                if test(all[middle].timestamp) { high = middle } else { low = middle + 1 }
            }
            return low
        }
    }

    /// Leaves out of the window the samples before `minTime`, removing them once they are at least
    /// half the array.
    private mutating func dropSamples(before minTime: Int64) {
        // In time order: the first sample the window keeps is found by halving, not by a walk over
        // the step's worth of samples that leave.
        first = firstIndex(from: first) { $0 >= minTime }
        if first == samples.count {
            samples.removeAll(keepingCapacity: true)
            first = 0
        } else if first >= 64 && first * 2 >= samples.count {
            samples.removeSubrange(0..<first)
            first = 0
        }
    }

    /// Appends the source's samples through `maxTime`, leaving out those before `minTime` and, of a
    /// stored series, its staleness markers.
    private mutating func load(minTime: Int64, maxTime: Int64) {
        let before = samples.count
        if isStored {
            // Whole chunks before the window are passed over undecoded (steps far apart).
            iterator.skipChunks(endingBefore: minTime)
            iterator.appendSamples(through: maxTime, to: &samples)
            dropArrivals(before, before: minTime)
        } else {
            while position < computed.count && computed[position].timestamp <= maxTime {
                let point = computed[position]
                position += 1
                if point.timestamp >= minTime { samples.append(Sample(timestamp: point.timestamp, valueBits: point.value.bitPattern)) }
            }
        }
    }

    /// Removes the stored samples from `start` on that lie before `minTime` or are staleness
    /// markers, keeping the others' order; they are rare, so the usual arrival is only scanned.
    private mutating func dropArrivals(_ start: Int, before minTime: Int64) {
        // Mostly there is nothing to drop: found by a scan that writes nothing. Arrivals come in
        // time order, so when the first is in the window all are, and only markers are looked for.
        let firstDropped = samples.withUnsafeBufferPointer { all -> Int? in
            guard start < all.count else { return nil }
            if all[start].timestamp >= minTime { return all[start...].firstIndex { $0.valueBits == staleMarkerBits } }
            return all[start...].firstIndex { $0.timestamp < minTime || $0.valueBits == staleMarkerBits }
        }
        guard let firstDropped else { return }
        var kept = firstDropped
        for i in firstDropped..<samples.count {
            let sample = samples[i]
            guard sample.timestamp >= minTime && sample.valueBits != staleMarkerBits else { continue }
            if kept != i { samples[kept] = sample }
            kept += 1
        }
        if kept < samples.count { samples.removeSubrange(kept...) }
    }

    mutating func release(_ budget: SampleBudget) {
        budget.release(samples.count - first)
        samples = []
        first = 0
    }
}
