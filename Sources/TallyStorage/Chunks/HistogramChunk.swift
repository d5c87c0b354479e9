/// The Prometheus integer native-histogram chunk, encoding 2, as `tsdb/chunkenc/histogram.go` and
/// `histogram_meta.go` of Prometheus 2.42 write it:
///
/// - bytes 0-1: the sample count (big-endian); byte 2: the counter-reset header in its top two bits;
/// - the layout, set by the first histogram: the zero threshold (a byte: 0 for none, `exp + 243` for
///   a power of two 2^(exp-1) with exp in -242...11, else 255 and the float's 64 bits), the schema
///   (varbit int), the positive then negative spans (varbit count, then length and offset of each);
/// - the first histogram: time (varbit int), count and zero count (varbit uint), the sum's 64 bits,
///   its positive then negative bucket deltas (varbit int each);
/// - each later one: double deltas (varbit int) of time, count and zero count, the sum XORed with
///   the previous one (as XOR chunks write values), a double delta per bucket.
///
/// Every histogram of a chunk has the chunk's layout: where Prometheus' head recodes a chunk to add
/// buckets, a writer of this one cuts a new chunk (`fits`). Arithmetic wraps as Go's does.
public struct HistogramChunk: Sendable {
    public static let encoding: UInt8 = 2

    /// The chunk's counter-reset header (`chunkenc.CounterResetHeader`).
    public enum CounterResetHeader: UInt8, Sendable {
        case unknown = 0
        case counterReset = 0b1000_0000
        case notCounterReset = 0b0100_0000
        case gauge = 0b1100_0000
    }

    /// Prometheus' staleness marker, whose histograms carry no buckets.
    static let staleNaNBits: UInt64 = 0x7ff0_0000_0000_0002

    private var stream: BitWriter
    public var bytes: [UInt8] { stream.bytes }
    private var layout = HistogramLayout()
    private var timestamp: Int64 = 0
    private var timestampDelta: Int64 = 0
    private var observations: UInt64 = 0
    private var observationsDelta: Int64 = 0
    private var zeroCount: UInt64 = 0
    private var zeroCountDelta: Int64 = 0
    private var sumBits: UInt64 = 0
    private var sums = XORValueWriter()
    private var positive = BucketDeltas(count: 0)
    private var negative = BucketDeltas(count: 0)

    public init(header: CounterResetHeader = .unknown) {
        stream = BitWriter(bytes: [0, 0, header.rawValue])
        stream.bytes.reserveCapacity(128)
    }

    public var count: Int { XORChunk.sampleCount(stream.bytes) }

    /// A side's bucket values as the previous histogram had them (its deltas between buckets) and
    /// the change of each since the one before.
    struct BucketDeltas {
        var values: [Int64]
        var changes: [Int64]

        init(count: Int) {
            values = Array(repeating: 0, count: count)
            changes = values
        }
    }

    /// Whether `h` can be appended: a staleness marker always; else a histogram whose buckets
    /// match its spans, in an empty chunk, or with this chunk's layout; and fewer than 65535 held.
    public func fits(_ h: IntegerHistogram) -> Bool {
        HistogramLayout.fits(h, count: count, layout: layout)
    }

    /// Whether `h` is a staleness marker, or has a schema Prometheus knows (-4...8) and bucket
    /// counts that match its spans: what any chunk needs. A histogram read from a WAL is checked
    /// with this before it reaches a chunk.
    public static func isWellFormed<H: NativeHistogram>(_ h: H) -> Bool { h.isWellFormed }

    /// The counter-reset header the chunk was made with.
    public var header: CounterResetHeader { CounterResetHeader(rawValue: stream.bytes[2] & 0b1100_0000) ?? .unknown }

