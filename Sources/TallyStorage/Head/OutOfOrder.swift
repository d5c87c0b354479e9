/// Late samples: older than their series' newest sample but inside the tenant's out-of-order
/// window. Each series keeps up to 32 of them sorted in a buffer, then as XOR chunks that may
/// overlap anything; they leave the head as blocks of their own at the next cut.
extension MemSeries {
    static let outOfOrderBufferCapacity = 32

    /// Inserts a sample whose timestamp is not stored yet; returns the bytes of memory it added.
    mutating func insertOutOfOrder(_ sample: Sample) -> Int {
        let at = outOfOrderBuffer.firstIndex { $0.timestamp > sample.timestamp } ?? outOfOrderBuffer.count
        outOfOrderBuffer.insert(sample, at: at)
        guard outOfOrderBuffer.count >= Self.outOfOrderBufferCapacity else { return MemoryLayout<Sample>.stride }
        let before = outOfOrderBuffer.count * MemoryLayout<Sample>.stride
        sealOutOfOrder()
        return outOfOrderChunks.last!.bytes.count - before + MemoryLayout<Sample>.stride
    }

    mutating func sealOutOfOrder() {
        guard !outOfOrderBuffer.isEmpty else { return }
        var chunk = XORChunk()
        for s in outOfOrderBuffer { chunk.append(timestamp: s.timestamp, valueBits: s.valueBits) }
        outOfOrderChunks.append(ClosedChunk(minTime: outOfOrderBuffer.first!.timestamp, maxTime: outOfOrderBuffer.last!.timestamp, bytes: chunk.bytes))
        outOfOrderBuffer.removeAll()
    }

    var hasOutOfOrder: Bool { !outOfOrderChunks.isEmpty || !outOfOrderBuffer.isEmpty }

    var outOfOrderBytes: Int {
        outOfOrderChunks.reduce(0) { $0 + $1.bytes.count } + outOfOrderBuffer.count * MemoryLayout<Sample>.stride
    }
}

extension Head {
    /// The late samples of a series not yet sealed into a chunk, sorted.
    func outOfOrderBuffer(_ index: Int32) -> [Sample] { series[Int(index)].outOfOrderBuffer }

    func hasOutOfOrder(_ index: Int32) -> Bool { series[Int(index)].hasOutOfOrder }

    /// The oldest late sample held, if any.
    var outOfOrderMinTime: Int64? {
        guard outOfOrderBytes > 0 else { return nil }
        var oldest = Int64.max
        for s in series where s.hasOutOfOrder {
            oldest = min(oldest, s.outOfOrderBuffer.first?.timestamp ?? .max, s.outOfOrderChunks.lazy.map(\.minTime).min() ?? .max)
        }
        return oldest
    }

    func appendOutOfOrder(_ index: Int32, timestamp t: Int64, valueBits v: UInt64) {
        outOfOrderBytes += series[Int(index)].insertOutOfOrder(Sample(timestamp: t, valueBits: v))
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
        for i in series.indices where series[i].hasOutOfOrder {
            series[i].sealOutOfOrder()
            let chunks = series[i].outOfOrderChunks
            out.drops[series[i].ref] = chunks.count
            out.bytes += chunks.reduce(0) { $0 + $1.bytes.count }
            var samples: [Sample] = []
            for c in chunks {
                c.bytes.withUnsafeBufferPointer { bytes in
                    var it = XORIterator(bytes)
                    while let (t, v) = it.next() { samples.append(Sample(timestamp: t, valueBits: v)) }
                }
            }
            samples = SeriesMerger.sortedUnique(samples)
            let labels = labelPairs(Int32(i))
            var start = 0
            while start < samples.count {
                let range = Self.rangeStart(samples[start].timestamp, blockRange)
                var end = start
                while end < samples.count && Self.rangeStart(samples[end].timestamp, blockRange) == range { end += 1 }
                out.ranges[range, default: []].append(BlockSeries(labels: labels, chunks: EncodedChunk.encode(samples[start..<end])))
                start = end
            }
        }
        return out
    }

    func dropOutOfOrder(_ drops: [UInt64: Int], bytes: Int) {
        for (ref, count) in drops {
            guard let index = index(ofRef: ref) else { continue }
            series[Int(index)].outOfOrderChunks.removeFirst(min(count, series[Int(index)].outOfOrderChunks.count))
        }
        outOfOrderBytes = series.reduce(0) { $0 + $1.outOfOrderBytes }
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
