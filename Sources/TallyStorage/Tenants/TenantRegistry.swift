#if canImport(Glibc)
import Glibc
#endif
import Synchronization

public enum TenantError: Error, CustomStringConvertible, Sendable {
    case invalidName(String)
    case reservedName(String)
    /// Creating the tenant would pass the registry's `maxTenants`.
    case tooManyTenants(Int)
    case io(StorageIOError)

    public var description: String {
        switch self {
        case let .invalidName(name):
            "invalid tenant \(GoFormat.quote(String(name.prefix(64)))): must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
        case let .reservedName(name): "tenant \(GoFormat.quote(name)) names something in the storage root that is not a tenant"
        case let .tooManyTenants(limit): "max_tenants: this server already holds its limit of \(limit) tenants"
        case let .io(e): e.description
        }
    }
}

/// Tenant ids become directory names, so they are checked before any path is built from them.
public enum TenantID {
    /// `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`: no `/`, no NUL, no leading dot, so never `..` or hidden.
    public static func isValid(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...128).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
        guard alnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { alnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }
}

/// All tenants under one storage root, each in `<root>/<tenant>/`, opened once and shared.
public final class TenantRegistry: Sendable {
    public let root: String
    private let options: StorageOptions
    /// Tenants that may exist; creating one more is refused (existing directories always open).
    private let maxTenants: Int
    private let tenants = Mutex<[String: TenantDatabase]>([:])

    public init(root: String, options: StorageOptions, maxTenants: Int = .max) throws(StorageIOError) {
        self.root = root
        self.options = options
        self.maxTenants = maxTenants
        try FileSystem.makeDirectory(root)
    }

    /// A tenant's directory: a directory itself (not a link) holding a `wal/` (which may be a link
    /// to another disk), as every tenant has from when it is made, or a block (blocks copied in from
    /// a backup or a Prometheus).
    public static func isTenantDirectory(_ path: String) -> Bool {
        guard FileSystem.isRealDirectory(path) else { return false }
        if FileSystem.isDirectory(path + "/wal") { return true }
        return ((try? FileSystem.listDirectory(path)) ?? []).contains { ULID($0) != nil && FileSystem.exists(path + "/" + $0 + "/meta.json") }
    }

    /// Tenant directories already in the root (`isTenantDirectory`, with a valid tenant name).
    /// Anything else there is left alone, so a root given by mistake (`/`, a home directory) has no
    /// tenants to write into.
    public static func existingTenants(root: String) -> [String] {
        ((try? FileSystem.listDirectory(root)) ?? []).filter {
            TenantID.isValid($0) && isTenantDirectory(root + "/" + $0)
        }
    }

    /// Opens every existing tenant (replaying its WAL); called before the server turns ready.
    public func openExisting(_ report: (TenantDatabase) -> Void) throws(TenantError) {
        for name in Self.existingTenants(root: root) { report(try database(for: name)) }
    }

    /// The tenant's database, created on first use.
    public func database(for tenant: String) throws(TenantError) -> TenantDatabase {
        guard TenantID.isValid(tenant) else { throw .invalidName(tenant) }
        if let db = tenants.withLock({ $0[tenant] }) { return db }
        return try tenants.withLock { (map) throws(TenantError) -> TenantDatabase in
            if let db = map[tenant] { return db }
            let path = root + "/" + tenant
            if FileSystem.exists(path) && !FileSystem.isRealDirectory(path) { throw .reservedName(tenant) }
            if !FileSystem.exists(path) && map.count >= maxTenants { throw .tooManyTenants(maxTenants) }
            do throws(StorageIOError) {
                let db = try TenantDatabase.open(directory: path, tenant: tenant, options: options)
                try FileSystem.syncDirectory(root)
                map[tenant] = db
                return db
            } catch {
                throw .io(error)
            }
        }
    }

    /// The tenant's database if the tenant has stored anything; readers never create tenants.
    public func existingDatabase(for tenant: String) throws(TenantError) -> TenantDatabase? {
        guard TenantID.isValid(tenant) else { throw .invalidName(tenant) }
        if let db = tenants.withLock({ $0[tenant] }) { return db }
        guard Self.isTenantDirectory(root + "/" + tenant) else { return nil }
        return try database(for: tenant)
    }

    /// Whether the tenant is open; every tenant on disk is, once `openExisting` has run.
    public func hasTenant(_ tenant: String) -> Bool { tenants.withLock { $0[tenant] != nil } }

    /// Every open tenant, by name.
    public var openDatabases: [TenantDatabase] { tenants.withLock { $0.values.sorted { $0.tenant < $1.tenant } } }

    /// Picks up what other processes added (imported blocks, new tenant directories).
    public func scan(_ report: (StorageEvent) -> Void) {
        for name in Self.existingTenants(root: root) where tenants.withLock({ $0[name] }) == nil {
            if let db = try? database(for: name) { report(StorageEvent("opened tenant found on disk", ["tenant": db.tenant, "blocks": "\(db.blockMetas.count)"])) }
        }
        for db in all {
            for ulid in db.loadNewBlocks() { report(StorageEvent("loaded block", ["tenant": db.tenant, "block": ulid])) }
        }
    }

    public var all: [TenantDatabase] { tenants.withLock { Array($0.values) }.sorted { $0.tenant < $1.tenant } }

    /// Closes every tenant's WAL (padding and syncing it); returns the errors met.
    public func closeAll() -> [String] {
        all.compactMap { db in
            do {
                try db.close()
                return nil
            } catch {
                return "\(db.tenant): \(error)"
            }
        }
    }
}

/// An exclusive lock on a storage root, so two servers never write one store.
public final class StorageRootLock: Sendable {
    private let fd: Int32

    public init(root: String) throws(StorageIOError) {
        let path = root + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw StorageIOError("open", path) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            throw StorageIOError("lock (is another tally serving this storage?)", path, errno: code)
        }
        self.fd = fd
    }

    deinit { close(fd) }
}