    /// Appends `h` at `t`; `fits(h)` must hold.
    public mutating func append(timestamp t: Int64, _ histogram: IntegerHistogram) {
        precondition(fits(histogram), "a histogram that does not fit the chunk")
        var h = histogram
        let stale = h.sumBits == Self.staleNaNBits
        if stale {
            // As Prometheus: no buckets, and an empty layout if it is the chunk's first.
            h = IntegerHistogram()
            h.sumBits = Self.staleNaNBits
        }
        let n = count
        var tDelta: Int64 = 0, countDelta: Int64 = 0, zeroDelta: Int64 = 0
        if n == 0 {
            layout = HistogramLayout(h)
            stream.writeHistogramLayout(layout)
            positive = BucketDeltas(count: HistogramLayout.buckets(h.positiveSpans))
            negative = BucketDeltas(count: HistogramLayout.buckets(h.negativeSpans))
            stream.writeVarbitInt(t)
            stream.writeVarbitUint(h.count)
            stream.writeVarbitUint(h.zeroCount)
            stream.writeBits(h.sumBits, 64)
            for b in h.positiveBuckets { stream.writeVarbitInt(b) }
            for b in h.negativeBuckets { stream.writeVarbitInt(b) }
        } else {
            // The second histogram's single deltas are the double deltas' case of a zero previous delta.
            tDelta = t &- timestamp
            countDelta = Int64(bitPattern: h.count) &- Int64(bitPattern: observations)
            zeroDelta = Int64(bitPattern: h.zeroCount) &- Int64(bitPattern: zeroCount)
            stream.writeVarbitInt(tDelta &- timestampDelta)
            stream.writeVarbitInt(stale ? 0 : countDelta &- observationsDelta)
            stream.writeVarbitInt(stale ? 0 : zeroDelta &- zeroCountDelta)
            sums.write(h.sumBits, after: sumBits, to: &stream)
            Self.writeDoubleDeltas(h.positiveBuckets, &positive, &stream)
            Self.writeDoubleDeltas(h.negativeBuckets, &negative, &stream)
        }
        stream.bytes[0] = UInt8(truncatingIfNeeded: (n + 1) >> 8)
        stream.bytes[1] = UInt8(truncatingIfNeeded: n + 1)
        timestamp = t
        observations = h.count
        zeroCount = h.zeroCount
        timestampDelta = tDelta
        observationsDelta = countDelta
        zeroCountDelta = zeroDelta
        positive.values.replaceSubrange(0..<h.positiveBuckets.count, with: h.positiveBuckets)
        negative.values.replaceSubrange(0..<h.negativeBuckets.count, with: h.negativeBuckets)
        sumBits = h.sumBits
    }

    private static func writeDoubleDeltas(_ buckets: [Int64], _ previous: inout BucketDeltas, _ stream: inout BitWriter) {
        for (i, b) in buckets.enumerated() {
            let change = b &- previous.values[i]
            stream.writeVarbitInt(change &- previous.changes[i])
            previous.changes[i] = change
        }
    }

}

/// Iterates the histograms of an encoded histogram chunk (encoding 2): each as it was appended (a
/// staleness marker keeps the previous buckets, as Prometheus' iterator does). Bounds-checked: a
/// chunk that ends early or holds an impossible value sets `failed`.
public struct HistogramIterator: IteratorProtocol, ChunkIterator {
    static var encoding: UInt8 { HistogramChunk.encoding }

    private var cursor: HistogramChunkCursor
    public var header: HistogramChunk.CounterResetHeader { cursor.header }
    public var failed: Bool { cursor.failed }
    private var current = IntegerHistogram()
    private var timestamp: Int64 = 0
    private var timestampDelta: Int64 = 0
    private var countDelta: Int64 = 0
    private var zeroCountDelta: Int64 = 0
    private var positiveChanges: [Int64] = []
    private var negativeChanges: [Int64] = []
    private var sums = XORValueReader()

    /// `bytes` must stay valid while iterating.
    public init(_ bytes: UnsafeBufferPointer<UInt8>) { cursor = HistogramChunkCursor(bytes) }

    public mutating func next() -> (timestamp: Int64, histogram: IntegerHistogram)? {
        guard cursor.hasNext, cursor.finish(cursor.read == 0 ? readFirst() : readNext()) else { return nil }
        return (timestamp, current)
    }

    private mutating func readFirst() -> Bool {
        guard let layout = cursor.reader.readHistogramLayout() else { return false }
        layout.apply(to: &current)
        guard let t = cursor.reader.readVarbitInt(), let count = cursor.reader.readVarbitUint(), let zero = cursor.reader.readVarbitUint(),
              let sum = cursor.reader.readBits(64) else { return false }
        (timestamp, current.count, current.zeroCount, current.sumBits) = (t, count, zero, sum)
        guard let positive = readFirstBuckets(HistogramLayout.buckets(layout.positiveSpans)),
              let negative = readFirstBuckets(HistogramLayout.buckets(layout.negativeSpans)) else { return false }
        (current.positiveBuckets, current.negativeBuckets) = (positive, negative)
        positiveChanges = Array(repeating: 0, count: positive.count)
        negativeChanges = Array(repeating: 0, count: negative.count)
        return true
    }

