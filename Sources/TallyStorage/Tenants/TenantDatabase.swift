#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization

/// One tenant's storage: its directory, WAL, head and blocks. Thread-safe; the state below is guarded
/// by `lock`, which serialises appends (the WAL is a single ordered log).
///
/// This file opens and closes the tenant and keeps its block list; the rest is by role, as in
/// Prometheus' `tsdb/`: `TenantAppend` (the append commit), `TenantWAL` (logging, segments,
/// durability), `TenantBlockCut`, `TenantCompaction`, `TenantRetention`, `TenantDeletion`,
/// `TenantSelect` (reads); the head's side is in `Head/` (`HeadAppend`, `HeadReplay`, ...).
public final class TenantDatabase: @unchecked Sendable {
    public let tenant: String
    public let directory: String
    public let replay: ReplayReport

    // Internal, not private: the extensions in the other `Tenant*.swift` files (append, WAL, block
    // cuts, compaction, retention, deletion, reads) work on this state, under `lock` where it says.
    let lock = TenantLock()
    let head: Head
    let wal: WALWriter?
    let durability: WALDurability?
    let options: StorageOptions
    /// Blocks by ascending minTime then ULID (`inBlockOrder`); replaced, never mutated, under `lock`.
    var blocks: [BlockReader]
    /// Block directories that did not open, at the open or the last block scan, under `lock`: reads
    /// over their time say that their samples are left out.
    var unloaded: [UnloadedBlock] = []
    /// Serialises block cuts, compactions, retention, deletions and block scans.
    let cutQueue = DispatchQueue(label: "tally.block-cut")
    let cutScheduled = Atomic<Bool>(false)
    /// Set by `close`: owed cuts stop between blocks, so a stop never waits for a long backlog (the
    /// WAL keeps what was not cut, and the next open catches up).
    let closing = Atomic<Bool>(false)
    /// The append transaction's state (TenantAppend.swift), under `lock`.
    var pendingBuffer: [AppendBatch.Pending] = []
    var closed = false
    var encoder = WALRecordEncoder()

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
        // A link would take every file written for the tenant outside the storage.
        if FileSystem.exists(directory) && !FileSystem.isRealDirectory(directory) { throw StorageIOError("open", directory, errno: ELOOP) }
        // `wal/` and `chunks_head/` may be links (to a faster disk), but never into the storage
        // root beside their tenant: two tenants would then write one WAL, and read each other's.
        if let tenant = FileSystem.resolved(directory), let root = FileSystem.resolved(directory + "/..") {
            for inner in ["/wal", "/chunks_head"] {
                guard let target = FileSystem.resolved(directory + inner), target != tenant + inner else { continue }
                if target.hasPrefix(root + "/") || target == root { throw StorageIOError("open", directory + inner, errno: ELOOP) }
            }
        }
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
        rmdir(directory + "/" + HeadChunkFormat.directoryName)
        if rmdir(directory) != 0 { try? FileSystem.removeTree(directory) }
    }

    private static func openOrCreate(directory: String, tenant: String, options: StorageOptions, readOnly: Bool) throws(StorageIOError) -> TenantDatabase {
        let walDirectory = directory + "/wal"
        let chunkDirectory = directory + "/" + HeadChunkFormat.directoryName
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
        // A read-only open replays the WAL alone: the writer may be rewriting the chunk files.
        var mapped: MappedHeadChunks?
        if !readOnly {
            let found = try MappedHeadChunks(directory: chunkDirectory)
            report.problems += found.problems
            report.headChunkCorruptions = found.corruptions
            head.reserveRefs(through: found.maxRef)
            head.chunkWriter = HeadChunkWriter(directory: chunkDirectory, existing: found.fileMaxTimes) { error in
                options.report(StorageEvent("head chunk files not written any more, restarts replay the WAL in full",
                                            ["tenant": tenant, "error": "\(error)"], isProblem: true))
            }
            mapped = found
        }
        // The WAL before the blocks: a block that took samples out of the WAL was in place before
        // the checkpoint that dropped them (see ReadLease).
        let nextSegment = try head.loadWAL(tenantDirectory: directory, readOnly: readOnly, mapped: mapped, &report)
        mapped = nil
        let (blocks, unloaded) = try openBlocks(directory, readOnly: readOnly, &report)
        report.series = head.seriesCount
        report.duration = clock.now - started
        guard !readOnly else {
            let db = TenantDatabase(tenant: tenant, directory: directory, head: head, wal: nil, durability: nil,
                                    blocks: blocks, options: options, replay: report)
            db.unloaded = unloaded
            return db
        }
        // The next segment is created by the first append: a replayed tenant holds no descriptor.
        let wal = WALWriter(directory: walDirectory, segmentIndex: nextSegment, segmentSize: options.walSegmentSize,
                            compress: options.walCompression)
        let durability = WALDurability(policy: options.syncPolicy, observeSync: options.observeSync)
        let db = TenantDatabase(tenant: tenant, directory: directory, head: head, wal: wal, durability: durability,
                                blocks: blocks, options: options, replay: report)
        db.unloaded = unloaded
        // A replayed head may already owe blocks (a restart after a crash mid-cut): catch up now.
        if db.needsCut { db.scheduleCut() }
        return db
    }

    /// Opens every block directory (a strict ULID name); in write mode first removes `.tmp`
    /// leftovers of interrupted block writes (not those an import is filling: `ImportLock`), and of
    /// the files a deletion replaces inside a block.
    /// An unreadable block is reported, left on disk and returned among `unloaded`.
    /// `neighbour`, a block already open, shares its symbols with the first one opened.
    private static func openBlocks(_ directory: String, readOnly: Bool, skipping known: Set<String> = [], neighbour: BlockReader? = nil,
                                   _ report: inout ReplayReport) throws(StorageIOError) -> (blocks: [BlockReader], unloaded: [UnloadedBlock]) {
        guard FileSystem.isDirectory(directory) else { return ([], []) }
        var blocks: [BlockReader] = []
        var unloaded: [UnloadedBlock] = []
        for name in try FileSystem.listDirectory(directory).sorted() {
            if name.hasSuffix(".tmp"), ULID(String(name.dropLast(4))) != nil {
                if !readOnly, try ImportLock.removingUnlessHeld(directory, String(name.dropLast(4)), { () throws(StorageIOError) in
                    try FileSystem.removeTree(directory + "/" + name)
                }) {
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
                // Names list in ULID order, so neighbours are mostly of the same time and series.
                let block = try BlockReader(directory: directory + "/" + name, sharingSymbolsWith: blocks.last ?? neighbour)
                try block.checkNamed(name)
                blocks.append(block)
            } catch {
                report.problems.append("block \(name) not loaded: \(error)")
                report.unloadedBlocks.append(name)
                unloaded.append(UnloadedBlock(name: name, directory: directory + "/" + name, reason: "\(error)"))
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
        return (blocks.filter { !compacted.contains($0.ulid) }.inBlockOrder, unloaded)
    }

    /// Loads block directories that appeared since the last look (imports); returns their ULIDs.
    @discardableResult
    public func loadNewBlocks() -> [String] {
        // Serialised with cuts and compactions, which add the blocks they write themselves.
        cutQueue.sync { loadNewBlocksNow() }
    }

    private func loadNewBlocksNow() -> [String] {
        let (known, newest) = lock.withLock { _ in (Set(blocks.map(\.ulid)), blocks.last) }
        var report = ReplayReport()
        guard let (fresh, unloaded) = try? Self.openBlocks(directory, readOnly: true, skipping: known, neighbour: newest, &report) else { return [] }
        for problem in report.problems { options.report(StorageEvent("block scan problem", ["tenant": tenant, "problem": problem], isProblem: true)) }
        // Every directory not loaded before was looked at: these are all that stay unloaded.
        lock.withLock { _ in self.unloaded = unloaded }
        guard !fresh.isEmpty else { return [] }
        lock.withLock { _ in
            let current = Set(blocks.map(\.ulid))
            blocks = (blocks + fresh.filter { !current.contains($0.ulid) }).inBlockOrder
        }
        return fresh.map(\.ulid)
    }

    /// Runs `body` on the head and the live blocks under the tenant lock: how queriers read.
    func readView<T>(_ body: (Head, [BlockReader]) -> T) -> T {
        lock.withLock { _ in body(head, blocks) }
    }

    /// Block directories on disk that did not open, at the open or the last block scan.
    public var unloadedBlocks: [UnloadedBlock] { lock.withLock { _ in unloaded } }

    /// Block metas, oldest first.
    public var blockMetas: [BlockMeta] { lock.withLock { _ in blocks.map(\.meta) } }

    /// Removes block directories no longer in the list: renamed to `<ulid>.tmp` first, so a crash
    /// midway leaves a leftover that the next open deletes, never a half-deleted block.
    func remove(_ readers: [BlockReader], afterFirst: () -> Void = {}) throws {
        try ReadLease.removing(directory) { try removeNow(readers, afterFirst: afterFirst) }
    }

    private func removeNow(_ readers: [BlockReader], afterFirst: () -> Void) throws {
        for (k, block) in readers.enumerated() {
            try FileSystem.withdrawDirectory(block.directory, in: directory) { if k == 0 { afterFirst() } }
        }
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

    /// The head's heap by structure, under the lock (a walk over every series).
    public func headMemory() -> HeadMemory { lock.withLock { _ in head.memory() } }

    /// Memory held by late samples not yet written to blocks (bounded by `outOfOrderMaxBytes`).
    public var outOfOrderBytes: Int { lock.withLock { _ in head.outOfOrderBytes } }

    /// A name for the data in [minTime, maxTime] that changes whenever that data may have: nil
    /// while the head holds samples there (in order or late), else the overlapping blocks' ULIDs
    /// (each with a hash of its tombstones once a deletion gave it some), hashed. Readers key caches
    /// of derived figures (cost rollups) by it.
    public func immutableVersion(minTime: Int64, maxTime: Int64) -> String? {
        lock.withLock { _ -> String? in
            if head.maxTime != .min && head.minTime <= maxTime && head.maxTime >= minTime { return nil }
            if let late = head.outOfOrderMinTime, late <= maxTime { return nil }
            let ulids = blocks.filter { $0.meta.minTime <= maxTime && $0.meta.maxTime > minTime }
                .map { block in block.tombstonesDigest.map { block.ulid + "~" + String($0, radix: 16) } ?? block.ulid }.sorted()
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in ulids.joined(separator: ",").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return "\(ulids.count)-" + String(hash, radix: 16)
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
            head.chunkWriter?.sync()
            durability?.close()
            if let wal { try finishWALSegment(wal) }
        }
    }
}

extension [BlockReader] {
    /// The order of `TenantDatabase.blocks`: by minTime, then ULID.
    var inBlockOrder: [BlockReader] { sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) } }
}
