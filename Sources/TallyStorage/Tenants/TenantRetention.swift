import Dispatch

/// Time-based retention (Prometheus' `DB.reloadBlocks` with `beyondTimeRetention`).
extension TenantDatabase {
    /// Drops the blocks `RetentionPolicy` finds expired, serialised with cuts and compactions.
    public func applyRetention(keep: Int64) throws -> [BlockMeta] {
        guard wal != nil else { throw StorageError.readOnly }
        return try cutQueue.sync { () throws -> [BlockMeta] in
            let expired = RetentionPolicy.expired(blockMetas, keep: keep)
            let gone = Set(expired.map(\.ulid))
            let removed = lock.withLock { _ in
                let removed = blocks.filter { gone.contains($0.ulid) }
                blocks = blocks.filter { !gone.contains($0.ulid) }
                return removed
            }
            try remove(removed) { Failpoint.hit("retention-block-renamed") }
            return expired
        }
    }
}
