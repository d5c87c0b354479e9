/// The blocks in a tenant directory as their meta.json files describe them, without opening them.
public struct BlockListing: Sendable {
    public let meta: BlockMeta
    public let bytes: Int
}

public enum BlockCatalog {
    /// Block directories (strict ULID names with a meta.json) of `tenantDirectory`, oldest first.
    public static func list(tenantDirectory: String) throws -> [BlockListing] {
        guard FileSystem.isDirectory(tenantDirectory) else { return [] }
        return try FileSystem.listDirectory(tenantDirectory).compactMap { name -> BlockListing? in
            let path = tenantDirectory + "/" + name
            guard ULID(name) != nil, FileSystem.exists(path + "/meta.json") else { return nil }
            return BlockListing(meta: try BlockMeta.read(directory: path, block: name), bytes: try treeSize(path))
        }.sorted { ($0.meta.minTime, $0.meta.ulid) < ($1.meta.minTime, $1.meta.ulid) }
    }

    static func treeSize(_ path: String) throws -> Int {
        guard FileSystem.isDirectory(path) else { return FileSystem.fileSize(path) }
        return try FileSystem.listDirectory(path).reduce(0) { $0 + (try treeSize(path + "/" + $1)) }
    }
}
