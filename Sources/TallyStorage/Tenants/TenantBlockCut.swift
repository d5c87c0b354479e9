#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Block cuts (Prometheus' `DB.Compact` of the head, `compactHead` and `truncateWAL`): when one is
/// owed, the background queue that runs it, and the crash-safe order of a cut (docs/architecture.md, "Blocks").
extension TenantDatabase {
    /// Whether the head spans more than 1.5 block ranges (Prometheus' rule for cutting a block), or
    /// its late samples hold more memory than allowed.
    var needsCut: Bool {
        lock.withLock { _ in spansTooLong || head.outOfOrderBytes > options.outOfOrderMaxBytes }
    }

    private var spansTooLong: Bool { head.maxTime != .min && head.maxTime - head.minTime > options.blockRange / 2 * 3 }

    func scheduleCut() {
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

    func rangeEnd(_ t: Int64) -> Int64 { Head.rangeStart(t, options.blockRange) + options.blockRange }

    /// `boundary` (called under the lock) says before which time in-order data goes into a block, if
    /// any. A cut that wrote blocks or failed is timed and told to `observeCut`.
    func cut(before boundary: () -> Int64?) throws -> [BlockMeta] {
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
        let newest = lock.withLock { _ in blocks.last }
        let readers = try written.map { try BlockReader(directory: directory + "/" + $0.ulid, sharingSymbolsWith: newest) }
        let (checkpoint, snapshot, forgetsTombstones) = try lock.withLock { (_) throws -> (Int, [Head.CheckpointSeries], Bool) in
            // The checkpoint drops the WAL's Tombstones records. Chunk files written since the
            // deletion by another process (promtool opening the tenant writes its own, with
            // deleted samples in them: Prometheus applies tombstones when it reads) would then
            // bring those samples back at the next start: the files go first.
            let forgetsTombstones = head.walHasTombstones
            if forgetsTombstones { try head.chunkWriter?.removeAll() }
            // The checkpoint replaces the segments up to the active one, so that one must exist, even
            // empty: Prometheus reads the segments as a sequence without gaps. Opened before the head
            // changes, so running out of descriptors leaves the head and the WAL as they were.
            try wal.openSegment()
            blocks = (blocks + readers).inBlockOrder
            if let inOrder { head.drop(inOrder) }
            head.dropOutOfOrder(late.drops, bytes: late.bytes)
            let last = wal.segmentIndex
            try finishWALSegment(wal)
            return (last, head.checkpointSnapshot(), forgetsTombstones)
        }
        Failpoint.hit("head-dropped-before-checkpoint")
        let walDirectory = directory + "/wal"
        try WALCheckpoint.write(walDirectory: walDirectory, index: checkpoint, snapshot: snapshot, compress: wal.compress)
        Failpoint.hit("checkpoint-before-cleanup")
        try ReadLease.removing(directory) { try WALCheckpoint.removeObsolete(walDirectory: walDirectory, upTo: checkpoint) }
        lock.withLock { _ in
            if forgetsTombstones { head.walHasTombstones = false }
            head.chunkWriter?.removeFiles(endingBefore: head.minTime)
        }
        Self.releaseFreeMemory()
        return written
    }

    /// A cut's copies (the block's series and labels, the checkpoint's snapshot, the head's rebuilt
    /// index beside the old one) are freed when it ends, but glibc keeps freed pages resident in the
    /// arena of the thread that used them; `malloc_trim(0)` hands them back (milliseconds, once a
    /// cut). Looked up at run time: Swift's Glibc module leaves out `malloc.h`.
    static func releaseFreeMemory() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        guard let trim = mallocTrim else { return }
        _ = unsafeBitCast(trim, to: Trim.self)(0)
        #endif
    }
}

#if canImport(Glibc)
private nonisolated(unsafe) let mallocTrim = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim")
#endif
