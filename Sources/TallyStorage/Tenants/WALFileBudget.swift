#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Bounds how many tenants keep a WAL segment file open, so the server's descriptors stay bounded
/// whatever the tenant count. Each tenant holds one descriptor between appends (its active segment;
/// block files are mapped and their descriptors closed). When an append leaves more tenants open
/// than `limit`, the least recently written ones finish their segment (padded, synced, closed, as a
/// segment cut does) and start a new one at their next append; their heads stay in memory.
///
/// The appending tenant closes the others after releasing its own lock, and the budget's mutex is
/// never held while a tenant lock is taken, so no two tenant locks are ever held at once. Appends in
/// flight may pass the limit until they return: by at most the number of appending threads.
public final class WALFileBudget: Sendable {
    public let limit: Int
    private let openFilesChanged: @Sendable (Int) -> Void
    private let closedForBudget: @Sendable () -> Void

    private struct Entry {
        let database: TenantDatabase
        var lastUse: UInt64
    }

    private struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        /// Tenants picked to close whose segment is not closed yet.
        var closing: Set<ObjectIdentifier> = []
        var clock: UInt64 = 0

        mutating func tick() -> UInt64 {
            clock += 1
            return clock
        }
    }

    private let state = Mutex(State())

    /// `openFilesChanged` gets the number of open segment files after each change;
    /// `closedForBudget` is called for each segment closed to stay within the limit.
    public init(limit: Int, openFilesChanged: @escaping @Sendable (Int) -> Void = { _ in },
                closedForBudget: @escaping @Sendable () -> Void = {}) {
        self.limit = max(limit, 1)
        self.openFilesChanged = openFilesChanged
        self.closedForBudget = closedForBudget
    }

    /// The limit for a process allowed `softLimit` descriptors: a fixed `reserve` for what every
    /// server holds (event loops, the listener, the storage lock, standard streams), then half of the
    /// rest, leaving the other half to connections and the files block cuts, compactions and replays
    /// open for a moment. At least `minimum`, so a tiny limit still lets a few tenants write without
    /// reopening their segment at each request.
    public static func limit(forDescriptorLimit softLimit: Int, reserve: Int = 32, minimum: Int = 4) -> Int {
        max(minimum, (softLimit - reserve) / 2)
    }

    /// The soft RLIMIT_NOFILE of this process (RLIM_INFINITY clamps to `Int.max`).
    public static var processDescriptorLimit: Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        return Int(clamping: limit.rlim_cur)
    }

    /// Tenants whose segment file is open now.
    public var openFiles: Int { state.withLock { $0.open.count } }

    /// Called by `database` under its lock when it opened a segment file.
    func opened(_ database: TenantDatabase) {
        state.withLock { s in
            s.open[ObjectIdentifier(database)] = Entry(database: database, lastUse: s.tick())
            openFilesChanged(s.open.count)
        }
    }

    /// Called by `database` under its lock when it closed its segment file (or found none open).
    func closed(_ database: TenantDatabase) {
        state.withLock { s in
            let id = ObjectIdentifier(database)
            s.closing.remove(id)
            if s.open.removeValue(forKey: id) != nil { openFilesChanged(s.open.count) }
        }
    }

    /// Called by `database` after an append, holding no lock: marks it the most recently written and
    /// closes the least recently written others while more than `limit` are open.
    func used(_ database: TenantDatabase) {
        let victims = state.withLock { s -> [TenantDatabase] in
            let id = ObjectIdentifier(database)
            if s.open[id] != nil { s.open[id]!.lastUse = s.tick() }
            let excess = s.open.count - s.closing.count - limit
            guard excess > 0 else { return [] }
            // Sorted only when over the limit, which is passed by one tenant per append that opens a segment.
            let picked = s.open.filter { $0.key != id && !s.closing.contains($0.key) }
                .sorted { $0.value.lastUse < $1.value.lastUse }.prefix(excess)
            for (key, _) in picked { s.closing.insert(key) }
            return picked.map(\.value.database)
        }
        for victim in victims where victim.closeWALSegmentForBudget() { closedForBudget() }
    }
}
