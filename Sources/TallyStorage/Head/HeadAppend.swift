/// Collects one request's samples under the tenant lock. Nothing is visible or durable until the
/// batch is committed to the WAL and then applied to the head.
public struct AppendBatch {
    struct Pending {
        let index: Int32
        let timestamp: Int64
        /// A float's bits, or a histogram's place in the batch's `histograms`.
        let valueBits: UInt64
        let outOfOrder: Bool
        var isHistogram = false
    }

    private struct LateKey: Hashable {
        let index: Int32
        let timestamp: Int64
    }

    private let head: Head
    private let blocks: [BlockReader]
    private let limits: SeriesLimits
    /// The accepted samples, in the order they came: what the commit logs and applies.
    private(set) var pending: [Pending]
    private var created = 0
    /// Late samples are accepted at or after this time (`.max` when none are).
    private let oldestLateTimestamp: Int64
    private var pendingLate: [LateKey: UInt64] = [:]
    /// This batch's in-order samples by series and timestamp, indexed up to `pendingIndexed` only when
    /// a late sample needs them: each pending sample is indexed once, so a request of descending
    /// timestamps stays linear instead of scanning the batch per sample.
    private var pendingInOrder: [LateKey: UInt64] = [:]
    private var pendingIndexed = 0
    /// The remembered encoding `knownSeries(encodedLabels:)` tries first (see there).
    private var expectedEncodedEntry: Int32 = 0
    /// The histograms accepted, which `pending` refers to by place.
    private(set) var histograms: [HistogramValue] = []
    /// Per series, this batch's newest accepted histogram: its time and place in `histograms`.
    private var newestHistogram: [Int32: (timestamp: Int64, slot: Int)] = [:]

    /// A batch on `head` (under the tenant lock); `pending` is an empty buffer to reuse.
    init(head: Head, blocks: [BlockReader], limits: SeriesLimits, pending: [Pending], oldestLateTimestamp: Int64) {
        self.head = head
        self.blocks = blocks
        self.limits = limits
        self.pending = pending
        self.oldestLateTimestamp = oldestLateTimestamp
    }

    /// The series with these labels (sorted by name, unique, non-empty), created if new and
    /// within the batch's `SeriesLimits`.
    public mutating func series(_ labels: UnsafeBufferPointer<RawLabel>) throws(SeriesLimitExceeded) -> SeriesHandle {
        let hash = Head.hash(labels)
        if let index = head.find(labels, hash: hash) { return SeriesHandle(index: index) }
        if head.seriesCount >= limits.maxSeries { throw .maxSeries }
        if limits.maxSeriesPerMetric < .max && head.seriesCount(sameMetricAs: labels) >= limits.maxSeriesPerMetric {
            throw .maxSeriesPerMetric
        }
        created += 1
        return SeriesHandle(index: head.create(labels, hash: hash))
    }

    /// The series with these labels if the head holds it; never creates one.
    public func existingSeries(_ labels: UnsafeBufferPointer<RawLabel>) -> SeriesHandle? {
        head.find(labels, hash: Head.hash(labels)).map(SeriesHandle.init)
    }

    /// The series whose labels arrived before as exactly these encoded bytes (a request's label
    /// fields), if the head knows them; else the key to pass to `series(_:encodedLabels:key:)`.
    /// Only bytes whose labels passed validation may be given, so equal bytes mean the same series.
    ///
    /// A sender sends its series in the same order every scrape (Prometheus' shards forward its
    /// WAL in scrape order), and the head remembers encodings in the order their series first came:
    /// the entry after the last one found is tried first, with one comparison and no hash, and the
    /// hash finds the rest. Equal bytes are required either way.
    public mutating func knownSeries(encodedLabels bytes: UnsafeRawBufferPointer) -> EncodedLabelsLookup {
        if let series = head.series(encodedLabels: bytes, entry: expectedEncodedEntry) {
            expectedEncodedEntry &+= 1
            return .known(SeriesHandle(index: series))
        }
        let hash = Head.hash(encodedLabels: bytes)
        guard let found = head.encodedLabelEntry(bytes, hash: hash) else { return .unknown(EncodedLabelsKey(hash: hash)) }
        expectedEncodedEntry = found.entry &+ 1
        return .known(SeriesHandle(index: found.series))
    }

