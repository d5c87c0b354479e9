#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization

/// Collects one request's samples under the tenant lock. Nothing is visible or durable until the
/// batch is committed to the WAL and then applied to the head.
public struct AppendBatch {
    struct Pending {
        let index: Int32
        let timestamp: Int64
        let valueBits: UInt64
        let outOfOrder: Bool
    }

    fileprivate struct LateKey: Hashable {
        let index: Int32
        let timestamp: Int64
    }

    fileprivate let head: Head
    fileprivate let blocks: [BlockReader]
    fileprivate let limits: SeriesLimits
    fileprivate let epoch: UInt32
    fileprivate var pending: [Pending]
    fileprivate var created = 0
    /// Late samples are accepted at or after this time (`.max` when none are).
    fileprivate let oldestLateTimestamp: Int64
    fileprivate var pendingLate: [LateKey: UInt64] = [:]
    /// This batch's in-order samples by series and timestamp, indexed up to `pendingIndexed` only when
    /// a late sample needs them: each pending sample is indexed once, so a request of descending
    /// timestamps stays linear instead of scanning the batch per sample.
    fileprivate var pendingInOrder: [LateKey: UInt64] = [:]
    fileprivate var pendingIndexed = 0

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

    /// The series whose labels arrived before as exactly these encoded bytes (a request's label
    /// fields), if the head knows them; else nil and the key to pass to `series(_:encodedLabels:key:)`.
    /// Only bytes whose labels passed validation may be given, so equal bytes mean the same series.
    public func knownSeries(encodedLabels bytes: UnsafeRawBufferPointer) -> (SeriesHandle?, EncodedLabelsKey) {
        let hash = Head.hash(encodedLabels: bytes)
        return (head.series(encodedLabels: bytes, hash: hash).map(SeriesHandle.init), EncodedLabelsKey(hash: hash))
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
        let (lastT, lastV) = head.latest(s, epoch: epoch)
        if t > lastT {
            pending.append(Pending(index: s, timestamp: t, valueBits: v, outOfOrder: false))
            head.setPending(s, epoch: epoch, timestamp: t, valueBits: v)
            return .accepted
        }
        if t == lastT { return v == lastV ? .duplicate : .conflict }
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
        guard t > head.series[Int(index)].lastTimestamp else { return nil }
        while pendingIndexed < pending.count {
            let p = pending[pendingIndexed]
            if !p.outOfOrder { pendingInOrder[LateKey(index: p.index, timestamp: p.timestamp)] = p.valueBits }
            pendingIndexed += 1
        }
        return pendingInOrder[LateKey(index: index, timestamp: t)]
    }
}

/// One tenant's storage: its directory, WAL and head. Thread-safe; the state below is guarded by
/// `lock`, which serialises appends (the WAL is a single ordered log).
public final class TenantDatabase: @unchecked Sendable {
    public let tenant: String
    public let directory: String
    public let replay: ReplayReport

    private let lock = TenantLock()
    private let head: Head
    private let wal: WALWriter?
    private let durability: WALDurability?
    private let options: StorageOptions
    /// Blocks by ascending minTime; replaced, never mutated, under `lock`.
    private var blocks: [BlockReader]
    private let cutQueue = DispatchQueue(label: "tally.block-cut")
    private let cutScheduled = Atomic<Bool>(false)
    /// Set by `close`: owed cuts stop between blocks, so a stop never waits for a long backlog (the
    /// WAL keeps what was not cut, and the next open catches up).
    private let closing = Atomic<Bool>(false)
    private var epoch: UInt32 = 0
    private var pendingBuffer: [AppendBatch.Pending] = []
    private var closed = false
    private var encoder = WALRecordEncoder()

    private init(tenant: String, directory: String, head: Head, wal: WALWriter?, durability: WALDurability?,
                 blocks: [BlockReader], options: StorageOptions, replay: ReplayReport) {
        self.tenant = tenant
        self.directory = directory
        self.head = head
        self.wal = wal
        self.durability = durability
        self.blocks = blocks
        self.options = options
        self.replay = replay
    }

    /// Opens (creating if needed) a tenant directory and replays its WAL. Read-only opens change
    /// nothing on disk, so they are safe on a store a server is writing, and under its `ReadLease`
    /// they see every sample it acknowledged before they started.
    public static func open(directory: String, tenant: String, options: StorageOptions = StorageOptions(), readOnly: Bool = false) throws(StorageIOError) -> TenantDatabase {
        if readOnly {
            return try ReadLease.reading(directory) { () throws(StorageIOError) in
                try openOrCreate(directory: directory, tenant: tenant, options: options, readOnly: true)
            }
        }
        // A directory this open makes is removed again when the open fails: a half-made tenant
        // (say `<tenant>/` without its `wal/`) would be taken for a tenant at the next start.
        let creating = !readOnly && !FileSystem.exists(directory)
        do throws(StorageIOError) {
            return try openOrCreate(directory: directory, tenant: tenant, options: options, readOnly: readOnly)
        } catch {
            if creating { removeHalfCreated(directory) }
            throw error
        }
    }

