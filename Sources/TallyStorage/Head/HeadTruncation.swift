/// Moving the head's old data into blocks: collect, then drop exactly what was collected.
extension Head {
    /// Chunks of a block cut: per series ref, how many leading closed chunks (float, histogram)
    /// went into the block.
    struct Collected {
        var series: [BlockSeries] = []
        var drops: [UInt64: Int] = [:]
        var histogramDrops: [UInt64: Int] = [:]
        var minTime: Int64 = .max
        var maxTime: Int64 = .min
    }

    /// Seals each series' open chunks (float and histogram) if they lie wholly before `boundary`,
    /// then collects every closed chunk before it, in time order. Chunks never cross a range
    /// boundary, so none needs splitting. Samples appended later start new chunks, which `drop`
    /// leaves alone.
    func collect(before boundary: Int64) -> Collected {
        var out = Collected()
        for i in series.indices {
            if series[i].open.count > 0 && series[i].lastTimestamp < boundary {
                series[i].seal()
                writeClosedChunk(Int32(i))
            }
            let floats = series[i].closed.prefix { $0.maxTime < boundary }
            var chunks = floats.map { EncodedChunk(minTime: $0.minTime, maxTime: $0.maxTime, bytes: $0.bytes) }
            if !histograms.isEmpty, histograms[Int32(i)] != nil {
                if histograms[Int32(i)]!.lastTimestamp < boundary { histograms[Int32(i)]!.seal() }
                let taken = histograms[Int32(i)]!.closed.prefix { $0.maxTime < boundary }
                if !taken.isEmpty {
                    out.histogramDrops[series[i].ref] = taken.count
                    chunks += taken.map { EncodedChunk(minTime: $0.minTime, maxTime: $0.maxTime, bytes: $0.bytes, encoding: $0.encoding) }
                    chunks.sort { $0.minTime < $1.minTime }
                }
            }
            guard !chunks.isEmpty else { continue }
            if !floats.isEmpty { out.drops[series[i].ref] = floats.count }
            out.series.append(BlockSeries(labels: labelPairs(Int32(i)), chunks: chunks))
            out.minTime = min(out.minTime, chunks.first!.minTime)
            out.maxTime = max(out.maxTime, chunks.lazy.map(\.maxTime).max()!)
        }
        return out
    }

    /// Drops the chunks a block now holds, then rebuilds the index without series left empty.
    func drop(_ collected: Collected) {
        for (ref, count) in collected.drops {
            guard let index = index(ofRef: ref) else { continue }
            series[Int(index)].closed.removeFirst(min(count, series[Int(index)].closed.count))
        }
        for (ref, count) in collected.histogramDrops {
            guard let index = index(ofRef: ref), let held = histograms[index]?.closed.count else { continue }
            histograms[index]!.closed.removeFirst(min(count, held))
        }
        rebuild(keeping: { !series[$0].closed.isEmpty || series[$0].open.count > 0 || hasOutOfOrder(Int32($0)) || hasHistograms(Int32($0)) })
        minTime = oldestSampleTime
    }

    /// A series as a WAL checkpoint holds it: its float chunks, in-order first, so that replaying
    /// the checkpoint routes the out-of-order chunks that follow to the out-of-order buffer again,
    /// then its histogram chunks.
    struct CheckpointSeries {
        let ref: UInt64
        let labels: [(String, String)]
        let chunks: [[UInt8]]
        let histogramChunks: [(encoding: UInt8, bytes: [UInt8])]
    }

    /// Series and their chunks, for a WAL checkpoint (arrays are shared, not copied).
    func checkpointSnapshot() -> [CheckpointSeries] {
        series.indices.map { i in
            let s = series[i]
            var late = lateSamples(Int32(i))
            late.seal()
            var chunks = s.closed.map(\.bytes)
            if s.open.count > 0 { chunks.append(s.open.stream.bytes) }
            chunks += late.chunks.map(\.bytes)
            var histogramChunks: [(encoding: UInt8, bytes: [UInt8])] = []
            forEachHistogramChunk(Int32(i)) { _, _, encoding, bytes in histogramChunks.append((encoding, Array(bytes))) }
            return CheckpointSeries(ref: s.ref, labels: labelPairs(Int32(i)), chunks: chunks, histogramChunks: histogramChunks)
        }
    }

