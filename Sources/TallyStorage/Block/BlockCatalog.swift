/// The blocks in a tenant directory as their meta.json files describe them, without opening them.
public struct BlockListing: Sendable {
    public let meta: BlockMeta
    public let bytes: Int
}

public enum BlockCatalog {
    /// Block directories (strict ULID names with a meta.json) of `tenantDirectory`, oldest first.
    public static func list(tenantDirectory: String) throws -> [BlockListing] {
        try blockNames(tenantDirectory).map { name in
            let path = tenantDirectory + "/" + name
            return BlockListing(meta: try BlockMeta.read(directory: path, block: name), bytes: try treeSize(path))
        }.sorted { precedes($0.meta, $1.meta) }
    }

    /// Names of every block directory of `tenantDirectory`: in `list`'s order, then those whose
    /// meta.json does not read, for commands that report on each block (and name its problem).
    public static func names(tenantDirectory: String) throws -> [String] {
        var readable: [(name: String, meta: BlockMeta)] = []
        var unreadable: [String] = []
        for name in try blockNames(tenantDirectory) {
            if let meta = try? BlockMeta.read(directory: tenantDirectory + "/" + name, block: name) {
                readable.append((name, meta))
            } else {
                unreadable.append(name)
            }
        }
        return readable.sorted { precedes($0.meta, $1.meta) }.map(\.name) + unreadable
    }

    private static func blockNames(_ tenantDirectory: String) throws -> [String] {
        guard FileSystem.isDirectory(tenantDirectory) else { return [] }
        return try FileSystem.listDirectory(tenantDirectory).filter { ULID($0) != nil && FileSystem.exists(tenantDirectory + "/" + $0 + "/meta.json") }
    }

    private static func precedes(_ a: BlockMeta, _ b: BlockMeta) -> Bool { (a.minTime, a.ulid) < (b.minTime, b.ulid) }

    static func treeSize(_ path: String) throws -> Int {
        guard FileSystem.isDirectory(path) else { return FileSystem.fileSize(path) }
        return try FileSystem.listDirectory(path).reduce(0) { $0 + (try treeSize(path + "/" + $1)) }
    }
}