    /// Removes what a failed first open made: the lease file, `wal/` and the directory, by name,
    /// without `opendir`, because the open may have failed for want of a file descriptor. Anything
    /// else found there is left to the full removal.
    private static func removeHalfCreated(_ directory: String) {
        unlink(directory + "/" + ReadLease.fileName)
        rmdir(directory + "/wal")
        if rmdir(directory) != 0 { try? FileSystem.removeTree(directory) }
    }

    private static func openOrCreate(directory: String, tenant: String, options: StorageOptions, readOnly: Bool) throws(StorageIOError) -> TenantDatabase {
        let walDirectory = directory + "/wal"
        if !readOnly {
            try FileSystem.makeDirectory(directory)
            try FileSystem.makeDirectory(walDirectory)
            try ReadLease.prepare(directory)
            try FileSystem.syncDirectory(directory)
        }
        let head = Head(chunkRange: options.blockRange)
        let clock = ContinuousClock()
        let started = clock.now
        var report = ReplayReport()
        // The WAL before the blocks: a block that took samples out of the WAL was in place before
        // the checkpoint that dropped them (see ReadLease).
        let checkpoint = FileSystem.isDirectory(walDirectory) ? try WALCheckpoint.latest(in: walDirectory) : nil
        if let checkpoint {
            let path = walDirectory + "/" + WALCheckpoint.name(checkpoint)
            for segment in try WALFormat.segments(in: path) {
                let bytes = try SegmentBytes(path: path + "/" + WALFormat.segmentName(segment), mapped: !readOnly)
                let end = WALSegmentReader.read(bytes.bytes) { record in replayRecord(record, into: head, &report) }
                if end != .clean { report.problems.append("\(path): checkpoint unreadable past offset \(end.validEnd ?? 0)") }
            }
        }
        if !readOnly { try WALCheckpoint.removeObsolete(walDirectory: walDirectory, upTo: checkpoint ?? -1) }
        let segments = FileSystem.isDirectory(walDirectory)
            ? try WALFormat.segments(in: walDirectory).filter { $0 > (checkpoint ?? -1) } : []
        for (k, segment) in segments.enumerated() {
            let path = walDirectory + "/" + WALFormat.segmentName(segment)
            let segmentBytes = try SegmentBytes(path: path, mapped: !readOnly)
            report.segments += 1
            let end = WALSegmentReader.read(segmentBytes.bytes) { record in replayRecord(record, into: head, &report) }
            let isLast = k == segments.count - 1
            switch end {
            case .clean: break
            case let .torn(validEnd):
                report.problems.append("\(path): torn record at offset \(validEnd) (a write cut short); \(isLast && !readOnly ? "cut there" : "read up to it")")
            case let .corrupt(validEnd, offset, reason):
                report.problems.append("\(path): \(reason) at offset \(offset); records after offset \(validEnd) \(isLast && !readOnly ? "moved to wal-quarantine/" : "not read")")
            }
            if isLast && !readOnly {
                try repairTail(path: path, bytes: segmentBytes.bytes, validEnd: end.validEnd, quarantine: directory + "/wal-quarantine")
            }
        }
        let blocks = try openBlocks(directory, readOnly: readOnly, &report)
        report.series = head.seriesCount
        report.duration = clock.now - started
        guard !readOnly else {
            return TenantDatabase(tenant: tenant, directory: directory, head: head, wal: nil, durability: nil,
                                  blocks: blocks, options: options, replay: report)
        }
        // The next segment is created by the first append: a replayed tenant holds no descriptor.
        let wal = WALWriter(directory: walDirectory, segmentIndex: max(segments.last ?? -1, checkpoint ?? -1) + 1,
                            segmentSize: options.walSegmentSize)
        let durability = WALDurability(policy: options.syncPolicy, observeSync: options.observeSync)
        let db = TenantDatabase(tenant: tenant, directory: directory, head: head, wal: wal, durability: durability,
                                blocks: blocks, options: options, replay: report)
        // A replayed head may already owe blocks (a restart after a crash mid-cut): catch up now.
        if db.needsCut { db.scheduleCut() }
        return db
    }

