/// The append path (Prometheus' `headAppender.Commit`): a batch collected under the tenant lock
/// (`AppendBatch`, Head/HeadAppend.swift), its records logged with one write, then applied to the head.
extension TenantDatabase {
    /// Runs `body` under the tenant lock, then writes the accepted samples to the WAL and applies
    /// them to the head. If the WAL write fails nothing of the batch is kept.
    public func append<R>(limits: SeriesLimits = SeriesLimits(), _ body: (inout AppendBatch) -> R) throws(StorageError) -> (R, AppendCommit) {
        // Outside the lock: keeping the budget may close other tenants' segments, under their locks.
        defer { options.walFileBudget?.used(self) }
        let result = try appendLocked(limits, body)
        if needsCut { scheduleCut() }
        return result
    }

    private func appendLocked<R>(_ limits: SeriesLimits, _ body: (inout AppendBatch) -> R) throws(StorageError) -> (R, AppendCommit) {
        try lock.withLock { (_) throws(StorageError) -> (R, AppendCommit) in
            guard let wal, let durability else { throw .readOnly }
            if closed { throw .closed }
            if let failure = durability.failure { throw .io(failure) }
            pendingBuffer.removeAll(keepingCapacity: true)
            let window = options.outOfOrderWindow
            let oldestLate = window <= 0 ? Int64.max : (head.maxTime == .min ? Int64.min : StorableTime.subtracting(window, from: head.maxTime))
            var batch = AppendBatch(head: head, blocks: blocks, limits: limits, pending: pendingBuffer, oldestLateTimestamp: oldestLate)
            pendingBuffer = []
            let result = body(&batch)
            pendingBuffer = batch.pending
            guard !pendingBuffer.isEmpty else {
                return (result, AppendCommit(position: wal.position, createdSeries: 0, appendedSamples: 0, appendedHistograms: 0))
            }
            let records = encodeRecords(pendingBuffer, histograms: batch.histograms)
            let segmentBefore = wal.segmentIndex
            let (file, position): (OpenFile, UInt64)
            do throws(StorageIOError) {
                (file, position) = try log(records.records, to: wal)
            } catch {
                throw .io(error)
            }
            if wal.segmentIndex != segmentBefore { durability.syncedAll(through: wal.syncedAtCut) }
            durability.written(position, in: file)
            for index in records.newSeries { head.markLogged(index) }
            head.warmOpenChunks(pendingBuffer.lazy.filter { !$0.isHistogram && !$0.outOfOrder }.map(\.index))
            for p in pendingBuffer {
                if p.isHistogram {
                    head.appendHistogram(p.index, timestamp: p.timestamp, batch.histograms[Int(p.valueBits)])
                } else if p.outOfOrder {
                    head.appendOutOfOrder(p.index, timestamp: p.timestamp, valueBits: p.valueBits)
                } else {
                    head.append(p.index, timestamp: p.timestamp, valueBits: p.valueBits)
                }
            }
            let histograms = batch.histograms.count
            return (result, AppendCommit(position: position, createdSeries: records.newSeries.count,
                                         appendedSamples: pendingBuffer.count - histograms, appendedHistograms: histograms))
        }
    }

    /// A Series record for the batch's series the WAL does not hold yet, then one Samples record for
    /// the floats, then the histograms in the order they were appended, one record per run of one
    /// kind (Prometheus' `headAppender.log` writes one record a kind, which on replay refuses a
    /// float histogram older than an integer one of the same request). Replay applies the floats,
    /// then the histograms, each by the rules the head applies here; a series that switches
    /// between floats and histograms inside one request may come back with its float and histogram
    /// chunks overlapping in time, which reads keep apart.
    private func encodeRecords(_ pending: [AppendBatch.Pending], histograms: [HistogramValue]) -> (records: [[UInt8]], newSeries: [Int32]) {
        var newSeries: [Int32] = []
        var seen = Set<Int32>()
        for p in pending where !head.isLogged(p.index) && seen.insert(p.index).inserted {
            newSeries.append(p.index)
        }
        var records: [[UInt8]] = []
        if !newSeries.isEmpty {
            encoder.beginSeries()
            for index in newSeries { encoder.addSeries(ref: head.ref(index), labels: head.labelPairs(index)) }
            records.append(encoder.bytes)
        }
        if let first = pending.first(where: { !$0.isHistogram }) {
            encoder.beginSamples(baseRef: head.ref(first.index), baseTimestamp: first.timestamp)
            for p in pending where !p.isHistogram { encoder.addSample(ref: head.ref(p.index), timestamp: p.timestamp, valueBits: p.valueBits) }
            records.append(encoder.bytes)
        }
        if !histograms.isEmpty {
            let held = pending.filter(\.isHistogram).map { (ref: head.ref($0.index), timestamp: $0.timestamp, value: histograms[Int($0.valueBits)]) }
            records += WALRecordEncoder.histogramRecords(held)
        }
        return (records, newSeries)
    }
}
