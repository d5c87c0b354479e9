/// Reads of the head for queriers: chunk copies of one series and the label index. Called under
/// the tenant lock; what they return owns its bytes, so it stays valid after the lock is released
/// while appends, cuts and truncation go on.
extension Head {
    /// Copies of the float chunks of series `index` that overlap [minTime, maxTime]: closed and open
    /// in-order chunks, then late chunks, then the unsealed late buffer encoded as one more chunk.
    /// Queriers read floats only; histograms are read by `TenantDatabase.selectHistograms`.
    func chunkCopies(_ index: Int32, minTime: Int64, maxTime: Int64, sourceRank: Int) -> [QueriedChunk] {
        var out: [QueriedChunk] = []
        forEachChunk(index, includingOutOfOrder: true) { chunkMin, chunkMax, bytes in
            guard chunkMax >= minTime, chunkMin <= maxTime else { return }
            out.append(QueriedChunk(minTime: chunkMin, maxTime: chunkMax, bytes: OwnedChunkBytes(copying: bytes), sourceRank: sourceRank))
        }
        let buffer = outOfOrderBuffer(index)
        if let first = buffer.first, let last = buffer.last, last.timestamp >= minTime, first.timestamp <= maxTime {
            var chunk = XORChunk()
            for sample in buffer { chunk.append(timestamp: sample.timestamp, valueBits: sample.valueBits) }
            chunk.bytes.withUnsafeBufferPointer {
                out.append(QueriedChunk(minTime: first.timestamp, maxTime: last.timestamp, bytes: OwnedChunkBytes(copying: $0), sourceRank: sourceRank))
            }
        }
        return out
    }

    /// Whether the series holds any sample in [minTime, maxTime], histograms included (as a block's
    /// chunk metas say for the series API), without copying a chunk.
    func hasChunk(_ index: Int32, minTime: Int64, maxTime: Int64) -> Bool {
        var found = false
        forEachChunk(index, includingOutOfOrder: true) { chunkMin, chunkMax, _ in
            if chunkMax >= minTime && chunkMin <= maxTime { found = true }
        }
        forEachHistogramChunk(index) { chunkMin, chunkMax, _, _ in
            if chunkMax >= minTime && chunkMin <= maxTime { found = true }
        }
        let buffer = outOfOrderBuffer(index)
        if let first = buffer.first, let last = buffer.last, last.timestamp >= minTime, first.timestamp <= maxTime { found = true }
        return found
    }

    /// Every label name in the head, from its postings keys.
    func labelNames() -> Set<ByteString> {
        Set(postings.keys.map { ByteString(symbols[UInt32($0 >> 32)]) })
    }

    /// Every value of label `name` in the head, from its postings keys.
    func labelValues(_ name: String) -> Set<ByteString> {
        guard let n = symbols.id(of: name) else { return [] }
        return Set(postings.keys.lazy.filter { UInt32($0 >> 32) == n }.map { ByteString(self.symbols[UInt32($0 & 0xffff_ffff)]) })
    }

    /// Whether the head holds any in-order or late sample in [minTime, maxTime].
    func overlaps(minTime: Int64, maxTime: Int64) -> Bool {
        if maxTime >= self.minTime && minTime <= self.maxTime { return true }
        if let late = outOfOrderMinTime, late <= maxTime { return true }
        return false
    }
}
