import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// When an acknowledged write counts as durable.
public enum WALSyncPolicy: Sendable, Equatable {
    /// fdatasync before answering; concurrent requests share one sync (group commit).
    case always
    /// Answer after write(2); a background sync runs at this interval. A machine crash (not a
    /// process crash) can lose up to one interval of acknowledged samples.
    case interval(Duration)
}

/// Group commit: callers wait for a WAL position; one sync at a time covers every position written
/// before it started, so N concurrent requests cost about one fdatasync, not N.
final class WALDurability: Sendable {
    private struct State {
        var written: UInt64 = 0
        var synced: UInt64 = 0
        var file: OpenFile?
        var syncing = false
        var failure: StorageIOError?
        var waiters: [(position: UInt64, done: @Sendable (StorageIOError?) -> Void)] = []
        var closed = false

        /// Removes and returns the waiters that can be answered: all after a failure, else those at
        /// or below `synced`.
        mutating func takeWaiters() -> [@Sendable (StorageIOError?) -> Void] {
            var ready: [@Sendable (StorageIOError?) -> Void] = []
            waiters.removeAll { waiter in
                guard failure != nil || waiter.position <= synced else { return false }
                ready.append(waiter.done)
                return true
            }
            return ready
        }
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "tally.wal.sync")
    private let policy: WALSyncPolicy
    private let observeSync: @Sendable (Duration) -> Void

    init(policy: WALSyncPolicy, observeSync: @escaping @Sendable (Duration) -> Void) {
        self.policy = policy
        self.observeSync = observeSync
        if case let .interval(every) = policy { scheduleIntervalSync(every) }
    }

    /// Records that bytes up to `position` were written to `file`.
    func written(_ position: UInt64, in file: OpenFile) {
        state.withLock {
            $0.written = position
            $0.file = file
        }
    }

    /// Records that everything written so far is synced (the writer synced it itself, at a segment cut).
    func syncedAll(through position: UInt64) {
        state.withLock { $0.synced = max($0.synced, position) }
    }

    /// Records that the writer padded, synced and closed its segment at `position`: every waiter is
    /// answered now, and no sync touches that file again (a sync already running keeps its own
    /// reference, so the descriptor closes when it is done).
    func segmentFinished(through position: UInt64) {
        let ready = state.withLock { s in
            s.synced = max(s.synced, position)
            s.file = nil
            return s.takeWaiters()
        }
        for done in ready { done(nil) }
    }

    /// Poisons the WAL with a failure the writer met finishing its segment: waiters and later
    /// appends get it, as after a failed group-commit sync, and nothing syncs that file again.
    func poison(_ error: StorageIOError) {
        let ready = state.withLock { s in
            if s.failure == nil { s.failure = error }
            s.file = nil
            return s.takeWaiters()
        }
        for done in ready { done(error) }
    }

    /// Calls `done` once `position` is durable under the policy, or with the error that prevents it.
    func whenDurable(_ position: UInt64, _ done: @escaping @Sendable (StorageIOError?) -> Void) {
        if case .interval = policy {
            done(state.withLock { $0.failure })
            return
        }
        enum Next { case finished(StorageIOError?), wait, startSyncing }
        let next: Next = state.withLock {
            if let failure = $0.failure { return .finished(failure) }
            if $0.synced >= position { return .finished(nil) }
            $0.waiters.append((position, done))
            if $0.syncing { return .wait }
            $0.syncing = true
            return .startSyncing
        }
        switch next {
        case let .finished(error): done(error)
        case .wait: break
        case .startSyncing: queue.async { self.syncLoop() }
        }
    }

    /// The failure that poisoned this WAL, if any: after a failed fsync the page cache can no longer
    /// be trusted, so every later write is refused until restart.
    var failure: StorageIOError? { state.withLock { $0.failure } }

    private func syncLoop() {
        while true {
            guard let (file, target) = state.withLock({ s -> (OpenFile, UInt64)? in
                if let file = s.file { return (file, s.written) }
                // The writer finished its segment, answering every waiter (`segmentFinished`).
                s.syncing = false
                return nil
            }) else { return }
            let clock = ContinuousClock()
            let started = clock.now
            var error: StorageIOError?
            do throws(StorageIOError) {
                if Failpoint.fails("wal-group-sync-fails") { throw StorageIOError("fdatasync", file.path, errno: EIO) }
                try file.sync()
            } catch let e { error = e }
            observeSync(clock.now - started)
            let (ready, again): ([@Sendable (StorageIOError?) -> Void], Bool) = state.withLock { s in
                if let error { s.failure = error }
                if s.failure == nil { s.synced = max(s.synced, target) }
                let ready = s.takeWaiters()
                let again = !s.waiters.isEmpty && s.failure == nil
                if !again { s.syncing = false }
                return (ready, again)
            }
            let failure = self.failure
            for done in ready { done(failure) }
            if !again { return }
        }
    }

    private func scheduleIntervalSync(_ every: Duration) {
        let nanos = Int(every.components.seconds) * 1_000_000_000 + Int(every.components.attoseconds / 1_000_000_000)
        queue.asyncAfter(deadline: .now() + .nanoseconds(max(nanos, 1_000_000))) { [weak self] in
            guard let self else { return }
            let (file, target, closed) = self.state.withLock { ($0.file, $0.written, $0.closed) }
            if closed { return }
            if let file, target > self.state.withLock({ $0.synced }) {
                let clock = ContinuousClock()
                let started = clock.now
                do throws(StorageIOError) {
                    try file.sync()
                    self.state.withLock { $0.synced = max($0.synced, target) }
                } catch {
                    self.state.withLock { $0.failure = error }
                }
                self.observeSync(clock.now - started)
            }
            self.scheduleIntervalSync(every)
        }
    }

    /// Stops the interval timer; callers sync the final state themselves.
    func close() {
        state.withLock { $0.closed = true }
    }
}
