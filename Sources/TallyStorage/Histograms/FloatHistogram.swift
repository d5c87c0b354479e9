/// A float native histogram as Prometheus stores it (`model/histogram.FloatHistogram`): counts
/// and bucket values are floats, each bucket its absolute count (not a delta). Sent by
/// Remote-Write 2.0 senders and by recording rules; held in float-histogram chunks (encoding 3)
/// and the WAL's `FloatHistogramSamples` records (type 8). Floats are kept as bit patterns where
/// equality must be exact (a resend of a NaN sum is the same sample).
public struct FloatHistogram: NativeHistogram {
    public var counterResetHint: UInt8 = 0
    public var schema: Int32 = 0
    public var zeroThresholdBits: UInt64 = 0
    public var zeroCount: Double = 0
    public var count: Double = 0
    public var sumBits: UInt64 = 0
    public var positiveSpans: [HistogramSpan] = []
    public var negativeSpans: [HistogramSpan] = []
    public var positiveBuckets: [Double] = []
    public var negativeBuckets: [Double] = []

    public init() {}

    /// Equal field by field, floats by their bits (so NaN equals NaN, and -0 differs from 0).
    public static func == (a: FloatHistogram, b: FloatHistogram) -> Bool {
        a.counterResetHint == b.counterResetHint && a.isSameSample(as: b)
    }

    public func observations(_ side: HistogramSide) -> [(index: Int64, count: Double)] {
        var out: [(index: Int64, count: Double)] = []
        let buckets = side == .positive ? positiveBuckets : negativeBuckets
        Self.forEachIndex(side == .positive ? positiveSpans : negativeSpans, upTo: buckets.count) { k, index in
            out.append((index, buckets[k]))
        }
        return out
    }

    public static func sameValues(_ a: FloatHistogram, _ b: FloatHistogram) -> Bool {
        a.count.bitPattern == b.count.bitPattern && a.zeroCount.bitPattern == b.zeroCount.bitPattern
            && a.positiveBuckets.map(\.bitPattern) == b.positiveBuckets.map(\.bitPattern)
            && a.negativeBuckets.map(\.bitPattern) == b.negativeBuckets.map(\.bitPattern)
    }
}
