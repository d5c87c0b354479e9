import TallyStorage
#if canImport(Glibc)
import Glibc
#endif

/// The storage root and tenant a command names, checked before anything is read or written: a
/// mistyped path is an error (exit 1), never a new empty store.
enum StoreLocation {
    /// `storage` itself, once known to be a directory.
    static func root(_ storage: String) throws -> String {
        guard isDirectory(storage) else { throw CommandFailure("no storage at \(storage): no such directory (check --storage)") }
        return storage
    }

    /// `<storage>/<tenant>`, once the tenant id is valid and the tenant exists.
    static func tenantDirectory(storage: String, tenant: String) throws -> String {
        guard TenantID.isValid(tenant) else { throw CommandFailure(TenantError.invalidName(tenant).description) }
        let directory = try root(storage) + "/" + tenant
        guard isDirectory(directory) else { throw CommandFailure("unknown tenant \(tenant): it has never written under \(storage)") }
        guard isDirectory(directory, followingLinks: false) else { throw CommandFailure("\(directory) is a symbolic link: a tenant's directory must be in the storage itself") }
        guard TenantRegistry.isTenantDirectory(directory) else {
            throw CommandFailure("\(directory) holds no wal/ and no block: not a tenant's directory")
        }
        return directory
    }

    static func isDirectory(_ path: String, followingLinks: Bool = true) -> Bool {
        var st = stat()
        return (followingLinks ? stat(path, &st) : lstat(path, &st)) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
