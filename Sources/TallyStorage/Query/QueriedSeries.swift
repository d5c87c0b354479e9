#if canImport(Glibc)
import Glibc
#endif

/// Chunk bytes a querier owns: a copy of a head chunk, which the head may change or drop once
/// the tenant lock is released.
final class OwnedChunkBytes: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<UInt8>

    init(copying bytes: UnsafeBufferPointer<UInt8>) {
        buffer = .allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
    }

    deinit { buffer.deallocate() }
}

/// One XOR chunk of a series as a querier holds it: mapped from a block (kept alive by the block
/// reader) or copied from the head, with the intervals its block's tombstones delete.
struct QueriedChunk: @unchecked Sendable {
    let minTime: Int64
    let maxTime: Int64
    let bytes: UnsafeBufferPointer<UInt8>
    /// What keeps `bytes` valid: the block reader or the owned copy.
    let owner: AnyObject
    let deleted: [DeletedInterval]
    /// Sources in time order (blocks by minTime, then the head): where two chunks hold the same
    /// timestamp, the lower rank's sample is the one read.
    let sourceRank: Int

    init(minTime: Int64, maxTime: Int64, bytes: OwnedChunkBytes, sourceRank: Int) {
        self.minTime = minTime
        self.maxTime = maxTime
        self.bytes = UnsafeBufferPointer(bytes.buffer)
        owner = bytes
        deleted = []
        self.sourceRank = sourceRank
    }

    init(minTime: Int64, maxTime: Int64, mapped: UnsafeBufferPointer<UInt8>, block: BlockReader, deleted: [DeletedInterval], sourceRank: Int) {
        self.minTime = minTime
        self.maxTime = maxTime
        bytes = mapped
        owner = block
        self.deleted = deleted
        self.sourceRank = sourceRank
    }
}

/// A series a querier selected: its labels and its chunks in the selected range, decoded only as
/// an iterator walks them.
public struct QueriedSeries: Sendable {
    public let labels: Labels
    let chunks: [QueriedChunk]

    init(labels: Labels, chunks: [QueriedChunk]) {
        self.labels = labels
        func before(_ a: QueriedChunk, _ b: QueriedChunk) -> Bool { (a.minTime, a.sourceRank) < (b.minTime, b.sourceRank) }
        // Gathered block by block in time order, they are nearly always in order already; sorting
        // anyway copied (and retained) every chunk, a fifth of a selection's time.
        let inOrder = chunks.indices.dropFirst().allSatisfy { !before(chunks[$0], chunks[$0 - 1]) }
        self.chunks = inOrder ? chunks : chunks.sorted(by: before)
    }

    public func makeIterator() -> SeriesIterator { SeriesIterator(chunks) }

    /// Samples in its chunks, from their headers (a sample in two overlapping chunks counts twice).
    public var sampleCount: Int { chunks.reduce(0) { $0 + XORChunk.sampleCount($1.bytes) } }
}

/// Walks a series' samples in time order, each timestamp once, without deleted samples. Chunks
/// that overlap no other are decoded in place; a run of overlapping chunks (late data, blocks not
/// yet compacted) is merged into one sorted run first, so memory follows the overlap, not the range.
public struct SeriesIterator {
    private let chunks: [QueriedChunk]
    private var next = 0
    /// The chunk being read alone, when `decoding`. Not an optional: advancing one in place through
    /// `!` copied it out and back for every sample.
    private var decoder = XORIterator(UnsafeBufferPointer(start: nil, count: 0))
    private var decoding = false
    private var decoderDeleted: [DeletedInterval] = []
    private var merged: [Sample] = []
    private var mergedPosition = 0
    /// The last time of the chunk or merged run opened last (`.min` before the first).
    private var openMaxTime: Int64 = .min
    public private(set) var timestamp: Int64 = .min
    public private(set) var valueBits: UInt64 = 0
    /// The current sample was read by `appendSamples` but not handed out (it lay past the window):
    /// the next `advance`, `seek` or `appendSamples` starts from it.
    private var holding = false

    init(_ chunks: [QueriedChunk]) { self.chunks = chunks }

    /// An iterator over no samples.
    public init() { chunks = [] }

    public var value: Double { Double(bitPattern: valueBits) }

    /// Moves to the next sample; false at the end.
    public mutating func advance() -> Bool {
        if holding {
            holding = false
            return true
        }
        while true {
            if mergedPosition < merged.count {
                let s = merged[mergedPosition]
                mergedPosition += 1
                timestamp = s.timestamp
                valueBits = s.valueBits
                return true
            }
            if decoding {
                while let (t, v) = decoder.next() {
                    if !decoderDeleted.isEmpty, decoderDeleted.contains(where: { $0.covers(t) }) { continue }
                    timestamp = t
                    valueBits = v
                    return true
                }
                decoding = false
            }
            guard next < chunks.count else { return false }
            openNextRun()
        }
    }

