#if canImport(Glibc)
import Glibc
#endif

/// Snapshots (Prometheus' `DB.Snapshot`, its `admin/tsdb/snapshot`): the tenant's data as it is
/// now, in `snapshots/<name>/` beside its blocks, readable by promtool and Prometheus as a data
/// directory of its own and copied elsewhere for a backup. Blocks are hard links (no bytes copied;
/// a block that retention or compaction later removes stays whole in the snapshot); the head, unless
/// left out, is written as blocks: its in-order samples as one block, its late samples as blocks of
/// their own, one per block range, as a cut writes them (Prometheus 2.42 leaves its late samples out).
extension TenantDatabase {
    /// Writes the snapshot under `snapshots/<name>.tmp`, then publishes it as `snapshots/<name>`: a
    /// crash leaves the temporary directory (which the next snapshot of that name replaces) or the
    /// whole snapshot. Serialised with cuts, compactions, retention and deletions, so no block goes
    /// while it is linked. Returns how many blocks the snapshot holds. `name` comes from
    /// `snapshotName`, never from a client.
    @discardableResult
    public func snapshot(name: String, includingHead: Bool) throws -> Int {
        guard wal != nil else { throw StorageError.readOnly }
        precondition(!name.isEmpty && !name.contains("/") && !name.hasPrefix("."), "snapshot names come from snapshotName")
        return try cutQueue.sync { () throws -> Int in
            let parent = directory + "/snapshots"
            let temporary = parent + "/" + name + ".tmp"
            try FileSystem.makeDirectory(parent)
            if FileSystem.exists(temporary) { try FileSystem.removeTree(temporary) }
            try FileSystem.makeDirectory(temporary)
            let (blockDirectories, head, late) = try lock.withLock { (_) throws -> ([String], (series: [BlockSeries], minTime: Int64, maxTime: Int64)?, [Int64: [BlockSeries]]) in
                guard !closed else { throw StorageError.closed }
                return (blocks.map(\.directory), includingHead ? self.head.inOrderBlockSeries() : nil,
                        includingHead ? self.head.outOfOrderRanges(blockRange: options.blockRange) : [:])
            }
            for block in blockDirectories { try Self.link(tree: block, into: temporary) }
            var count = blockDirectories.count
            if let head, !head.series.isEmpty {
                // Block ranges are half-open: one past the newest sample.
                _ = try BlockWriter.write(series: head.series, minTime: head.minTime, maxTime: head.maxTime + 1, into: temporary, tenant: tenant)
                count += 1
            }
            for (_, series) in late.sorted(by: { $0.key < $1.key }) {
                let minTime = series.map { $0.chunks.first!.minTime }.min()!
                let maxTime = series.map { $0.chunks.last!.maxTime }.max()! + 1
                _ = try BlockWriter.write(series: series, minTime: minTime, maxTime: maxTime, into: temporary, tenant: tenant,
                                      compaction: .init(level: 1, sources: [], hints: ["from-out-of-order"]))
                count += 1
            }
            try FileSystem.publishDirectory(temporary, as: parent + "/" + name, in: parent)
            return count
        }
    }

    /// Prometheus' snapshot name: the UTC time to the second, then 16 random hex digits
    /// (`20261203T172400Z-0123456789abcdef`).
    public static func snapshotName() -> String {
        var t = time_t(timeNowMilliseconds() / 1000), parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let random = String(UInt64.random(in: .min ... .max), radix: 16)
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z-"
            + String(repeating: "0", count: 16 - random.count) + random
    }

    /// Recreates directory `source` inside `parent` under its own name, its files hard-linked, its
    /// directories' entries synced.
    private static func link(tree source: String, into parent: String) throws(StorageIOError) {
        let target = parent + "/" + String(source[source.index(after: source.lastIndex(of: "/") ?? source.startIndex)...])
        try FileSystem.makeDirectory(target)
        for entry in try FileSystem.listDirectory(source) {
            let path = source + "/" + entry
            if FileSystem.isDirectory(path) {
                try link(tree: path, into: target)
            } else if Glibc.link(path, target + "/" + entry) != 0 {
                throw StorageIOError("link", path)
            }
        }
        try FileSystem.syncDirectory(target)
    }
}
