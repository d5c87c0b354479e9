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

    /// Every series' in-order chunks, floats and histograms (open ones copied as they stand), in
    /// time order, with the times they span: the head as it is now, for a snapshot's block. The
    /// head is left as it is (late samples: `outOfOrderRanges`).
    func inOrderBlockSeries() -> (series: [BlockSeries], minTime: Int64, maxTime: Int64) {
        var out: [BlockSeries] = []
        var minTime = Int64.max, maxTime = Int64.min
        for i in series.indices {
            var chunks: [EncodedChunk] = []
            forEachChunk(Int32(i)) { chunkMin, chunkMax, bytes in chunks.append(EncodedChunk(minTime: chunkMin, maxTime: chunkMax, bytes: Array(bytes))) }
            if hasHistograms(Int32(i)) {
                forEachHistogramChunk(Int32(i)) { chunkMin, chunkMax, encoding, bytes in
                    chunks.append(EncodedChunk(minTime: chunkMin, maxTime: chunkMax, bytes: Array(bytes), encoding: encoding))
                }
                chunks.sort { $0.minTime < $1.minTime }
            }
            guard let first = chunks.first else { continue }
            out.append(BlockSeries(labels: labelPairs(Int32(i)), chunks: chunks))
            minTime = min(minTime, first.minTime)
            maxTime = max(maxTime, chunks.lazy.map(\.maxTime).max()!)
        }
        return (out, minTime, maxTime)
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
    /// that has it, whatever the series' samples. One pass over the postings keeps only the
    /// largest, so a head of millions of label pairs makes no string but the `limit` it reports.
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
        /// Ties in byte order of the name, then of the value.
        let byBytes = { [symbols] (a: (name: UInt32, value: UInt32), b: (name: UInt32, value: UInt32)) -> Bool in
            let name = Labels.compareBytes(symbols[a.name], symbols[b.name])
            return name != 0 ? name < 0 : Labels.compareBytes(symbols[a.value], symbols[b.value]) < 0
        }
        var metrics = LargestCounts<(name: UInt32, value: UInt32)>(limit: limit, tie: byBytes)
        var pairs = LargestCounts<(name: UInt32, value: UInt32)>(limit: limit, tie: byBytes)
        var values: [UInt32: (count: Int, bytes: Int)] = [:]
        for (key, list) in postings where !list.isEmpty {
            let pair = (name: UInt32(key >> 32), value: UInt32(key & 0xffff_ffff))
            values[pair.name, default: (0, 0)].count += 1
            values[pair.name, default: (0, 0)].bytes += symbols.withBytes(pair.value) { $0.count }
            found.labelPairs += 1
            pairs.offer(pair, list.count)
            if pair.name == metricName { metrics.offer(pair, list.count) }
        }
        let byName = { [symbols] (a: UInt32, b: UInt32) in Labels.compareBytes(symbols[a], symbols[b]) < 0 }
        var valueCounts = LargestCounts<UInt32>(limit: limit, tie: byName), valueBytes = LargestCounts<UInt32>(limit: limit, tie: byName)
        for (name, counts) in values {
            valueCounts.offer(name, counts.count)
            valueBytes.offer(name, counts.bytes)
        }
        found.seriesByMetricName = metrics.kept.map { .init(name: symbols[$0.key.value], count: $0.count) }
        found.valuesByLabelName = valueCounts.kept.map { .init(name: symbols[$0.key], count: $0.count) }
        found.valueBytesByLabelName = valueBytes.kept.map { .init(name: symbols[$0.key], count: $0.count) }
        found.seriesByLabelPair = pairs.kept.map { .init(name: symbols[$0.key.name] + "=" + symbols[$0.key.value], count: $0.count) }
        return found
    }

    /// Whether the head holds any in-order or late sample in [minTime, maxTime].
    func overlaps(minTime: Int64, maxTime: Int64) -> Bool {
        if maxTime >= self.minTime && minTime <= self.maxTime { return true }
        if let late = outOfOrderMinTime, late <= maxTime { return true }
        return false
    }
}

/// The `limit` largest counts offered, largest first, `tie` ordering equal counts: kept sorted as
/// they come, so memory and work per offer are bounded by `limit` whatever the number offered.
struct LargestCounts<Key> {
    let limit: Int
    let tie: (Key, Key) -> Bool
    private(set) var kept: [(key: Key, count: Int)] = []

    init(limit: Int, tie: @escaping (Key, Key) -> Bool) {
        self.limit = max(0, limit)
        self.tie = tie
    }

    private func precedes(_ a: (key: Key, count: Int), _ b: (key: Key, count: Int)) -> Bool {
        a.count != b.count ? a.count > b.count : tie(a.key, b.key)
    }

    mutating func offer(_ key: Key, _ count: Int) {
        let item = (key: key, count: count)
        if kept.count == limit { guard let last = kept.last, precedes(item, last) else { return } }
        kept.insert(item, at: kept.firstIndex { precedes(item, $0) } ?? kept.count)
        if kept.count > limit { kept.removeLast() }
    }
}
