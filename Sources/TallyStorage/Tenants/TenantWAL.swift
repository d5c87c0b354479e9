/// The tenant's WAL writer: logging, finishing segments, durability waits, the descriptor budget.
extension TenantDatabase {
    /// `wal.log`, telling the budget when it opened a segment. Called under `lock`.
    func log(_ records: [[UInt8]], to wal: WALWriter) throws(StorageIOError) -> (OpenFile, UInt64) {
        let wasOpen = wal.isOpen
        defer { if !wasOpen && wal.isOpen { options.walFileBudget?.opened(self) } }
        do throws(StorageIOError) {
            return try wal.log(records)
        } catch {
            // A writer that broke (a segment that failed to finish, a failed write it could not undo)
            // promises nothing more, also not to requests waiting on earlier bytes.
            if wal.broken != nil { durability?.poison(error) }
            throw error
        }
    }

    /// Pads, syncs and closes the active WAL segment, so its waiters are answered and its descriptor
    /// goes; a failure poisons the WAL as a failed group-commit sync does. Called under `lock`.
    func finishWALSegment(_ wal: WALWriter) throws(StorageIOError) {
        defer { options.walFileBudget?.closed(self) }
        do throws(StorageIOError) {
            try wal.finishSegment()
        } catch {
            durability?.poison(error)
            throw error
        }
        durability?.segmentFinished(through: wal.position)
    }

    /// Finishes the WAL segment of a tenant the budget picked (the next append starts a new one);
    /// returns whether one was open. Waits for an append holding the lock, never for another tenant.
    func closeWALSegmentForBudget() -> Bool {
        lock.withLock { _ in
            guard let wal, wal.isOpen else {
                options.walFileBudget?.closed(self)
                return false
            }
            do throws(StorageIOError) {
                try finishWALSegment(wal)
                return true
            } catch {
                options.report(StorageEvent("closing a WAL segment for the descriptor budget failed; the tenant's writes are refused until restart",
                                             ["tenant": tenant, "error": "\(error)"], isProblem: true))
                return false
            }
        }
    }

    /// Calls `done` when `position` is durable by the sync policy (or with the error preventing it).
    public func whenDurable(_ position: UInt64, _ done: @escaping @Sendable (StorageIOError?) -> Void) {
        guard let durability else { return done(nil) }
        durability.whenDurable(position, done)
    }
}
