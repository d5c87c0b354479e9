/// The Prometheus float-histogram chunk, encoding 3, as `tsdb/chunkenc/float_histogram.go` of
/// Prometheus 2.42 writes it:
///
/// - bytes 0-1: the sample count (big-endian); byte 2: the counter-reset header in its top two bits;
/// - the layout, as histogram chunks write it (`HistogramLayout`);
/// - the first histogram: time (varbit int), then the 64 bits of count, zero count and sum, and
///   of each positive then negative bucket;
/// - each later one: the time's double delta (varbit int), then count, zero count, sum and each
///   bucket XORed with its previous value, each with its own leading/trailing window, as XOR
///   chunks write values.
///
/// A staleness marker is written with zero counts and no buckets. As for `HistogramChunk`, every
/// histogram of a chunk has the chunk's layout: where Prometheus' head recodes, a writer cuts.
public struct FloatHistogramChunk: Sendable {
    public static let encoding: UInt8 = 3

    private var stream: BitWriter
    public var bytes: [UInt8] { stream.bytes }
    private var layout = HistogramLayout()
    private var timestamp: Int64 = 0
    private var timestampDelta: Int64 = 0
    /// The previous count, zero count and sum, then positive and negative buckets, as bits, each
    /// with its XOR window.
    private var values: [UInt64] = []
    private var windows: [XORValueWriter] = []

    public init(header: HistogramChunk.CounterResetHeader = .unknown) {
        stream = BitWriter(bytes: [0, 0, header.rawValue])
        stream.bytes.reserveCapacity(128)
    }

    public var count: Int { XORChunk.sampleCount(stream.bytes) }

    /// The counter-reset header the chunk was made with.
    public var header: HistogramChunk.CounterResetHeader {
        HistogramChunk.CounterResetHeader(rawValue: stream.bytes[2] & 0b1100_0000) ?? .unknown
    }

    /// Whether `h` can be appended (as `HistogramChunk.fits`).
    public func fits(_ h: FloatHistogram) -> Bool { HistogramLayout.fits(h, count: count, layout: layout) }

    /// The values a histogram writes, in chunk order: count, zero count, sum, then the buckets.
    static func valueBits(_ h: FloatHistogram) -> [UInt64] {
        [h.count.bitPattern, h.zeroCount.bitPattern, h.sumBits] + h.positiveBuckets.map(\.bitPattern) + h.negativeBuckets.map(\.bitPattern)
    }

    /// Appends `h` at `t`; `fits(h)` must hold.
    public mutating func append(timestamp t: Int64, _ histogram: FloatHistogram) {
        precondition(fits(histogram), "a histogram that does not fit the chunk")
        var h = histogram
        if h.isStale {
            // As Prometheus: the sum only, and an empty layout if it is the chunk's first.
            h = FloatHistogram()
            h.sumBits = HistogramChunk.staleNaNBits
        }
        let n = count
        let bits = Self.valueBits(h)
        var tDelta: Int64 = 0
        if n == 0 {
            layout = HistogramLayout(h)
            stream.writeHistogramLayout(layout)
            stream.writeVarbitInt(t)
            for v in bits { stream.writeBits(v, 64) }
            values = bits
            windows = Array(repeating: XORValueWriter(), count: bits.count)
        } else {
            tDelta = t &- timestamp
            stream.writeVarbitInt(tDelta &- timestampDelta)
            // A staleness marker has no buckets: only count, zero count and sum are written.
            for (i, v) in bits.enumerated() {
                windows[i].write(v, after: values[i], to: &stream)
                values[i] = v
            }
        }
        stream.bytes[0] = UInt8(truncatingIfNeeded: (n + 1) >> 8)
        stream.bytes[1] = UInt8(truncatingIfNeeded: n + 1)
        timestamp = t
        timestampDelta = tDelta
    }
}

/// Iterates the histograms of an encoded float-histogram chunk (encoding 3): each as it was
/// appended (a staleness marker keeps the previous buckets, as Prometheus' iterator does).
/// Bounds-checked: a chunk that ends early or holds an impossible value sets `failed`.
public struct FloatHistogramIterator: IteratorProtocol, ChunkIterator {
    static var encoding: UInt8 { FloatHistogramChunk.encoding }

    private var cursor: HistogramChunkCursor
    public var header: HistogramChunk.CounterResetHeader { cursor.header }
    public var failed: Bool { cursor.failed }
    private var current = FloatHistogram()
    private var timestamp: Int64 = 0
    private var timestampDelta: Int64 = 0
    private var values: [UInt64] = []
    private var windows: [XORValueReader] = []

    /// `bytes` must stay valid while iterating.
    public init(_ bytes: UnsafeBufferPointer<UInt8>) { cursor = HistogramChunkCursor(bytes) }

    public mutating func next() -> (timestamp: Int64, histogram: FloatHistogram)? {
        guard cursor.hasNext, cursor.finish(cursor.read == 0 ? readFirst() : readNext()) else { return nil }
        let p = current.positiveBuckets.count
        current.count = Double(bitPattern: values[0])
        current.zeroCount = Double(bitPattern: values[1])
        current.sumBits = values[2]
        for i in 0..<p { current.positiveBuckets[i] = Double(bitPattern: values[3 + i]) }
        for i in current.negativeBuckets.indices { current.negativeBuckets[i] = Double(bitPattern: values[3 + p + i]) }
        return (timestamp, current)
    }

    private mutating func readFirst() -> Bool {
        guard let layout = cursor.reader.readHistogramLayout() else { return false }
        layout.apply(to: &current)
        let p = HistogramLayout.buckets(layout.positiveSpans), n = HistogramLayout.buckets(layout.negativeSpans)
        // Each value takes 64 bits: a bucket count the chunk cannot hold is refused before allocating.
        guard let t = cursor.reader.readVarbitInt(), p <= cursor.reader.bitsLeft / 64, n <= cursor.reader.bitsLeft / 64 - p else { return false }
        timestamp = t
        values.reserveCapacity(3 + p + n)
        for _ in 0..<3 + p + n {
            guard let v = cursor.reader.readBits(64) else { return false }
            values.append(v)
        }
        current.positiveBuckets = Array(repeating: 0, count: p)
        current.negativeBuckets = Array(repeating: 0, count: n)
        windows = Array(repeating: XORValueReader(), count: values.count)
        return true
    }

    private mutating func readNext() -> Bool {
        guard let tDod = cursor.reader.readVarbitInt() else { return false }
        timestampDelta &+= tDod
        timestamp &+= timestampDelta
        for i in 0..<3 {
            guard windows[i].read(&values[i], from: &cursor.reader) else { return false }
        }
        if values[2] == HistogramChunk.staleNaNBits { return true }
        for i in 3..<values.count {
            guard windows[i].read(&values[i], from: &cursor.reader) else { return false }
        }
        return true
    }
}
