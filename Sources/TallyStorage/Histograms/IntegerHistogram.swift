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
/// of histogram chunks; nothing in the head or blocks holds histograms yet.
public struct IntegerHistogram: Sendable, Equatable {
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
