/// Late samples: older than their series' newest sample but inside the tenant's out-of-order
/// window. Each series keeps up to 32 of them sorted in a buffer, then as XOR chunks that may
/// overlap anything; they leave the head as blocks of their own at the next cut. Most series never
/// have any, so they live beside the series (`Head.late`), not in `MemSeries`.
struct LateSamples {
    static let bufferCapacity = 32

    /// Sorted, not yet sealed into `chunks`.
    var buffer: [Sample] = []
    var chunks: [ClosedChunk] = []

    var isEmpty: Bool { chunks.isEmpty && buffer.isEmpty }

    var bytes: Int { chunks.reduce(0) { $0 + $1.bytes.count } + buffer.count * MemoryLayout<Sample>.stride }

    /// Inserts a sample whose timestamp is not stored yet; returns the bytes of memory it added.
    mutating func insert(_ sample: Sample) -> Int {
        let at = buffer.firstIndex { $0.timestamp > sample.timestamp } ?? buffer.count
        buffer.insert(sample, at: at)
        guard buffer.count >= Self.bufferCapacity else { return MemoryLayout<Sample>.stride }
        let before = buffer.count * MemoryLayout<Sample>.stride
        seal()
        return chunks.last!.bytes.count - before + MemoryLayout<Sample>.stride
    }

    mutating func seal() {
        guard !buffer.isEmpty else { return }
        var chunk = XORChunk()
        for s in buffer { chunk.append(timestamp: s.timestamp, valueBits: s.valueBits) }
        chunks.append(ClosedChunk(minTime: buffer.first!.timestamp, maxTime: buffer.last!.timestamp, bytes: MemSeries.trimmed(chunk.bytes)))
        buffer.removeAll()
    }
}

extension Head {
    /// The late samples of a series (none for most).
    func lateSamples(_ index: Int32) -> LateSamples { late.isEmpty ? LateSamples() : late[index] ?? LateSamples() }

    /// The late samples of a series not yet sealed into a chunk, sorted.
    func outOfOrderBuffer(_ index: Int32) -> [Sample] { lateSamples(index).buffer }

    func hasOutOfOrder(_ index: Int32) -> Bool { !lateSamples(index).isEmpty }

    /// The oldest late sample held, if any.
    var outOfOrderMinTime: Int64? {
        guard outOfOrderBytes > 0 else { return nil }
        var oldest = Int64.max
        for l in late.values {
            oldest = min(oldest, l.buffer.first?.timestamp ?? .max, l.chunks.lazy.map(\.minTime).min() ?? .max)
        }
        return oldest
    }

    func appendOutOfOrder(_ index: Int32, timestamp t: Int64, valueBits v: UInt64) {
        outOfOrderBytes += late[index, default: LateSamples()].insert(Sample(timestamp: t, valueBits: v))
    }

    /// Out-of-order data taken for blocks: per 2h range a set of series; per ref the number of
    /// out-of-order chunks taken (the buffer is sealed first, so all of it is in chunks).
    struct CollectedOutOfOrder {
        var ranges: [Int64: [BlockSeries]] = [:]
        var drops: [UInt64: Int] = [:]
        var bytes = 0
    }

    func collectOutOfOrder(blockRange: Int64) -> CollectedOutOfOrder {
        var out = CollectedOutOfOrder()
        for k in late.keys where !late[k]!.isEmpty {
            late[k]!.seal()
            let chunks = late[k]!.chunks
            out.drops[series[Int(k)].ref] = chunks.count
            out.bytes += chunks.reduce(0) { $0 + $1.bytes.count }
        }
        out.ranges = outOfOrderRanges(blockRange: blockRange)
        return out
    }

    /// Every series' late samples (chunks and buffer) as block series, per aligned range of
    /// `blockRange`, in series order as the blocks list them; the head is left as it is.
    func outOfOrderRanges(blockRange: Int64) -> [Int64: [BlockSeries]] {
        var ranges: [Int64: [BlockSeries]] = [:]
        for k in late.keys.sorted() where !late[k]!.isEmpty {
            // Chunks, then the buffer: the order in which sealing would have put them.
            var samples: [Sample] = []
            for c in late[k]!.chunks {
                c.bytes.withUnsafeBufferPointer { bytes in
                    var it = XORIterator(bytes)
                    while let (t, v) = it.next() { samples.append(Sample(timestamp: t, valueBits: v)) }
                }
            }
            samples = SeriesMerger.sortedUnique(samples + late[k]!.buffer)
            let labels = labelPairs(k)
            var start = 0
            while start < samples.count {
                let range = Self.rangeStart(samples[start].timestamp, blockRange)
                var end = start
                while end < samples.count && Self.rangeStart(samples[end].timestamp, blockRange) == range { end += 1 }
                ranges[range, default: []].append(BlockSeries(labels: labels, chunks: EncodedChunk.encode(samples[start..<end])))
                start = end
            }
        }
        return ranges
    }

    func dropOutOfOrder(_ drops: [UInt64: Int], bytes: Int) {
        for (ref, count) in drops {
            guard let index = index(ofRef: ref), let chunks = late[index]?.chunks.count else { continue }
            late[index]!.chunks.removeFirst(min(count, chunks))
        }
        outOfOrderBytes = late.values.reduce(0) { $0 + $1.bytes }
    }

    /// The start of the aligned range holding `t` (floor division, also for negative times).
    static func rangeStart(_ t: Int64, _ width: Int64) -> Int64 {
        let q = t / width
        return (t % width < 0 ? q - 1 : q) * width
    }
}

extension EncodedChunk {
    /// Encodes sorted samples into XOR chunks of at most 120 samples.
    public static func encode(_ samples: ArraySlice<Sample>) -> [EncodedChunk] {
        stride(from: samples.startIndex, to: samples.endIndex, by: Head.samplesPerChunk).map { start in
            let part = samples[start..<min(start + Head.samplesPerChunk, samples.endIndex)]
            var chunk = XORChunk()
            for s in part { chunk.append(timestamp: s.timestamp, valueBits: s.valueBits) }
            return EncodedChunk(minTime: part.first!.timestamp, maxTime: part.last!.timestamp, bytes: chunk.bytes)
        }
    }
}
