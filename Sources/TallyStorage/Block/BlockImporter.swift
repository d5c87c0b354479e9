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
        try FileSystem.makeDirectory(tenantDirectory + "/wal")
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
