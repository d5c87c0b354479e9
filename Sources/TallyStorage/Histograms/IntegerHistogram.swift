/// A run of consecutive buckets: `offset` is the gap from the end of the previous span (or the
/// first bucket's index, for the first span), `length` the number of buckets.
public struct HistogramSpan: Sendable, Equatable {
    public var offset: Int32
    public var length: UInt32

    public init(offset: Int32, length: UInt32) {
        self.offset = offset
        self.length = length
    }
}

/// An integer native histogram as Prometheus 2.42 stores it (`model/histogram.Histogram`): bucket
/// counts as deltas from the previous bucket of the same side, the sum as its bit pattern (a
/// staleness marker stays exact). The building block of the WAL's `HistogramSamples` records and
/// of histogram chunks.
public struct IntegerHistogram: NativeHistogram {
    /// 0 unknown, 1 counter reset, 2 no counter reset, 3 gauge (`histogram.CounterResetHint`).
    public var counterResetHint: UInt8 = 0
    public var schema: Int32 = 0
    public var zeroThresholdBits: UInt64 = 0
    public var zeroCount: UInt64 = 0
    public var count: UInt64 = 0
    public var sumBits: UInt64 = 0
    public var positiveSpans: [HistogramSpan] = []
    public var negativeSpans: [HistogramSpan] = []
    public var positiveBuckets: [Int64] = []
    public var negativeBuckets: [Int64] = []

    public init() {}
}

/// Which side of the zero bucket.
public enum HistogramSide: Sendable { case positive, negative }

/// What integer and float native histograms share: the layout (schema, zero threshold, spans),
/// the sum's bits and the reset hint; they differ in the type of their counts. The head, WAL,
/// chunks and blocks keep both through this one shape.
public protocol NativeHistogram: Sendable, Equatable {
    associatedtype Bucket: Sendable
    associatedtype Count: Comparable & AdditiveArithmetic
    associatedtype BucketCount: Comparable & AdditiveArithmetic
    var counterResetHint: UInt8 { get set }
    var schema: Int32 { get set }
    var zeroThresholdBits: UInt64 { get set }
    var sumBits: UInt64 { get set }
    var positiveSpans: [HistogramSpan] { get set }
    var negativeSpans: [HistogramSpan] { get set }
    var positiveBuckets: [Bucket] { get set }
    var negativeBuckets: [Bucket] { get set }
    init()
    /// Each bucket of a side as (index, absolute count).
    func observations(_ side: HistogramSide) -> [(index: Int64, count: BucketCount)]
    /// Observations in all, and in the zero bucket.
    var count: Count { get set }
    var zeroCount: Count { get set }
    /// Whether the counts (total, zero bucket, buckets) are the same, floats by their bits.
    static func sameValues(_ a: Self, _ b: Self) -> Bool
}

extension NativeHistogram {
    /// Whether this is Prometheus' staleness marker, whose histograms carry no buckets.
    var isStale: Bool { sumBits == HistogramChunk.staleNaNBits }

    /// The same sample as `other`, as Prometheus' `Histogram.Equals` decides a resend: every field
    /// but the reset hint, the sum by its bits. Two staleness markers are the same whatever else
    /// they carry (a chunk gives one back with the buckets before it).
    public func isSameSample(as other: Self) -> Bool {
        if isStale || other.isStale { return sumBits == other.sumBits }
        return schema == other.schema && zeroThresholdBits == other.zeroThresholdBits && sumBits == other.sumBits
            && positiveSpans == other.positiveSpans && negativeSpans == other.negativeSpans && Self.sameValues(self, other)
    }

    /// Whether `self`, following `previous`, shows a counter reset as Prometheus 2.42's histogram
    /// appenders' `Appendable` see one: fewer observations, a smaller zero bucket under the same
    /// schema and threshold, a bucket gone, or a bucket (matched by its index) that shrank.
    func resetsCounter(after previous: Self) -> Bool {
        if count < previous.count { return true }
        guard schema == previous.schema, zeroThresholdBits == previous.zeroThresholdBits else { return false }
        if zeroCount < previous.zeroCount { return true }
        return [HistogramSide.positive, .negative].contains { side in
            let new = observations(side)
            var n = 0
            for (index, count) in previous.observations(side) {
                while n < new.count && new[n].index < index { n += 1 }
                guard n < new.count, new[n].index == index else { return true }
                if new[n].count < count { return true }
            }
            return false
        }
    }

    /// Whether the histogram is a staleness marker, or has a schema Prometheus knows (-4...8) and
    /// bucket counts that match its spans: what any chunk needs.
    var isWellFormed: Bool {
        isStale || ((-4...8).contains(schema) && positiveBuckets.count == HistogramLayout.buckets(positiveSpans)
            && negativeBuckets.count == HistogramLayout.buckets(negativeSpans))
    }

    /// Calls `body(k, index)` for the k-th bucket of `spans` and its index, for k below `limit`.
    static func forEachIndex(_ spans: [HistogramSpan], upTo limit: Int, _ body: (Int, Int64) -> Void) {
        var index: Int64 = 0, k = 0
        for span in spans {
            index &+= Int64(span.offset)
            for _ in 0..<span.length {
                guard k < limit else { return }
                body(k, index)
                index &+= 1
                k += 1
            }
        }
    }
}

extension IntegerHistogram {
    public func observations(_ side: HistogramSide) -> [(index: Int64, count: Int64)] {
        side == .positive ? Self.absoluteBuckets(positiveSpans, positiveBuckets) : Self.absoluteBuckets(negativeSpans, negativeBuckets)
    }