    /// The oldest sample time still in the head, histograms included (`.max` when empty).
    var oldestSampleTime: Int64 {
        min(oldestHistogramTime, series.reduce(Int64.max) { m, s in min(m, s.closed.first?.minTime ?? (s.open.count > 0 ? s.openMinTime : .max)) })
    }
}

extension Head {
    /// Samples of series `index` inside `interval`, in order, late and histograms (what a deletion would remove).
    func samples(_ index: Int32, in interval: DeletedInterval) -> Int {
        var n = 0
        forEachChunk(index, includingOutOfOrder: true) { minTime, maxTime, bytes in
            guard maxTime >= interval.minTime, minTime <= interval.maxTime else { return }
            var it = XORIterator(bytes)
            while let (t, _) = it.next() { if interval.covers(t) { n += 1 } }
        }
        return n + outOfOrderBuffer(index).count { interval.covers($0.timestamp) } + histogramCount(index, in: interval)
    }

    /// Removes the samples of series `index` inside `interval` from memory by re-encoding its
    /// chunks without them; returns how many went. The series keeps its newest timestamp, so a
    /// resent sample in the deleted range is taken as late, as Prometheus' head would.
    @discardableResult
    func deleteSamples(_ index: Int32, in interval: DeletedInterval) -> Int {
        let removed = samples(index, in: interval)
        guard removed > 0 else { return 0 }
        deleteHistograms(index, in: interval)
        var inOrder: [Sample] = []
        forEachChunk(index) { _, _, bytes in
            var it = XORIterator(bytes)
            while let (t, v) = it.next() { if !interval.covers(t) { inOrder.append(Sample(timestamp: t, valueBits: v)) } }
        }
        var s = series[Int(index)]
        var sealed = lateSamples(index)
        sealed.seal()
        var late: [Sample] = []
        for chunk in sealed.chunks {
            chunk.bytes.withUnsafeBufferPointer { bytes in
                var it = XORIterator(bytes)
                while let (t, v) = it.next() { if !interval.covers(t) { late.append(Sample(timestamp: t, valueBits: v)) } }
            }
        }
        s.closed = closedChunks(inOrder)
        s.open = XOREncoder()
        s.nextCutAt = .min
        series[Int(index)] = s
        if self.late[index] != nil {
            self.late[index] = LateSamples(chunks: late.isEmpty ? [] : EncodedChunk.encode(SeriesMerger.sortedUnique(late)[...])
                .map { ClosedChunk(minTime: $0.minTime, maxTime: $0.maxTime, bytes: MemSeries.trimmed($0.bytes)) })
        }
        outOfOrderBytes = self.late.values.reduce(0) { $0 + $1.bytes }
        minTime = oldestSampleTime
        return removed
    }

    /// In-order samples as closed chunks. Chunks never cross a range boundary: `collect` relies on it.
    func closedChunks(_ inOrder: [Sample]) -> [ClosedChunk] {
        var chunks: [ClosedChunk] = []
        var start = 0
        while start < inOrder.count {
            let range = Self.rangeStart(inOrder[start].timestamp, chunkRange)
            var end = start
            while end < inOrder.count && Self.rangeStart(inOrder[end].timestamp, chunkRange) == range { end += 1 }
            chunks += EncodedChunk.encode(inOrder[start..<end]).map { ClosedChunk(minTime: $0.minTime, maxTime: $0.maxTime, bytes: MemSeries.trimmed($0.bytes)) }
            start = end
        }
        return chunks
    }
}
