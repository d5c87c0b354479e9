#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Merging blocks (Prometheus' `compact.go` as `DB.compactBlocks` runs it): the planner's groups,
/// one child each, written before its parents are removed.
extension TenantDatabase {
    /// Compacts the tenant's blocks by the planner until nothing is left to do (at most 64 steps),
    /// serialised with block cuts. Each child is written `.tmp` -> fsync -> rename before its
    /// parents are removed; a compaction refuses to start when free disk is below its parents' size.
    public func compact(ranges: [Int64] = CompactionPlanner.defaultRanges, cleaningTombstones: Bool = false,
                        progress: (_ done: Int, _ group: CompactionGroup) -> Void = { _, _ in }) throws -> CompactionReport {
        guard wal != nil else { throw StorageError.readOnly }
        return cutQueue.sync { () -> CompactionReport in
            var report = CompactionReport(blocksBefore: blockMetas.count)
            // A group that fails (an unreadable parent, a full disk) is reported and its blocks
            // are left out of this run's later plans, so the rest of the tenant still compacts.
            var failed: [BlockMeta] = []
            // A block on disk that did not load is not in any plan, so a child could be written
            // over it and both be read: its time, read from its `meta.json`, is kept clear like a
            // failed group's. One whose time cannot be read stops every merge until it is mended
            // or moved.
            for name in unloadedBlockDirectories() {
                do {
                    failed.append(try BlockMeta.read(directory: directory + "/" + name, block: name))
                    report.failures.append("block \(name) is on disk but not loaded (tally blocks verify says why): nothing over its time is compacted")
                } catch {
                    report.failures.append("block \(name) is on disk but not loaded, and its time range is unknown (\(error)): nothing is compacted")
                    report.blocksAfter = report.blocksBefore
                    return report
                }
            }
            for _ in 0..<64 {
                // Nor may a later group cover their time: a day merged around them would have a hole
                // and overlap them, and every later run would plan that overlap again.
                let plan = CompactionPlanner.plan(blockMetas.filter { meta in !failed.contains { $0.ulid == meta.ulid } }, ranges: ranges,
                                                  cleaningTombstones: cleaningTombstones)
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

    /// Block directories (strict ULID names) that are not among the loaded blocks.
    private func unloadedBlockDirectories() -> [String] {
        let loaded = Set(lock.withLock { _ in blocks.map(\.ulid) })
        let names = (try? FileSystem.listDirectory(directory)) ?? []
        return names.filter { ULID($0) != nil && !loaded.contains($0) && FileSystem.isDirectory(directory + "/" + $0) }.sorted()
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
            children = [try BlockReader(directory: directory + "/" + meta.ulid, sharingSymbolsWith: parents.last)]
        }
        lock.withLock { _ in
            blocks = (blocks.filter { !wanted.contains($0.ulid) } + children).inBlockOrder
        }
        // Readers that copied the old list keep their mappings; the files go when they let go.
        try remove(parents) { Failpoint.hit("compaction-parent-removed") }
        Failpoint.hit("compaction-parents-removed")
        return meta
    }
}