    private mutating func readNext() -> Bool {
        guard let tDod = cursor.reader.readVarbitInt(), let countDod = cursor.reader.readVarbitInt(), let zeroDod = cursor.reader.readVarbitInt() else { return false }
        timestampDelta &+= tDod
        timestamp &+= timestampDelta
        countDelta &+= countDod
        current.count = UInt64(bitPattern: Int64(bitPattern: current.count) &+ countDelta)
        zeroCountDelta &+= zeroDod
        current.zeroCount = UInt64(bitPattern: Int64(bitPattern: current.zeroCount) &+ zeroCountDelta)
        guard sums.read(&current.sumBits, from: &cursor.reader) else { return false }
        if current.sumBits == HistogramChunk.staleNaNBits { return true }
        return Self.readDoubleDeltas(&current.positiveBuckets, &positiveChanges, &cursor.reader)
            && Self.readDoubleDeltas(&current.negativeBuckets, &negativeChanges, &cursor.reader)
    }

    private mutating func readFirstBuckets(_ n: Int) -> [Int64]? {
        guard n <= cursor.reader.bitsLeft else { return nil }
        var buckets: [Int64] = []
        buckets.reserveCapacity(n)
        for _ in 0..<n {
            guard let b = cursor.reader.readVarbitInt() else { return nil }
            buckets.append(b)
        }
        return buckets
    }

    private static func readDoubleDeltas(_ buckets: inout [Int64], _ changes: inout [Int64], _ reader: inout BitReader) -> Bool {
        for i in buckets.indices {
            guard let dod = reader.readVarbitInt() else { return false }
            changes[i] &+= dod
            buckets[i] &+= changes[i]
        }
        return true
    }
}

/// What both histogram iterators keep of their chunk: the bits after its three header bytes, its
/// sample count and counter-reset header, how many samples were read, and whether one failed.
struct HistogramChunkCursor {
    var reader: BitReader
    let total: Int
    let header: HistogramChunk.CounterResetHeader
    private(set) var read = 0
    private(set) var failed = false

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        reader = BitReader(bytes, bitPosition: 24)
        total = bytes.count >= 3 ? XORChunk.sampleCount(bytes) : 0
        header = bytes.count >= 3 ? HistogramChunk.CounterResetHeader(rawValue: bytes[2] & 0b1100_0000) ?? .unknown : .unknown
    }

    /// Whether another sample is due (`read == 0`: the first).
    var hasNext: Bool { read < total && !failed }

    /// Counts a sample read, or marks the chunk failed; returns `ok`.
    mutating func finish(_ ok: Bool) -> Bool {
        if ok { read += 1 } else { failed = true }
        return ok
    }
}

/// The layout every histogram of a histogram or float-histogram chunk shares, written once at
/// its start (`writeHistogramChunkLayout` in Prometheus' `histogram_meta.go`).
struct HistogramLayout: Equatable {
    var schema: Int32 = 0
    var zeroThresholdBits: UInt64 = 0
    var positiveSpans: [HistogramSpan] = []
    var negativeSpans: [HistogramSpan] = []

    init() {}

    init<H: NativeHistogram>(_ h: H) {
        schema = h.schema
        zeroThresholdBits = h.zeroThresholdBits
        positiveSpans = h.positiveSpans
        negativeSpans = h.negativeSpans
    }

    func apply<H: NativeHistogram>(to h: inout H) {
        h.schema = schema
        h.zeroThresholdBits = zeroThresholdBits
        h.positiveSpans = positiveSpans
        h.negativeSpans = negativeSpans
    }

    static func buckets(_ spans: [HistogramSpan]) -> Int { spans.reduce(0) { $0 &+ Int($1.length) } }

    /// Whether `h` can be appended to a chunk holding `count` histograms of `layout`: a staleness
    /// marker always; else a well-formed histogram, in an empty chunk or with the chunk's layout;
    /// and fewer than 65535 held.
    static func fits<H: NativeHistogram>(_ h: H, count: Int, layout: HistogramLayout) -> Bool {
        guard count < Int(UInt16.max) else { return false }
        if h.isStale { return true }
        return h.isWellFormed && (count == 0 || HistogramLayout(h) == layout)
    }
}

