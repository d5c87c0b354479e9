import Dispatch

/// Deleting series (Prometheus' `DB.Delete`): tombstones in the blocks, then a Tombstones record in
/// the WAL and the samples dropped from the head.
extension TenantDatabase {
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
                if let part = try delete(selectors, in: interval, from: block, dryRun: dryRun) { report.parts.append(part) }
            }
            if !dryRun { Failpoint.hit("delete-blocks-before-head") }
            if let part = try deleteFromHead(selectors, in: interval, wal: wal, dryRun: dryRun) { report.parts.append(part) }
            return report
        }
    }

    /// Tombstones one block's matching samples; nil when it holds none.
    private func delete(_ selectors: [[LabelMatcher]], in interval: DeletedInterval, from block: BlockReader,
                        dryRun: Bool) throws -> DeletionReport.Part? {
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
        guard deleted > 0 else { return nil }
        let part = DeletionReport.Part(place: block.ulid, series: series, samples: Int(deleted))
        if dryRun { return part }
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
        return part
    }

    /// Logs and syncs a Tombstones record for the head's matching samples, then drops them; nil when
    /// the head holds none.
    private func deleteFromHead(_ selectors: [[LabelMatcher]], in interval: DeletedInterval, wal: WALWriter,
                                dryRun: Bool) throws -> DeletionReport.Part? {
        try lock.withLock { (_) throws -> DeletionReport.Part? in
            var inHead: [(index: Int32, samples: Int)] = []
            var seen = Set<Int32>()
            for matchers in selectors {
                for index in head.select(matchers) where seen.insert(index).inserted {
                    let n = head.samples(index, in: interval)
                    if n > 0 { inHead.append((index, n)) }
                }
            }
            guard !inHead.isEmpty else { return nil }
            let part = DeletionReport.Part(place: "head", series: inHead.count, samples: inHead.reduce(0) { $0 + $1.samples })
            if dryRun { return part }
            if closed { throw StorageError.closed }
            // Before the record: chunk files must never hold samples a logged deletion removed.
            try head.chunkWriter?.removeAll()
            head.walHasTombstones = true
            encoder.tombstones(inHead.map { (head.ref($0.index), interval) })
            let (file, position) = try log([encoder.bytes], to: wal)
            try file.sync()
            Failpoint.hit("delete-head-logged-before-drop")
            durability?.written(position, in: file)
            for (index, _) in inHead { head.deleteSamples(index, in: interval) }
            return part
        }
    }
}