    public static func sameValues(_ a: IntegerHistogram, _ b: IntegerHistogram) -> Bool {
        a.count == b.count && a.zeroCount == b.zeroCount && a.positiveBuckets == b.positiveBuckets && a.negativeBuckets == b.negativeBuckets
    }

    /// Each bucket of a side as (index, absolute count), from spans and deltas. The sums wrap as
    /// Go's do; a histogram that passed validation has no overflow.
    static func absoluteBuckets(_ spans: [HistogramSpan], _ deltas: [Int64]) -> [(index: Int64, count: Int64)] {
        var out: [(index: Int64, count: Int64)] = []
        out.reserveCapacity(deltas.count)
        var count: Int64 = 0
        forEachIndex(spans, upTo: deltas.count) { k, index in
            count &+= deltas[k]
            out.append((index, count))
        }
        return out
    }
}

/// How the WAL and chunks tell the two kinds of histogram apart: each kind's record type and
/// chunk encoding, and its counts as 64-bit words (integers as they are, floats as their bits)
/// so one record coder serves both.
protocol StoredHistogram: NativeHistogram {
    /// The WAL record type of its samples: 7 HistogramSamples or 8 FloatHistogramSamples.
    static var walRecordType: WALRecordType { get }
    /// Whether the WAL writes counts and buckets as big-endian float bits (else as varints).
    static var wordsAreFloatBits: Bool { get }
    /// Zero count, count, then positive and negative buckets, as words.
    var countWords: (zero: UInt64, count: UInt64) { get set }
    var bucketWords: (positive: [UInt64], negative: [UInt64]) { get set }
    /// A count as Prometheus' `String()` prints it: integers as they are, floats in Go's `%g`.
    static func text(_ count: Count) -> String
    static func text(bucket: BucketCount) -> String
    associatedtype Chunk: HistogramChunkWriter where Chunk.Histogram == Self
    associatedtype Iterator: ChunkIterator where Iterator.Element == (timestamp: Int64, histogram: Self)
    /// The histogram as either kind, and back (nil for the other kind).
    var value: HistogramValue { get }
    init?(_ value: HistogramValue)
    /// A series' open chunk of this kind.
    static var openChunk: WritableKeyPath<HistogramSeries, Chunk> { get }
}

extension IntegerHistogram: StoredHistogram {
    static var walRecordType: WALRecordType { .histogramSamples }
    static var wordsAreFloatBits: Bool { false }
    var countWords: (zero: UInt64, count: UInt64) {
        get { (zeroCount, count) }
        set { (zeroCount, count) = newValue }
    }
    var bucketWords: (positive: [UInt64], negative: [UInt64]) {
        get { (positiveBuckets.map { UInt64(bitPattern: $0) }, negativeBuckets.map { UInt64(bitPattern: $0) }) }
        set { (positiveBuckets, negativeBuckets) = (newValue.positive.map { Int64(bitPattern: $0) }, newValue.negative.map { Int64(bitPattern: $0) }) }
    }
}

extension FloatHistogram: StoredHistogram {
    static var walRecordType: WALRecordType { .floatHistogramSamples }
    static var wordsAreFloatBits: Bool { true }
    var countWords: (zero: UInt64, count: UInt64) {
        get { (zeroCount.bitPattern, count.bitPattern) }
        set { (zeroCount, count) = (Double(bitPattern: newValue.zero), Double(bitPattern: newValue.count)) }
    }
    var bucketWords: (positive: [UInt64], negative: [UInt64]) {
        get { (positiveBuckets.map(\.bitPattern), negativeBuckets.map(\.bitPattern)) }
        set { (positiveBuckets, negativeBuckets) = (newValue.positive.map(Double.init(bitPattern:)), newValue.negative.map(Double.init(bitPattern:))) }
    }
}

/// The chunk kinds behind `StoredHistogram.Chunk`: histogram (2) and float histogram (3) chunks.
protocol HistogramChunkWriter: Sendable {
    associatedtype Histogram: StoredHistogram
    static var encoding: UInt8 { get }
    init(header: HistogramChunk.CounterResetHeader)
    var count: Int { get }
    var header: HistogramChunk.CounterResetHeader { get }
    var bytes: [UInt8] { get }
    func fits(_ h: Histogram) -> Bool
    mutating func append(timestamp: Int64, _ h: Histogram)
}

extension HistogramChunk: HistogramChunkWriter {}
extension FloatHistogramChunk: HistogramChunkWriter {}

extension IntegerHistogram {
    typealias Chunk = HistogramChunk
    typealias Iterator = HistogramIterator
    var value: HistogramValue { .integer(self) }
    init?(_ value: HistogramValue) {
        guard case let .integer(h) = value else { return nil }
        self = h
    }
    static var openChunk: WritableKeyPath<HistogramSeries, HistogramChunk> { \.openInteger }
    static func text(_ count: UInt64) -> String { String(count) }
    static func text(bucket: Int64) -> String { String(UInt64(bitPattern: bucket)) }
}

extension FloatHistogram {
    typealias Chunk = FloatHistogramChunk
    typealias Iterator = FloatHistogramIterator
    var value: HistogramValue { .float(self) }
    init?(_ value: HistogramValue) {
        guard case let .float(h) = value else { return nil }
        self = h
    }
    static var openChunk: WritableKeyPath<HistogramSeries, FloatHistogramChunk> { \.openFloat }
    static func text(_ count: Double) -> String { GoFormat.float(count) }
    static func text(bucket: Double) -> String { GoFormat.float(bucket) }
}
