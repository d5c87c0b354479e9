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

    /// The head's size and its largest cardinality counts, `limit` of each, as Prometheus' head
    /// reports them from its postings (`MemPostings.Stats`): a label pair counts once per series
    /// that has it, whatever the series' samples.
    func cardinality(limit: Int) -> HeadCardinality {
        var found = HeadCardinality()
        found.series = series.count
        found.minTime = minTime
        found.maxTime = maxTime
        for index in 0..<series.count {
            let s = series[index]
            found.chunks += s.closed.count + (s.open.count > 0 ? 1 : 0)
        }
        for index in histograms.keys { forEachHistogramChunk(index) { _, _, _, _ in found.chunks += 1 } }
        let metricName = symbols.id(of: "__name__")
        var values: [UInt32: (count: Int, bytes: Int)] = [:]
        var pairs: [(name: UInt32, value: UInt32, series: Int)] = []
        var metrics: [(value: UInt32, series: Int)] = []
        for (key, list) in postings where !list.isEmpty {
            let name = UInt32(key >> 32), value = UInt32(key & 0xffff_ffff)
            values[name, default: (0, 0)].count += 1
            values[name, default: (0, 0)].bytes += symbols.withBytes(value) { $0.count }
            pairs.append((name, value, list.count))
            if name == metricName { metrics.append((value, list.count)) }
        }
        found.labelPairs = pairs.count
        /// The `limit` largest counts, ties in byte order of their names.
        func largest(_ counts: [(name: String, count: Int)]) -> [HeadCardinality.Count] {
            counts.sorted { $0.count != $1.count ? $0.count > $1.count : Labels.compareBytes($0.name, $1.name) < 0 }
                .prefix(limit).map { HeadCardinality.Count(name: $0.name, count: $0.count) }
        }
        found.seriesByMetricName = largest(metrics.map { (symbols[$0.value], $0.series) })
        found.valuesByLabelName = largest(values.map { (symbols[$0.key], $0.value.count) })
        found.valueBytesByLabelName = largest(values.map { (symbols[$0.key], $0.value.bytes) })
        found.seriesByLabelPair = largest(pairs.map { (symbols[$0.name] + "=" + symbols[$0.value], $0.series) })
        return found
    }

    /// Whether the head holds any in-order or late sample in [minTime, maxTime].
    func overlaps(minTime: Int64, maxTime: Int64) -> Bool {
        if maxTime >= self.minTime && minTime <= self.maxTime { return true }
        if let late = outOfOrderMinTime, late <= maxTime { return true }
        return false
    }
}