    /// Moves to the first sample at or after `t` (staying put when already there); false when none.
    public mutating func seek(_ t: Int64) -> Bool {
        if holding {
            holding = false
            if timestamp >= t { return true }
        } else if timestamp >= t && timestamp != .min {
            return true
        }
        skipChunks(endingBefore: t)
        while advance() {
            if timestamp >= t { return true }
        }
        return false
    }

    /// Passes over every sample before `t` that whole chunks hold, without decoding them: the rest
    /// of the open chunk or merged run when it ends before `t`, then the chunks to come that end
    /// before `t` and overlap none after them. Samples before `t` may remain (in a chunk that
    /// reaches `t`).
    public mutating func skipChunks(endingBefore t: Int64) {
        // A held sample, the decoder's and the merged run's all lie within the open run.
        guard openMaxTime < t else { return }
        holding = false
        decoding = false
        mergedPosition = merged.count
        while next < chunks.count && chunks[next].maxTime < t && !overlapsFollowing(next) { next += 1 }
    }

    /// Appends every sample still to come up to and including `maxTime` to `samples`, but at most
    /// `limit`, leaving the first later one to come next. A range window takes its samples in one
    /// call, and a step-by-step reader a batch ahead: one call a sample across the module boundary
    /// cost more than decoding it.
    public mutating func appendSamples(through maxTime: Int64, to samples: inout [Sample], limit: Int = .max) {
        var room = limit
        guard room > 0 else { return }
        if holding {
            guard timestamp <= maxTime else { return }
            samples.append(Sample(timestamp: timestamp, valueBits: valueBits))
            holding = false
            room -= 1
        }
        while room > 0 {
            if decoding && decoderDeleted.isEmpty {
                switch appendDecoded(through: maxTime, to: &samples, room: &room) {
                case .stoppedLater, .filled: return
                case .ended: decoding = false
                }
            }
            guard advance() else { return }
            if timestamp > maxTime {
                holding = true
                return
            }
            samples.append(Sample(timestamp: timestamp, valueBits: valueBits))
            room -= 1
        }
    }

    private enum DecodedEnd {
        /// At a sample past the window, now held.
        case stoppedLater
        /// With no room left.
        case filled
        /// At the chunk's end.
        case ended
    }

    /// The chunk being decoded alone, without deletions: its samples up to `maxTime`, at most
    /// `room` of them, appended to `samples` a batch at a time from a buffer on the stack (one
    /// append a sample, with its uniqueness check, cost as much as decoding). The batch is 1 KiB,
    /// the most Swift places on the stack: at 2 KiB every call went to malloc, a tenth of a range
    /// query's time.
    private mutating func appendDecoded(through maxTime: Int64, to samples: inout [Sample], room: inout Int) -> DecodedEnd {
        let batch = 1024 / MemoryLayout<Sample>.stride
        return withUnsafeTemporaryAllocation(of: Sample.self, capacity: batch) { buffer in
            let base = buffer.baseAddress!
            while true {
                let (count, end) = decoder.decode(into: base, capacity: min(batch, room), through: maxTime)
                if count > 0 {
                    samples.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
                    room -= count
                    timestamp = base[count - 1].timestamp
                    valueBits = base[count - 1].valueBits
                }
                switch end {
                case .later(let sample):
                    timestamp = sample.timestamp
                    valueBits = sample.valueBits
                    holding = true
                    return .stoppedLater
                case .ended: return .ended
                case .full: if room == 0 { return .filled }
                }
            }
        }
    }

    private func overlapsFollowing(_ index: Int) -> Bool {
        index + 1 < chunks.count && chunks[index + 1].minTime <= chunks[index].maxTime
    }

    /// Opens the next chunk alone, or merges it with every chunk that overlaps it transitively.
    private mutating func openNextRun() {
        var end = next + 1
        var runMax = chunks[next].maxTime
        while end < chunks.count && chunks[end].minTime <= runMax {
            runMax = max(runMax, chunks[end].maxTime)
            end += 1
        }
        openMaxTime = runMax
        if end == next + 1 {
            decoder = XORIterator(chunks[next].bytes)
            decoding = true
            decoderDeleted = chunks[next].deleted
        } else {
            var samples: [(sample: Sample, rank: Int)] = []
            for chunk in chunks[next..<end] {
                var it = XORIterator(chunk.bytes)
                while let (ts, v) = it.next() {
                    if chunk.deleted.contains(where: { $0.covers(ts) }) { continue }
                    samples.append((Sample(timestamp: ts, valueBits: v), chunk.sourceRank))
                }
            }
            samples.sort { ($0.sample.timestamp, $0.rank) < ($1.sample.timestamp, $1.rank) }
            merged = []
            merged.reserveCapacity(samples.count)
            for s in samples where merged.last?.timestamp != s.sample.timestamp { merged.append(s.sample) }
            mergedPosition = 0
        }
        next = end
    }
}
