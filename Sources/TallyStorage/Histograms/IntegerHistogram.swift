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

extension IntegerHistogram {
    /// The same sample as `other`, as Prometheus' `Histogram.Equals` decides a resend: every field
    /// but the reset hint, the sum by its bits. Two staleness markers are the same whatever else
    /// they carry (a chunk gives one back with the buckets before it).
    public func isSameSample(as other: IntegerHistogram) -> Bool {
        let stale = HistogramChunk.staleNaNBits
        if sumBits == stale || other.sumBits == stale { return sumBits == other.sumBits }
        return schema == other.schema && zeroThresholdBits == other.zeroThresholdBits && zeroCount == other.zeroCount
            && count == other.count && sumBits == other.sumBits && positiveSpans == other.positiveSpans
            && negativeSpans == other.negativeSpans && positiveBuckets == other.positiveBuckets
            && negativeBuckets == other.negativeBuckets
    }

    /// Whether `self`, following `previous`, shows a counter reset as Prometheus 2.42's
    /// `HistogramAppender.Appendable` sees one: fewer observations, a smaller zero bucket under the
    /// same schema and threshold, a bucket gone, or a bucket (matched by its index) that shrank.
    func resetsCounter(after previous: IntegerHistogram) -> Bool {
        if count < previous.count { return true }
        guard schema == previous.schema, zeroThresholdBits == previous.zeroThresholdBits else { return false }
        if zeroCount < previous.zeroCount { return true }
        return Self.shrinks(previous.positiveSpans, previous.positiveBuckets, to: positiveSpans, positiveBuckets)
            || Self.shrinks(previous.negativeSpans, previous.negativeBuckets, to: negativeSpans, negativeBuckets)
    }

    /// Each bucket of a side as (index, absolute count), from spans and deltas. The sums wrap as
    /// Go's do; a histogram that passed validation has no overflow.
    static func absoluteBuckets(_ spans: [HistogramSpan], _ deltas: [Int64]) -> [(index: Int64, count: Int64)] {
        var out: [(index: Int64, count: Int64)] = []
        out.reserveCapacity(deltas.count)
        var index: Int64 = 0, count: Int64 = 0, k = 0
        for span in spans {
            index &+= Int64(span.offset)
            for _ in 0..<span.length {
                guard k < deltas.count else { return out }
                count &+= deltas[k]
                out.append((index, count))
                index &+= 1
                k += 1
            }
        }
        return out
    }

    private static func shrinks(_ oldSpans: [HistogramSpan], _ oldDeltas: [Int64], to newSpans: [HistogramSpan], _ newDeltas: [Int64]) -> Bool {
        let new = absoluteBuckets(newSpans, newDeltas)
        var n = 0
        for (index, count) in absoluteBuckets(oldSpans, oldDeltas) {
            while n < new.count && new[n].index < index { n += 1 }
            guard n < new.count, new[n].index == index else { return true }
            if new[n].count < count { return true }
        }
        return false
    }
}