extension BitWriter {
    mutating func writeHistogramLayout(_ layout: HistogramLayout) {
        let threshold = Double(bitPattern: layout.zeroThresholdBits)
        if threshold == 0 {
            writeByte(0)
        } else if threshold > 0, threshold.significand == 1, threshold.isNormal, (-243...10).contains(threshold.exponent) {
            // Go's Frexp gives 0.5 x 2^(exponent + 1): a power of two with exp + 243 in 1...254.
            writeByte(UInt8(threshold.exponent + 1 + 243))
        } else {
            writeByte(255)
            writeBits(layout.zeroThresholdBits, 64)
        }
        writeVarbitInt(Int64(layout.schema))
        for spans in [layout.positiveSpans, layout.negativeSpans] {
            writeVarbitUint(UInt64(spans.count))
            for span in spans {
                writeVarbitUint(UInt64(span.length))
                writeVarbitInt(Int64(span.offset))
            }
        }
    }
}

extension BitReader {
    /// A chunk's layout; nil when the bits run out or a value does not fit its field.
    mutating func readHistogramLayout() -> HistogramLayout? {
        var layout = HistogramLayout()
        guard let threshold = readBits(8) else { return nil }
        switch threshold {
        case 0: layout.zeroThresholdBits = 0
        case 255:
            guard let bits = readBits(64) else { return nil }
            layout.zeroThresholdBits = bits
        default: layout.zeroThresholdBits = Double(sign: .plus, exponent: Int(threshold) - 243 - 1, significand: 1).bitPattern
        }
        guard let schema = readVarbitInt(), let schema32 = Int32(exactly: schema),
              let positiveSpans = readHistogramSpans(), let negativeSpans = readHistogramSpans() else { return nil }
        layout.schema = schema32
        layout.positiveSpans = positiveSpans
        layout.negativeSpans = negativeSpans
        return layout
    }

    /// A span count is checked against the bits left (each span takes at least one).
    private mutating func readHistogramSpans() -> [HistogramSpan]? {
        guard let n = readVarbitUint(), n <= UInt64(bitsLeft) else { return nil }
        var spans: [HistogramSpan] = []
        for _ in 0..<n {
            guard let length = readVarbitUint(), let offset = readVarbitInt(),
                  let length32 = UInt32(exactly: length), let offset32 = Int32(exactly: offset) else { return nil }
            spans.append(HistogramSpan(offset: offset32, length: length32))
        }
        return spans
    }
}

/// Prometheus' varbit integers (`tsdb/chunkenc/varbit.go`): a unary prefix of 0 to 8 ones naming
/// the width (0, 3, 6, 9, 12, 18, 25, 56 or 64 bits), then the value in that width.
private let varbitWidths: [Int] = [0, 3, 6, 9, 12, 18, 25, 56, 64]

extension BitWriter {
    mutating func writeVarbitInt(_ v: Int64) {
        // Prometheus' `bitRange`: -(2^(n-1) - 1) <= v <= 2^(n-1).
        let width = varbitWidths.dropFirst().dropLast().first { n in v >= -((1 << (n - 1)) - 1) && v <= 1 << (n - 1) } ?? 64
        writeVarbitPrefix(v == 0 ? 0 : width)
        if v != 0 { writeBits(UInt64(bitPattern: v), width) }
    }

    mutating func writeVarbitUint(_ v: UInt64) {
        let width = varbitWidths.dropFirst().dropLast().first { n in v >> UInt64(n) == 0 } ?? 64
        writeVarbitPrefix(v == 0 ? 0 : width)
        if v != 0 { writeBits(v, width) }
    }

    /// Ones for the width's place in `varbitWidths`, then a zero unless all eight are ones.
    private mutating func writeVarbitPrefix(_ width: Int) {
        let ones = varbitWidths.firstIndex(of: width) ?? 8
        if ones == 8 {
            writeBits(0xff, 8)
        } else {
            writeBits((1 << UInt64(ones + 1)) - 2, ones + 1)
        }
    }
}

extension BitReader {
    mutating func readVarbitInt() -> Int64? {
        guard let width = readVarbitWidth() else { return nil }
        guard width > 0 else { return 0 }
        guard let raw = readBits(width) else { return nil }
        if width == 64 { return Int64(bitPattern: raw) }
        return raw > 1 << UInt64(width - 1) ? Int64(raw) - (1 << Int64(width)) : Int64(raw)
    }

    mutating func readVarbitUint() -> UInt64? {
        guard let width = readVarbitWidth() else { return nil }
        return width == 0 ? 0 : readBits(width)
    }

    private mutating func readVarbitWidth() -> Int? {
        var ones = 0
        while ones < 8 {
            guard let bit = readBit() else { return nil }
            if !bit { break }
            ones += 1
        }
        return varbitWidths[ones]
    }
}
