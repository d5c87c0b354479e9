/// A closed histogram or float-histogram chunk of the head, with its encoding (2 or 3).
struct ClosedHistogramChunk {
    var minTime: Int64
    var maxTime: Int64
    var bytes: [UInt8]
    var encoding: UInt8
}

/// A series' native histograms in the head, integer and float, as Prometheus 2.42's
/// `memSeries.appendHistogram` and `appendFloatHistogram` keep them: closed chunks (encoding 2 or
/// 3) and the open one, of the kind of the newest histogram (the other kind's is empty). Most
/// series have none, so they live beside the series (`Head.histograms`), not in `MemSeries`.
struct HistogramSeries {
    var closed: [ClosedHistogramChunk] = []
    var openInteger = HistogramChunk()
    var openFloat = FloatHistogramChunk()
    var openMinTime: Int64 = 0
    var lastTimestamp: Int64 = .min
    /// The newest histogram, while the open chunk continues from it (not after a float).
    var last: HistogramValue?
    var nextCutAt: Int64 = .max

    /// Histograms in the open chunk, of either kind.
    var openCount: Int { openInteger.count + openFloat.count }
    var isEmpty: Bool { closed.isEmpty && openCount == 0 }

    mutating func append(timestamp t: Int64, _ value: HistogramValue, chunkRange: Int64) {
        switch value {
        case let .integer(h): append(timestamp: t, h, chunkRange: chunkRange)
        case let .float(h): append(timestamp: t, h, chunkRange: chunkRange)
        }
    }

    /// Appends `h` (well formed) at `t`, newer than `lastTimestamp`. A new chunk is cut where
    /// Prometheus cuts one (at the block range end, at an end predicted after 30 histograms, at 240),
    /// and where this chunk cannot hold `h`: a change between integer and float histograms, a
    /// counter reset (the new chunk's header says so), a change of kind (gauge or not), of schema,
    /// zero threshold or buckets, or a return from staleness.
    mutating func append<H: StoredHistogram>(timestamp t: Int64, _ h: H, chunkRange: Int64) {
        precondition(t > lastTimestamp, "head histogram appends must be in order")
        let chunk = self[keyPath: H.openChunk]
        // After the other kind, `last` gives no histogram of this one: a new chunk, as after a float.
        let (header, mustCut) = Self.header(for: h, after: last.flatMap(H.init), openHeader: chunk.count > 0 ? chunk.header : nil)
        let n = openCount
        if n > 0 {
            if n == Head.samplesPerChunk / 4 {
                nextCutAt = MemSeries.chunkEnd(start: openMinTime, current: lastTimestamp, max: nextCutAt)
            }
            if mustCut || t >= nextCutAt || n >= Head.samplesPerChunk * 2 || !chunk.fits(h) { seal() }
        }
        if openCount == 0 {
            self[keyPath: H.openChunk] = H.Chunk(header: header)
            openMinTime = t
            nextCutAt = Head.rangeStart(t, chunkRange) + chunkRange
        }
        self[keyPath: H.openChunk].append(timestamp: t, h)
        lastTimestamp = t
        last = h.value
    }

    /// The header a chunk starting with `h` gets, and whether `h` must start one, from the
    /// histogram before it (nil after a float or at the series' start) and the open chunk's header.
    static func header<H: StoredHistogram>(for h: H, after previous: H?,
                       openHeader: HistogramChunk.CounterResetHeader?) -> (HistogramChunk.CounterResetHeader, mustCut: Bool) {
        switch h.counterResetHint {
        case 3: return (.gauge, openHeader != nil && openHeader != .gauge)
        case 1: return (.counterReset, true)
        default: break
        }
        guard let previous, openHeader != .gauge else { return (.unknown, true) }
        if h.isStale { return (.notCounterReset, false) }
        if previous.isStale { return (.unknown, true) }
        if h.resetsCounter(after: previous) { return (.counterReset, true) }
        if h.schema != previous.schema || h.zeroThresholdBits != previous.zeroThresholdBits { return (.unknown, true) }
        // New buckets: Prometheus recodes its chunk and goes on; this one starts a chunk that continues.
        let sameBuckets = h.positiveSpans == previous.positiveSpans && h.negativeSpans == previous.negativeSpans
        return (.notCounterReset, !sameBuckets)
    }

    /// Closes the open chunk so the next histogram starts a new one.
    mutating func seal() {
        close(\.openInteger)
        close(\.openFloat)
    }

    private mutating func close<C: HistogramChunkWriter>(_ open: WritableKeyPath<HistogramSeries, C>) {
        guard self[keyPath: open].count > 0 else { return }
        closed.append(ClosedHistogramChunk(minTime: openMinTime, maxTime: lastTimestamp, bytes: MemSeries.trimmed(self[keyPath: open].bytes), encoding: C.encoding))
        self[keyPath: open] = C(header: .unknown)
    }

    /// Each chunk, closed then open, with its time range and encoding.
    func forEachChunk(_ body: (Int64, Int64, UInt8, UnsafeBufferPointer<UInt8>) -> Void) {
        for c in closed { c.bytes.withUnsafeBufferPointer { body(c.minTime, c.maxTime, c.encoding, $0) } }
        if openInteger.count > 0 { openInteger.bytes.withUnsafeBufferPointer { body(openMinTime, lastTimestamp, HistogramChunk.encoding, $0) } }
        if openFloat.count > 0 { openFloat.bytes.withUnsafeBufferPointer { body(openMinTime, lastTimestamp, FloatHistogramChunk.encoding, $0) } }
    }