    /// The head's id of the symbol with these bytes, if it holds one: a request that names labels by
    /// symbols resolves each once, then asks `knownSeries(labelIds:)` per series.
    public func symbolId(of bytes: UnsafeRawBufferPointer) -> UInt32? { head.symbolId(of: bytes) }

    /// The series whose labels are exactly these symbol ids (name, value, name, ... in label order),
    /// if the head holds it. Equal ids are equal labels, which were valid when the series was made.
    public func knownSeries(labelIds: UnsafeBufferPointer<UInt32>) -> SeriesHandle? {
        head.series(labelIds: labelIds, hash: Head.hash(labelIds: labelIds)).map(SeriesHandle.init)
    }

    /// `series(_:)`, remembering the encoded bytes so `knownSeries` finds the series next time.
    public mutating func series(_ labels: UnsafeBufferPointer<RawLabel>, encodedLabels bytes: UnsafeRawBufferPointer,
                                key: EncodedLabelsKey) throws(SeriesLimitExceeded) -> SeriesHandle {
        let handle = try series(labels)
        head.remember(encodedLabels: bytes, hash: key.hash, series: handle.index)
        return handle
    }

    public mutating func add(_ handle: SeriesHandle, timestamp t: Int64, valueBits v: UInt64) -> SampleVerdict {
        guard StorableTime.range.contains(t) else { return .outOfBounds }
        let s = handle.index
        let (lastT, lastV) = newest(s)
        if t > lastT && t > newestHistogramTimestamp(s) {
            head.setPendingSlot(s, pending.count)
            pending.append(Pending(index: s, timestamp: t, valueBits: v, outOfOrder: false))
            return .accepted
        }
        if t == lastT { return v == lastV ? .duplicate : .conflict }
        // As Prometheus: a time a series holds as a histogram cannot take a float.
        if histogram(s, at: t) != nil { return .conflict }
        let key = LateKey(index: s, timestamp: t)
        if let stored = head.valueBits(s, at: t) ?? pendingLate[key] ?? pendingInOrderValue(s, at: t) ?? blockValue(s, at: t) {
            return stored == v ? .duplicate : .conflict
        }
        if oldestLateTimestamp == .max { return .outOfOrder }
        if t < oldestLateTimestamp { return .tooOld }
        pendingLate[key] = v
        pending.append(Pending(index: s, timestamp: t, valueBits: v, outOfOrder: true))
        return .accepted
    }

    /// Adds an integer native histogram (see `add(_:timestamp:histogram:)` for either kind).
    public mutating func add(_ handle: SeriesHandle, timestamp t: Int64, histogram h: IntegerHistogram) -> SampleVerdict {
        add(handle, timestamp: t, histogram: h.value)
    }

    /// Adds a float native histogram (see `add(_:timestamp:histogram:)` for either kind).
    public mutating func add(_ handle: SeriesHandle, timestamp t: Int64, histogram h: FloatHistogram) -> SampleVerdict {
        add(handle, timestamp: t, histogram: h.value)
    }