    /// Opens every block directory (a strict ULID name); in write mode first removes `.tmp`
    /// leftovers of interrupted block writes, and of the files a deletion replaces inside a block.
    /// An unreadable block is reported and left on disk.
    private static func openBlocks(_ directory: String, readOnly: Bool, skipping known: Set<String> = [],
                                   _ report: inout ReplayReport) throws(StorageIOError) -> [BlockReader] {
        guard FileSystem.isDirectory(directory) else { return [] }
        var blocks: [BlockReader] = []
        for name in try FileSystem.listDirectory(directory) {
            if name.hasSuffix(".tmp"), ULID(String(name.dropLast(4))) != nil {
                if !readOnly {
                    try FileSystem.removeTree(directory + "/" + name)
                    report.problems.append("removed unfinished block write \(name)")
                }
                continue
            }
            guard ULID(name) != nil, !known.contains(name), FileSystem.isDirectory(directory + "/" + name) else { continue }
            if !readOnly {
                for file in BlockReader.replacedFiles where FileSystem.exists(directory + "/" + name + "/" + file + ".tmp") {
                    try FileSystem.removeTree(directory + "/" + name + "/" + file + ".tmp")
                    report.problems.append("removed unfinished \(file) write in block \(name)")
                }
            }
            do {
                blocks.append(try BlockReader(directory: directory + "/" + name))
            } catch {
                report.problems.append("block \(name) not loaded: \(error)")
                report.unloadedBlocks.append(name)
            }
        }
        // A compaction renames its child into place before it removes the parents: a parent still
        // here after a crash is already inside a complete child.
        let compacted = Set(blocks.flatMap { $0.meta.compaction.parents?.map(\.ulid) ?? [] })
        for block in blocks where compacted.contains(block.ulid) {
            if !readOnly {
                try FileSystem.withdrawDirectory(block.directory, in: directory)
                report.problems.append("removed block \(block.ulid): a compaction had already merged it into a child")
            }
        }
        return blocks.filter { !compacted.contains($0.ulid) }.sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) }
    }

    private static func replayRecord(_ record: UnsafeRawBufferPointer, into head: Head, _ report: inout ReplayReport) {
        report.records += 1
        var decoder = WALRecordDecoder(record)
        do {
            switch decoder.type {
            case WALRecordType.series.rawValue:
                try decoder.forEachSeries { ref, labels in
                    // The head numbers new series after the largest ref it holds: 2^64-1 leaves no next.
                    guard ref < .max else {
                        report.problems.append("skipped WAL series record with ref \(ref), which no writer assigns")
                        return
                    }
                    head.restore(ref: ref, labels: labels)
                }
            case WALRecordType.tombstones.rawValue:
                try decoder.forEachTombstone { ref, interval in
                    if let index = head.index(ofRef: ref) { head.deleteSamples(index, in: interval) }
                }
            case WALRecordType.samples.rawValue:
                var unstorable = 0
                defer {
                    if unstorable > 0 { report.problems.append("skipped \(unstorable) WAL samples with timestamps beyond ±2^53 ms") }
                    report.unstorableSamples += unstorable
                }
                try decoder.forEachSample { ref, t, v in
                    // Outside, the sample is corrupt or from an older version that took it; it would
                    // trap the head's arithmetic on every start.
                    guard StorableTime.range.contains(t) else {
                        unstorable += 1
                        return
                    }
                    guard let index = head.index(ofRef: ref) else {
                        report.orphanSamples += 1
                        return
                    }
                    // Replaying in the order of appending routes each sample as it was routed then.
                    if t > head.latest(index, epoch: 0).timestamp {
                        head.append(index, timestamp: t, valueBits: v)
                        report.samples += 1
                    } else if head.valueBits(index, at: t) == nil {
                        head.appendOutOfOrder(index, timestamp: t, valueBits: v)
                        report.samples += 1
                    }
                }
            default:
                report.problems.append("skipped WAL record of unknown type \(decoder.type)")
            }
        } catch {
            report.problems.append("\(error)")
        }
    }

    /// Cuts a torn or corrupt tail off the last segment, keeping the cut bytes in quarantine when
    /// they hold anything but zeros, and pads the segment to a whole page so Prometheus' reader,
    /// which reads segments back to back, stays page-aligned.
    private static func repairTail(path: String, bytes: UnsafeRawBufferPointer, validEnd: Int?, quarantine: String) throws(StorageIOError) {
        let keep = validEnd ?? bytes.count
        if keep < bytes.count && bytes[keep...].contains(where: { $0 != 0 }) {
            try FileSystem.makeDirectory(quarantine)
            let name = (path.split(separator: "/").last.map(String.init) ?? "segment") + "-offset-\(keep)"
            try FileSystem.writeFile(quarantine + "/" + name, Array(bytes[keep...]))
            try FileSystem.syncDirectory(quarantine)
        }
        let padded = (keep + WALFormat.pageSize - 1) / WALFormat.pageSize * WALFormat.pageSize
        guard padded != bytes.count || keep != bytes.count else { return }
        let file = try OpenFile(path: path, flags: O_WRONLY)
        try file.truncate(to: keep)
        try file.truncate(to: padded)
        try file.sync()
    }

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
            epoch &+= 1
            if epoch == 0 { epoch = 1 }
            pendingBuffer.removeAll(keepingCapacity: true)
            let window = options.outOfOrderWindow
            let oldestLate = window <= 0 ? Int64.max : (head.maxTime == .min ? Int64.min : StorableTime.subtracting(window, from: head.maxTime))
            var batch = AppendBatch(head: head, blocks: blocks, limits: limits, epoch: epoch, pending: pendingBuffer, oldestLateTimestamp: oldestLate)
            pendingBuffer = []
            let result = body(&batch)
            pendingBuffer = batch.pending
            guard !pendingBuffer.isEmpty else {
                return (result, AppendCommit(position: wal.position, createdSeries: 0, appendedSamples: 0))
            }
            let records = encodeRecords(pendingBuffer)
            let segmentBefore = wal.segmentIndex
            let (file, position): (OpenFile, UInt64)
            do throws(StorageIOError) {
                (file, position) = try log(records.records, to: wal)
            } catch {
                epoch &+= 1
                throw .io(error)
            }
            if wal.segmentIndex != segmentBefore { durability.syncedAll(through: wal.syncedAtCut) }
            durability.written(position, in: file)
            for index in records.newSeries { head.markLogged(index) }
            for p in pendingBuffer {
                if p.outOfOrder {
                    head.appendOutOfOrder(p.index, timestamp: p.timestamp, valueBits: p.valueBits)
                } else {
                    head.append(p.index, timestamp: p.timestamp, valueBits: p.valueBits)
                }
            }
            return (result, AppendCommit(position: position, createdSeries: records.newSeries.count, appendedSamples: pendingBuffer.count))
        }
    }

    /// `wal.log`, telling the budget when it opened a segment. Called under `lock`.
    private func log(_ records: [[UInt8]], to wal: WALWriter) throws(StorageIOError) -> (OpenFile, UInt64) {
        let wasOpen = wal.isOpen
        defer { if !wasOpen && wal.isOpen { options.walFileBudget?.opened(self) } }
        do throws(StorageIOError) {
            return try wal.log(records)
        } catch {
            // A writer that broke (a segment that failed to finish, a failed write it could not undo)
            // promises nothing more, also not to requests waiting on earlier bytes.
            if wal.broken != nil { durability?.poison(error) }
            throw error
        }
    }

    /// Pads, syncs and closes the active WAL segment, so its waiters are answered and its descriptor
    /// goes; a failure poisons the WAL as a failed group-commit sync does. Called under `lock`.
    private func finishWALSegment(_ wal: WALWriter) throws(StorageIOError) {
        defer { options.walFileBudget?.closed(self) }
        do throws(StorageIOError) {
            try wal.finishSegment()
        } catch {
            durability?.poison(error)
            throw error
        }
        durability?.segmentFinished(through: wal.position)
    }

    /// Finishes the WAL segment of a tenant the budget picked (the next append starts a new one);
    /// returns whether one was open. Waits for an append holding the lock, never for another tenant.
    func closeWALSegmentForBudget() -> Bool {
        lock.withLock { _ in
            guard let wal, wal.isOpen else {
                options.walFileBudget?.closed(self)
                return false
            }
            do throws(StorageIOError) {
                try finishWALSegment(wal)
                return true
            } catch {
                options.report(StorageEvent("closing a WAL segment for the descriptor budget failed; the tenant's writes are refused until restart",
                                             ["tenant": tenant, "error": "\(error)"], isProblem: true))
                return false
            }
        }
    }

    private func encodeRecords(_ pending: [AppendBatch.Pending]) -> (records: [[UInt8]], newSeries: [Int32]) {
        var newSeries: [Int32] = []
        var seen = Set<Int32>()
        for p in pending where !head.series[Int(p.index)].logged && seen.insert(p.index).inserted {
            newSeries.append(p.index)
        }
        var records: [[UInt8]] = []
        if !newSeries.isEmpty {
            encoder.beginSeries()
            for index in newSeries { encoder.addSeries(ref: head.series[Int(index)].ref, labels: head.labelPairs(index)) }
            records.append(encoder.bytes)
        }
        let first = pending[0]
        encoder.beginSamples(baseRef: head.series[Int(first.index)].ref, baseTimestamp: first.timestamp)
        for p in pending { encoder.addSample(ref: head.series[Int(p.index)].ref, timestamp: p.timestamp, valueBits: p.valueBits) }
        records.append(encoder.bytes)
        return (records, newSeries)
    }

    /// Whether the head spans more than 1.5 block ranges (Prometheus' rule for cutting a block), or
    /// its late samples hold more memory than allowed.
    private var needsCut: Bool {
        lock.withLock { _ in spansTooLong || head.outOfOrderBytes > options.outOfOrderMaxBytes }
    }

    private var spansTooLong: Bool { head.maxTime != .min && head.maxTime - head.minTime > options.blockRange / 2 * 3 }

    private func scheduleCut() {
        guard cutScheduled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        cutQueue.async {
            defer { self.cutScheduled.store(false, ordering: .releasing) }
            // A failure reached `observeCut`; the next append that needs a cut tries again.
            while !self.closing.load(ordering: .acquiring) && self.needsCut {
                guard let metas = try? self.cutDueRange(), !metas.isEmpty else { break }
            }
        }
    }

    /// Writes the head's oldest block range as a block when the head spans too long, and all late
    /// samples as blocks of their own (one per range, hinted `from-out-of-order`), then drops them
    /// from the head and checkpoints the WAL. Every step is safe to interrupt: before the renames the
    /// WAL still has everything; after them, head or WAL and a block may both hold a sample, which
    /// reads de-duplicate. Returns the blocks written (none when there was nothing to cut).
    @discardableResult
    public func cutBlock() throws -> [BlockMeta] {
        // Serialised with the background cuts, compactions and deletions.
        try cutQueue.sync { try cutDueRange() }
    }

    private func cutDueRange() throws -> [BlockMeta] {
        try cut { spansTooLong ? rangeEnd(head.minTime) : nil }
    }

    private func rangeEnd(_ t: Int64) -> Int64 { Head.rangeStart(t, options.blockRange) + options.blockRange }

    /// `boundary` (called under the lock) says before which time in-order data goes into a block, if
    /// any. A cut that wrote blocks or failed is timed and told to `observeCut`.
    private func cut(before boundary: () -> Int64?) throws -> [BlockMeta] {
        let clock = ContinuousClock()
        let started = clock.now
        do {
            let written = try cutNow(before: boundary)
            if !written.isEmpty { options.observeCut(BlockCutOutcome(tenant: tenant, duration: clock.now - started, result: .success(written))) }
            return written
        } catch {
            options.observeCut(BlockCutOutcome(tenant: tenant, duration: clock.now - started, result: .failure(error)))
            throw error
        }
    }

    private func cutNow(before boundary: () -> Int64?) throws -> [BlockMeta] {
        guard let wal else { throw StorageError.readOnly }
        let taken: (Head.Collected?, Head.CollectedOutOfOrder)? = lock.withLock { _ in
            guard !closed, head.maxTime != .min || head.outOfOrderBytes > 0 else { return nil }
            var inOrder: Head.Collected?
            if let boundary = boundary() {
                let c = head.collect(before: boundary)
                if !c.series.isEmpty { inOrder = c }
            }
            return (inOrder, head.collectOutOfOrder(blockRange: options.blockRange))
        }
        guard let (inOrder, late) = taken, inOrder != nil || !late.ranges.isEmpty else { return [] }
        var written: [BlockMeta] = []
        if let inOrder {
            let boundary = rangeEnd(inOrder.maxTime)
            written.append(try BlockWriter.write(series: inOrder.series, minTime: inOrder.minTime, maxTime: boundary,
                                                 into: directory, tenant: tenant))
        }
        for (_, series) in late.ranges.sorted(by: { $0.key < $1.key }) {
            let minTime = series.map { $0.chunks.first!.minTime }.min()!
            let maxTime = series.map { $0.chunks.last!.maxTime }.max()! + 1
            written.append(try BlockWriter.write(series: series, minTime: minTime, maxTime: maxTime, into: directory, tenant: tenant,
                                                 compaction: .init(level: 1, sources: [], hints: ["from-out-of-order"])))
        }
        Failpoint.hit("block-renamed-before-head-drop")
        let readers = try written.map { try BlockReader(directory: directory + "/" + $0.ulid) }
        let (checkpoint, snapshot) = try lock.withLock { (_) throws -> (Int, [(ref: UInt64, labels: [(String, String)], chunks: [[UInt8]])]) in
            // The checkpoint replaces the segments up to the active one, so that one must exist, even
            // empty: Prometheus reads the segments as a sequence without gaps. Opened before the head
            // changes, so running out of descriptors leaves the head and the WAL as they were.
            try wal.openSegment()
            blocks = (blocks + readers).sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) }
            if let inOrder { head.drop(inOrder.drops) }
            head.dropOutOfOrder(late.drops, bytes: late.bytes)
            let last = wal.segmentIndex
            try finishWALSegment(wal)
            return (last, head.checkpointSnapshot())
        }
        Failpoint.hit("head-dropped-before-checkpoint")
        let walDirectory = directory + "/wal"
        try WALCheckpoint.write(walDirectory: walDirectory, index: checkpoint, snapshot: snapshot)
        Failpoint.hit("checkpoint-before-cleanup")
        try ReadLease.removing(directory) { try WALCheckpoint.removeObsolete(walDirectory: walDirectory, upTo: checkpoint) }
        return written
    }

    /// Compacts the tenant's blocks by the planner until nothing is left to do (at most 64 steps),
    /// serialised with block cuts. Each child is written `.tmp` -> fsync -> rename before its
    /// parents are removed; a compaction refuses to start when free disk is below its parents' size.
    public func compact(ranges: [Int64] = CompactionPlanner.defaultRanges,
                        progress: (_ done: Int, _ group: CompactionGroup) -> Void = { _, _ in }) throws -> CompactionReport {
        guard wal != nil else { throw StorageError.readOnly }
        return cutQueue.sync { () -> CompactionReport in
            var report = CompactionReport(blocksBefore: blockMetas.count)
            // A group that fails (an unreadable parent, a full disk) is reported and its blocks
            // are left out of this run's later plans, so the rest of the tenant still compacts.
            var failed: [BlockMeta] = []
            for _ in 0..<64 {
                // Nor may a later group cover their time: a day merged around them would have a hole
                // and overlap them, and every later run would plan that overlap again.
                let plan = CompactionPlanner.plan(blockMetas.filter { meta in !failed.contains { $0.ulid == meta.ulid } }, ranges: ranges)
                    .filter { group in !failed.contains { $0.minTime < group.maxTime && group.minTime < $0.maxTime } }
                if plan.isEmpty { break }
                for group in plan {
                    do {
                        report.written.append(try compact(group))
                        report.groups.append(group)
                        progress(report.groups.count, group)
                    } catch {
                        report.failures.append("\(group.reason.rawValue) of \(group.parents.map(\.ulid).joined(separator: ", ")): \(error)")
                        failed += group.parents
                    }
                }
            }
            report.blocksAfter = blockMetas.count
            return report
        }
    }

    /// Drops the blocks `RetentionPolicy` finds expired, serialised with cuts and compactions.
    public func applyRetention(keep: Int64) throws -> [BlockMeta] {
        guard wal != nil else { throw StorageError.readOnly }
        return try cutQueue.sync { () throws -> [BlockMeta] in
            let expired = RetentionPolicy.expired(blockMetas, keep: keep)
            let gone = Set(expired.map(\.ulid))
            let removed = lock.withLock { _ in
                let removed = blocks.filter { gone.contains($0.ulid) }
                blocks = blocks.filter { !gone.contains($0.ulid) }
                return removed
            }
            try remove(removed) { Failpoint.hit("retention-block-renamed") }
            return expired
        }
    }

    /// Deletes the samples of the series any selector matches inside `interval`, at once for
    /// every read: blocks get meta.json and then tombstones (each written `.tmp` -> fsync -> rename), the
    /// head drops the samples after a Tombstones record is in the WAL and fsynced. Compaction
    /// removes block data physically later. Serialised with cuts and compactions. With `dryRun`,
    /// only counts.
    public func deleteSeries(_ selectors: [[LabelMatcher]], in interval: DeletedInterval, dryRun: Bool = false) throws -> DeletionReport {
        guard let wal else { throw StorageError.readOnly }
        defer { options.walFileBudget?.used(self) }
        return try cutQueue.sync { () throws -> DeletionReport in
            var report = DeletionReport(dryRun: dryRun)
            for block in lock.withLock({ _ in blocks }) {
                var tombstones = block.tombstones
                var seen = Set<UInt32>()
                var deleted: UInt64 = 0, series = 0
                for matchers in selectors {
                    for (ref, n) in try block.deletable(matchers, in: interval) where seen.insert(ref).inserted {
                        deleted += UInt64(n)
                        series += 1
                        tombstones.add(ref, interval)
                    }
                }
                guard deleted > 0 else { continue }
                report.parts.append(.init(place: block.ulid, series: series, samples: Int(deleted)))
                if dryRun { continue }
                var meta = block.meta
                meta.stats.numTombstones = UInt64(tombstones.count)
                // Counted over the whole new tombstones, not added to the old count: the rerun after a
                // crash between the two files below must not count a deletion twice.
                meta.tally = BlockMeta.Tally(deletedSamples: try block.samplesDeleted(by: tombstones))
                // meta.json first: a crash before the tombstones leaves a meta counting deletions they
                // lack (a needless rewrite at worst; a rerun finds the samples still to delete), never
                // tombstones the meta does not count, which a rerun skips and compaction's 5% rule misses.
                try FileSystem.replaceFile(block.directory + "/meta.json", try meta.encoded())
                Failpoint.hit("delete-meta-before-tombstones")
                try FileSystem.replaceFile(block.directory + "/tombstones", tombstones.encoded()) {
                    Failpoint.hit("delete-tombstones-before-rename")
                }
                let replaced = block.replacing(tombstones: tombstones, meta: meta)
                lock.withLock { _ in blocks = blocks.map { $0.ulid == block.ulid ? replaced : $0 } }
            }
            if !dryRun { Failpoint.hit("delete-blocks-before-head") }
            try lock.withLock { (_) throws in
                var inHead: [(index: Int32, samples: Int)] = []
                var seen = Set<Int32>()
                for matchers in selectors {
                    for index in head.select(matchers) where seen.insert(index).inserted {
                        let n = head.samples(index, in: interval)
                        if n > 0 { inHead.append((index, n)) }
                    }
                }
                guard !inHead.isEmpty else { return }
                report.parts.append(.init(place: "head", series: inHead.count, samples: inHead.reduce(0) { $0 + $1.samples }))
                if dryRun { return }
                if closed { throw StorageError.closed }
                encoder.tombstones(inHead.map { (head.series[Int($0.index)].ref, interval) })
                let (file, position) = try log([encoder.bytes], to: wal)
                try file.sync()
                Failpoint.hit("delete-head-logged-before-drop")
                durability?.written(position, in: file)
                for (index, _) in inHead { head.deleteSamples(index, in: interval) }
            }
            return report
        }
    }

    /// Removes block directories no longer in the list: renamed to `<ulid>.tmp` first, so a crash
    /// midway leaves a leftover that the next open deletes, never a half-deleted block.
    private func remove(_ readers: [BlockReader], afterFirst: () -> Void = {}) throws {
        try ReadLease.removing(directory) { try removeNow(readers, afterFirst: afterFirst) }
    }

    private func removeNow(_ readers: [BlockReader], afterFirst: () -> Void) throws {
        for (k, block) in readers.enumerated() {
            try FileSystem.withdrawDirectory(block.directory, in: directory) { if k == 0 { afterFirst() } }
        }
    }

    private func compact(_ group: CompactionGroup) throws -> BlockMeta? {
        let wanted = Set(group.parents.map(\.ulid))
        let parents = lock.withLock { _ in blocks.filter { wanted.contains($0.ulid) } }
        let needed = try parents.reduce(0) { $0 + (try BlockCatalog.treeSize($1.directory)) }
        let free = FileSystem.freeBytes(directory)
        guard free >= needed else {
            throw StorageIOError("compaction needs about \(needed) bytes, \(free) free", directory, errno: ENOSPC)
        }
        var children: [BlockReader] = []
        // Parents whose every sample was deleted leave no child (as in Prometheus).
        let meta = try BlockCompactor.compact(parents, minTime: group.minTime, maxTime: group.maxTime, into: directory, tenant: tenant,
                                              compaction: BlockCompactor.childCompaction(group.parents))
        if let meta {
            Failpoint.hit("compaction-child-renamed")
            children = [try BlockReader(directory: directory + "/" + meta.ulid)]
        }
        lock.withLock { _ in
            blocks = (blocks.filter { !wanted.contains($0.ulid) } + children).sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) }
        }
        // Readers that copied the old list keep their mappings; the files go when they let go.
        try remove(parents) { Failpoint.hit("compaction-parent-removed") }
        Failpoint.hit("compaction-parents-removed")
        return meta
    }

    /// Loads block directories that appeared since the last look (imports); returns their ULIDs.
    @discardableResult
    public func loadNewBlocks() -> [String] {
        // Serialised with cuts and compactions, which add the blocks they write themselves.
        cutQueue.sync { loadNewBlocksNow() }
    }

    private func loadNewBlocksNow() -> [String] {
        let known = Set(lock.withLock { _ in blocks.map(\.ulid) })
        var report = ReplayReport()
        guard let fresh = try? Self.openBlocks(directory, readOnly: true, skipping: known, &report) else { return [] }
        for problem in report.problems { options.report(StorageEvent("block scan problem", ["tenant": tenant, "problem": problem], isProblem: true)) }
        guard !fresh.isEmpty else { return [] }
        lock.withLock { _ in
            let current = Set(blocks.map(\.ulid))
            blocks = (blocks + fresh.filter { !current.contains($0.ulid) }).sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) }
        }
        return fresh.map(\.ulid)
    }

    /// Block metas, oldest first.
    /// Runs `body` on the head and the live blocks under the tenant lock: how queriers read.
    func readView<T>(_ body: (Head, [BlockReader]) -> T) -> T {
        lock.withLock { _ in body(head, blocks) }
    }

    public var blockMetas: [BlockMeta] { lock.withLock { _ in blocks.map(\.meta) } }

    /// Calls `done` when `position` is durable by the sync policy (or with the error preventing it).
    public func whenDurable(_ position: UInt64, _ done: @escaping @Sendable (StorageIOError?) -> Void) {
        guard let durability else { return done(nil) }
        durability.whenDurable(position, done)
    }

    /// Read under the lock once, but for the WAL's size, read from disk after.
    public var figures: TenantFigures {
        var figures = lock.withLock { _ in
            TenantFigures(headSeries: head.seriesCount, outOfOrderBytes: head.outOfOrderBytes,
                          newestSampleTime: head.maxTime != .min ? head.maxTime : blocks.map(\.meta.maxTime).max().map { StorableTime.subtracting(1, from: $0) },
                          blocks: blocks.count, blockBytes: blocks.reduce(0) { $0 + $1.mappedBytes })
        }
        figures.walBytes = (try? BlockCatalog.treeSize(directory + "/wal")) ?? 0
        return figures
    }

    /// Memory held by late samples not yet written to blocks (bounded by `outOfOrderMaxBytes`).
    public var outOfOrderBytes: Int { lock.withLock { _ in head.outOfOrderBytes } }

    /// A name for the data in [minTime, maxTime] that changes whenever that data may have: nil
    /// while the head holds samples there (in order or late), else the overlapping blocks' ULIDs,
    /// hashed. Readers key caches of derived figures (cost rollups) by it.
    public func immutableVersion(minTime: Int64, maxTime: Int64) -> String? {
        lock.withLock { _ -> String? in
            if head.maxTime != .min && head.minTime <= maxTime && head.maxTime >= minTime { return nil }
            if let late = head.outOfOrderMinTime, late <= maxTime { return nil }
            let ulids = blocks.filter { $0.meta.minTime <= maxTime && $0.meta.maxTime > minTime }.map(\.ulid).sorted()
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in ulids.joined(separator: ",").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return "\(ulids.count)-" + String(hash, radix: 16)
        }
    }

    /// Every series with its sample count and time span, from the blocks' indexes and the head's
    /// chunk headers (no sample is decoded): what `tally analyze` needs. A sample held in two
    /// overlapping blocks counts twice until they are compacted.
    public func seriesSpans() throws -> [SeriesSpan] {
        var spans: [Labels: SeriesSpan] = [:]
        func add(_ labels: Labels, _ minTime: Int64, _ maxTime: Int64, _ samples: Int) {
            var span = spans[labels] ?? SeriesSpan(labels: labels, samples: 0, minTime: .max, maxTime: .min)
            span.samples += samples
            span.minTime = min(span.minTime, minTime)
            span.maxTime = max(span.maxTime, maxTime)
            spans[labels] = span
        }
        let (fromHead, blocks) = lock.withLock { _ in
            var fromHead: [(Labels, Int64, Int64, Int)] = []
            for index in 0..<Int32(head.seriesCount) {
                var samples = 0, lo = Int64.max, hi = Int64.min
                head.forEachChunk(index, includingOutOfOrder: true) { minTime, maxTime, bytes in
                    samples += XORChunk.sampleCount(bytes)
                    lo = min(lo, minTime)
                    hi = max(hi, maxTime)
                }
                for sample in head.series[Int(index)].outOfOrderBuffer {
                    samples += 1
                    lo = min(lo, sample.timestamp)
                    hi = max(hi, sample.timestamp)
                }
                if samples > 0 { fromHead.append((head.labels(index), lo, hi, samples)) }
            }
            return (fromHead, self.blocks)
        }
        for block in blocks {
            for ref in block.seriesRefs {
                let (pairs, chunks) = try block.series(ref)
                let labels = Labels(pairs.map { Label($0.0, $0.1) })
                for chunk in chunks {
                    let bytes = try block.chunk(chunk.ref)
                    add(labels, chunk.minTime, chunk.maxTime, XORChunk.sampleCount(bytes))
                }
            }
        }
        for (labels, lo, hi, samples) in fromHead { add(labels, lo, hi, samples) }
        return spans.values.sorted { $0.labels < $1.labels }
    }

    /// Series matching `matchers` with their samples in [minTime, maxTime] from blocks and head,
    /// merged by timestamp (a timestamp held twice is returned once), sorted by labels.
    public func select(_ matchers: [LabelMatcher], minTime: Int64 = .min, maxTime: Int64 = .max) throws -> [SeriesSamples] {
        try querier(minTime: minTime, maxTime: maxTime).select(matchers, minTime: minTime, maxTime: maxTime).compactMap { series in
            var samples: [Sample] = []
            var iterator = series.makeIterator()
            while iterator.advance() { samples.append(Sample(timestamp: iterator.timestamp, valueBits: iterator.valueBits)) }
            return samples.isEmpty ? nil : SeriesSamples(labels: series.labels, samples: samples)
        }
    }

    /// As `select`; with `skipUnreadable`, a block's series entry or chunk that cannot be read is
    /// handed to it and left out, and everything else is returned: what `tally dump` prints.
    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64,
                       skipUnreadable: ((BlockError) -> Void)?) throws -> [SeriesSamples] {
        let (fromHead, blocks) = lock.withLock { _ in (selectHead(matchers, minTime: minTime, maxTime: maxTime), self.blocks) }
        var sources = try blocks.map { try $0.select(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable: skipUnreadable) }
        sources.append(fromHead)
        return SeriesMerger.merge(sources)
    }

    private func selectHead(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) -> [SeriesSamples] {
        head.select(matchers).compactMap { index -> SeriesSamples? in
                var samples: [Sample] = []
                head.forEachChunk(index, includingOutOfOrder: true) { chunkMin, chunkMax, bytes in
                    guard chunkMax >= minTime, chunkMin <= maxTime else { return }
                    var it = XORIterator(bytes)
                    while let (t, v) = it.next(), t <= maxTime {
                        if t >= minTime { samples.append(Sample(timestamp: t, valueBits: v)) }
                    }
                }
                let series = head.series[Int(index)]
                if series.hasOutOfOrder {
                    samples += series.outOfOrderBuffer.filter { $0.timestamp >= minTime && $0.timestamp <= maxTime }
                    samples = SeriesMerger.sortedUnique(samples)
                }
                return samples.isEmpty ? nil : SeriesSamples(labels: head.labels(index), samples: samples)
            }
    }

    /// Waits for a running block cut, flushes what a Prometheus reader would not take from the WAL,
    /// then pads and syncs the WAL; later appends fail with `.closed`.
    ///
    /// Prometheus replays only WAL samples at or after its newest block's end, and ignores late
    /// ones. Tally's head is per series, so a slow sender's samples can lie below a block a faster
    /// one filled; a clean stop writes those (and all late samples) into blocks, so `promtool`
    /// and Thanos see everything a stopped Tally holds.
    public func close() throws {
        closing.store(true, ordering: .releasing)
        cutQueue.sync {}
        if wal != nil && !closed {
            do {
                _ = try cut {
                    guard let newest = blocks.map(\.meta.maxTime).max(), head.maxTime != .min, head.minTime < newest else { return nil }
                    return rangeEnd(newest - 1)
                }
            } catch {
                options.report(StorageEvent("flushing at close failed, the WAL keeps the data", ["tenant": tenant, "error": "\(error)"], isProblem: true))
            }
        }
        try lock.withLock { (_) throws(StorageIOError) in
            guard !closed else { return }
            closed = true
            durability?.close()
            if let wal { try finishWALSegment(wal) }
        }
    }
}

extension Head {
    /// The newest sample of a series, counting one accepted earlier in the same batch.
    func latest(_ index: Int32, epoch: UInt32) -> (timestamp: Int64, valueBits: UInt64) {
        // Field by field: copying the whole MemSeries would retain and release each of its arrays.
        let i = Int(index)
        return epoch != 0 && series[i].pendingEpoch == epoch
            ? (series[i].pendingTimestamp, series[i].pendingValueBits) : (series[i].lastTimestamp, series[i].lastValueBits)
    }
}