    /// Each histogram in time order (head chunks were checked when written).
    func forEachHistogram(_ body: (Int64, HistogramValue) -> Void) {
        forEachChunk { _, _, encoding, bytes in
            _ = HistogramValue.forEach(inChunk: bytes, encoding: encoding) { t, h in
                body(t, h)
                return true
            }
        }
    }

    /// The histogram stored at exactly `t`, if any.
    func histogram(at t: Int64) -> HistogramValue? {
        if t == lastTimestamp, let last { return last }
        var found: HistogramValue?
        forEachChunk { minTime, maxTime, encoding, bytes in
            guard found == nil, minTime <= t, t <= maxTime else { return }
            _ = HistogramValue.forEach(inChunk: bytes, encoding: encoding) { ts, h in
                if ts == t { found = h }
                return ts < t
            }
        }
        return found
    }
}

/// The head's side of histograms: appends, lookups for a batch's verdicts, and chunk access.
extension Head {
    /// The newest histogram time of series `index` (`.min` when it has none).
    func latestHistogramTimestamp(_ index: Int32) -> Int64 {
        histograms.isEmpty ? .min : histograms[index]?.lastTimestamp ?? .min
    }

    /// The histogram series `index` holds at exactly `t`, if any.
    func histogram(_ index: Int32, at t: Int64) -> HistogramValue? {
        histograms.isEmpty ? nil : histograms[index]?.histogram(at: t)
    }

    /// Appends a well-formed histogram newer than the series' newest histogram. A change of kind
    /// ends the other kind's open chunk, as Prometheus cuts a chunk when the encoding changes, so
    /// float and histogram chunks of a series follow each other without overlapping.
    func appendHistogram(_ index: Int32, timestamp t: Int64, _ h: HistogramValue) {
        if series[Int(index)].open.count > 0 {
            series[Int(index)].seal()
            writeClosedChunk(index)
        }
        histograms[index, default: HistogramSeries()].append(timestamp: t, h, chunkRange: chunkRange)
        widenTimes(t)
    }

    /// Called before an in-order float is appended: ends the open histogram chunk, which the float follows.
    func endHistogramChunk(_ index: Int32) {
        guard !histograms.isEmpty, histograms[index]?.openCount ?? 0 > 0 else { return }
        histograms[index]!.seal()
        histograms[index]!.last = nil
    }

    /// Visits each histogram chunk of series `index`, in time order.
    func forEachHistogramChunk(_ index: Int32, _ body: (Int64, Int64, UInt8, UnsafeBufferPointer<UInt8>) -> Void) {
        guard !histograms.isEmpty, let h = histograms[index] else { return }
        h.forEachChunk(body)
    }

    func hasHistograms(_ index: Int32) -> Bool { !histograms.isEmpty && !(histograms[index]?.isEmpty ?? true) }

    /// The oldest histogram time the head holds (`.max` when none).
    var oldestHistogramTime: Int64 {
        histograms.values.reduce(Int64.max) { m, h in min(m, h.closed.first?.minTime ?? (h.openCount > 0 ? h.openMinTime : .max)) }
    }
}

/// Deleting histograms from the head (`deleteSamples` in HeadTruncation.swift calls these).
extension Head {
    /// Histograms of series `index` inside `interval`.
    func histogramCount(_ index: Int32, in interval: DeletedInterval) -> Int {
        var n = 0
        guard !histograms.isEmpty, let series = histograms[index] else { return 0 }
        series.forEachHistogram { t, _ in
            if interval.covers(t) { n += 1 }
        }
        return n
    }

    /// Re-encodes series `index`'s histograms without those inside `interval`. The series keeps its
    /// newest histogram time, so a resend into the deleted range is refused as out of order.
    func deleteHistograms(_ index: Int32, in interval: DeletedInterval) {
        guard !histograms.isEmpty, let old = histograms[index] else { return }
        var kept = HistogramSeries()
        old.forEachHistogram { t, h in
            if !interval.covers(t) { kept.append(timestamp: t, h, chunkRange: chunkRange) }
        }
        kept.seal()
        kept.lastTimestamp = old.lastTimestamp
        kept.last = nil
        histograms[index] = kept
    }
}

extension EncodedChunk {
    /// Encodes histograms sorted by time, each time once, into histogram and float-histogram
    /// chunks cut as the head cuts them, with no range boundary inside (a compaction's output lies
    /// in one block).
    static func encodeHistograms(_ samples: [HistogramSample]) -> [EncodedChunk] {
        var series = HistogramSeries()
        for s in samples where s.timestamp > series.lastTimestamp && s.histogram.isWellFormed {
            series.append(timestamp: s.timestamp, s.histogram, chunkRange: 1 << 62)
        }
        series.seal()
        return series.closed.map { EncodedChunk(minTime: $0.minTime, maxTime: $0.maxTime, bytes: $0.bytes, encoding: $0.encoding) }
    }
}
