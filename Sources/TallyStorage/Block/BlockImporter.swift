#if canImport(Glibc)
import Glibc
#endif

/// Adds existing Prometheus blocks to a tenant, safely next to a running server: each block is
/// verified in full, copied under `<ulid>.tmp`, synced, then renamed into place; the server loads
/// it on its next block scan. A block already present (same ULID) is skipped.
public enum BlockImporter {
    public enum Outcome: Sendable, Equatable {
        case imported(ulid: String, series: UInt64, samples: UInt64)
        case alreadyPresent(ulid: String)
    }

    /// Block directories in `source`: the directory itself if it is a block, else its block children.
    public static func blocks(in source: String) throws -> [String] {
        if FileSystem.exists(source + "/meta.json") { return [source] }
        return try FileSystem.listDirectory(source).filter { ULID($0) != nil && FileSystem.exists(source + "/" + $0 + "/meta.json") }
            .map { source + "/" + $0 }
    }

    public static func importBlock(_ source: String, tenantDirectory: String, tenant: String) throws -> Outcome {
        let reader = try BlockReader(directory: source)
        try BlockVerifier.verify(reader)
        let ulid = reader.meta.ulid
        guard ULID(ulid) != nil else { throw BlockError(block: ulid, section: "meta.json", problem: "ulid is not a valid ULID") }
        if FileSystem.exists(tenantDirectory + "/" + ulid) { return .alreadyPresent(ulid: ulid) }
        let root = String(tenantDirectory[..<(tenantDirectory.lastIndex(of: "/") ?? tenantDirectory.startIndex)])
        if !root.isEmpty { try FileSystem.makeDirectory(root) }
        try FileSystem.makeDirectory(tenantDirectory)
        guard FileSystem.isRealDirectory(tenantDirectory) else { throw StorageIOError("open", tenantDirectory, errno: ELOOP) }
        try FileSystem.makeDirectory(tenantDirectory + "/wal")
        let lock = try ImportLock(tenantDirectory: tenantDirectory, ulid: ulid)
        defer { lock.release() }
        // Checked again under the lock: another import of the same block may have just finished.
        if FileSystem.exists(tenantDirectory + "/" + ulid) { return .alreadyPresent(ulid: ulid) }
        let temporary = tenantDirectory + "/" + ulid + ".tmp"
        try FileSystem.removeTree(temporary)
        try FileSystem.makeDirectory(temporary)
        try FileSystem.makeDirectory(temporary + "/chunks")
        for name in try FileSystem.listDirectory(source + "/chunks") {
            try FileSystem.writeFile(temporary + "/chunks/" + name, try FileSystem.readFile(source + "/chunks/" + name))
        }
        try FileSystem.syncDirectory(temporary + "/chunks")
        try FileSystem.writeFile(temporary + "/index", try FileSystem.readFile(source + "/index"))
        let tombstones = source + "/tombstones"
        try FileSystem.writeFile(temporary + "/tombstones",
                                 FileSystem.exists(tombstones) ? try FileSystem.readFile(tombstones) : BlockWriter.tombstonesMagic + [1, 0, 0, 0, 0])
        var meta = reader.meta
        meta.thanos = BlockMeta.Thanos(labels: (meta.thanos?.labels ?? [:]).merging(["tenant_id": tenant]) { $1 },
                                       downsample: .init(resolution: 0), source: meta.thanos?.source ?? "bucket.upload", version: 1)
        try FileSystem.writeFile(temporary + "/meta.json", try meta.encoded())
        try FileSystem.publishDirectory(temporary, as: tenantDirectory + "/" + ulid, in: tenantDirectory) { Failpoint.hit("import-before-rename") }
        Failpoint.hit("import-block-renamed")
        return .imported(ulid: ulid, series: meta.stats.numSeries, samples: meta.stats.numSamples)
    }
}

/// `<tenant>/<ulid>.importing`, held (`flock`) by an import from before it makes `<ulid>.tmp` until
/// the block is renamed into place. A server opening the tenant removes a `<ulid>.tmp` left by an
/// interrupted write, but not one whose lock an import holds: it would pull the files from under
/// the import, which then published a block without them.
struct ImportLock {
    private let file: OpenFile

    static func path(_ tenantDirectory: String, _ ulid: String) -> String { tenantDirectory + "/" + ulid + ".importing" }

    init(tenantDirectory: String, ulid: String) throws(StorageIOError) {
        for _ in 0..<100 {
            let file = try OpenFile(path: Self.path(tenantDirectory, ulid), flags: O_RDONLY | O_CREAT)
            while flock(file.fd, LOCK_EX) != 0 {
                guard errno == EINTR else { throw StorageIOError("flock", file.path) }
            }
            // Locked after the import before us removed the file: this lock guards nothing.
            var held = stat(), named = stat()
            if fstat(file.fd, &held) == 0, stat(file.path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                self.file = file
                return
            }
        }
        throw StorageIOError("flock", Self.path(tenantDirectory, ulid))
    }

    /// Removes the lock file, then lets go of it (a waiting import of the same block then finds it
    /// in place).
    func release() {
        unlink(file.path)
        flock(file.fd, LOCK_UN)
    }

    /// Runs `remove` (of `<ulid>.tmp`) holding the lock, unless an import holds it: then nothing
    /// and false. The lock file goes too, so a crashed import's is not left behind; an import
    /// waiting on it finds it gone and locks a new one.
    static func removingUnlessHeld(_ tenantDirectory: String, _ ulid: String, _ remove: () throws(StorageIOError) -> Void) throws(StorageIOError) -> Bool {
        let file = try OpenFile(path: path(tenantDirectory, ulid), flags: O_RDONLY | O_CREAT)
        guard flock(file.fd, LOCK_EX | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK || errno == EINTR { return false }
            throw StorageIOError("flock", file.path)
        }
        defer { flock(file.fd, LOCK_UN) }
        try remove()
        unlink(file.path)
        return true
    }
}