    /// Adds a native histogram, integer or float. It must be newer than everything the series
    /// holds, floats and histograms of either kind included: as in Prometheus 2.42, histograms are
    /// never taken late. A resend of a stored one is a duplicate; another histogram (of the other
    /// kind too), or a float, at its time is a conflict.
    public mutating func add(_ handle: SeriesHandle, timestamp t: Int64, histogram h: HistogramValue) -> SampleVerdict {
        guard StorableTime.range.contains(t) else { return .outOfBounds }
        guard h.isWellFormed else { return .malformedHistogram }
        let s = handle.index
        let (lastT, _) = newest(s)
        if t > lastT && t > newestHistogramTimestamp(s) {
            newestHistogram[s] = (t, histograms.count)
            pending.append(Pending(index: s, timestamp: t, valueBits: UInt64(histograms.count), outOfOrder: false, isHistogram: true))
            histograms.append(h)
            return .accepted
        }
        if let stored = histogram(s, at: t) { return stored.isSameSample(as: h) ? .duplicate : .conflict }
        if t == lastT || head.valueBits(s, at: t) != nil || pendingLate[LateKey(index: s, timestamp: t)] != nil
            || pendingInOrderValue(s, at: t) != nil {
            return .conflict
        }
        return .outOfOrder
    }

    /// The series' newest histogram time, counting this batch's.
    private func newestHistogramTimestamp(_ s: Int32) -> Int64 {
        newestHistogram.isEmpty ? head.latestHistogramTimestamp(s) : newestHistogram[s]?.timestamp ?? head.latestHistogramTimestamp(s)
    }

    /// The histogram the series holds at `t`, in the head or accepted earlier in this batch.
    private func histogram(_ s: Int32, at t: Int64) -> HistogramValue? {
        guard let newest = newestHistogram[s], t > head.latestHistogramTimestamp(s) else { return head.histogram(s, at: t) }
        if newest.timestamp == t { return histograms[newest.slot] }
        return pending.last { $0.isHistogram && $0.index == s && $0.timestamp == t }.map { histograms[Int($0.valueBits)] }
    }

    /// The newest sample of series `s`, counting one accepted earlier in this batch. The series
    /// notes where in `pending` its newest in-order sample went, in whichever batch last accepted one:
    /// a note from an earlier batch cannot name an in-order sample of `s` in this one, because the
    /// first such sample would have replaced it.
    private func newest(_ s: Int32) -> (timestamp: Int64, valueBits: UInt64) {
        let slot = head.pendingSlot(s)
        guard slot < pending.count, pending[slot].index == s, !pending[slot].outOfOrder, !pending[slot].isHistogram else { return head.latest(s) }
        return (pending[slot].timestamp, pending[slot].valueBits)
    }

    /// What a block already holds at `t` for this series: late samples may repeat ones that have
    /// left the head. An unreadable block counts as holding nothing (it was reported when opened).
    private func blockValue(_ index: Int32, at t: Int64) -> UInt64? {
        let covering = blocks.filter { $0.meta.minTime <= t && t < $0.meta.maxTime }
        guard !covering.isEmpty else { return nil }
        let labels = head.labelPairs(index)
        for block in covering {
            if let v = try? block.valueBits(labels: labels, at: t) { return v }
        }
        return nil
    }

    /// A sample accepted in order earlier in this batch at exactly `t` (only possible when `t` is
    /// newer than what the head already holds for the series).
    private mutating func pendingInOrderValue(_ index: Int32, at t: Int64) -> UInt64? {
        guard t > head.latest(index).timestamp else { return nil }
        while pendingIndexed < pending.count {
            let p = pending[pendingIndexed]
            if !p.outOfOrder && !p.isHistogram { pendingInOrder[LateKey(index: p.index, timestamp: p.timestamp)] = p.valueBits }
            pendingIndexed += 1
        }
        return pendingInOrder[LateKey(index: index, timestamp: t)]
    }
}

extension Head {
    /// The newest sample a series holds (not counting a batch's pending ones).
    func latest(_ index: Int32) -> (timestamp: Int64, valueBits: UInt64) {
        // Field by field: copying the whole MemSeries would retain and release each of its arrays.
        (series[Int(index)].lastTimestamp, series[Int(index)].lastValueBits)
    }

    /// Where a batch put the newest in-order sample it accepted for a series (see `AppendBatch.newest`).
    func pendingSlot(_ index: Int32) -> Int { Int(series[Int(index)].pendingSlot) }

    func setPendingSlot(_ index: Int32, _ slot: Int) { series[Int(index)].pendingSlot = UInt32(slot) }
}
