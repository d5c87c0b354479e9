import TallyStorage
import TallyWire

extension WriteRequestView {
    /// A native histogram of the request as storage holds it, integer or float, chosen by the
    /// message's count field (`count_int` or `count_float`), as Prometheus'
    /// `HistogramProtoToHistogram` and `FloatHistogramProtoToFloatHistogram` read it: integer
    /// bucket deltas (`*_deltas`) or float absolute counts (`*_counts`). The histogram passed
    /// `HistogramValidator` when the request was decoded.
    func storedHistogram(_ wire: WireHistogram) -> HistogramValue {
        wire.isFloat
            ? .float(filled(FloatHistogram(), wire, zeroCount: wire.zeroCountFloat, count: wire.countFloat) { forEachCount(of: $0, $1, $2) })
            : .integer(filled(IntegerHistogram(), wire, zeroCount: wire.zeroCountInt, count: wire.countInt) { forEachDelta(of: $0, $1, $2) })
    }

    /// `empty` with the message's reset hint (kept when it is one of Prometheus' four, else
    /// unknown), schema, zero threshold, sum, spans, the counts given and the buckets `forEachBucket` reads.
    private func filled<H: NativeHistogram>(_ empty: H, _ wire: WireHistogram, zeroCount: H.Count, count: H.Count,
                                            _ forEachBucket: (WireHistogram, WireHistogram.Side, (H.Bucket) -> Void) -> Void) -> H {
        var h = empty
        h.counterResetHint = (0...3).contains(wire.resetHint) ? UInt8(wire.resetHint) : 0
        h.schema = wire.schema
        h.zeroThresholdBits = wire.zeroThresholdBits
        h.sumBits = wire.sumBits
        h.zeroCount = zeroCount
        h.count = count
        forEachSpan(of: wire, .positive) { h.positiveSpans.append(HistogramSpan(offset: $0, length: $1)) }
        forEachSpan(of: wire, .negative) { h.negativeSpans.append(HistogramSpan(offset: $0, length: $1)) }
        h.positiveBuckets.reserveCapacity(wire.bucketCount(.positive))
        h.negativeBuckets.reserveCapacity(wire.bucketCount(.negative))
        forEachBucket(wire, .positive) { h.positiveBuckets.append($0) }
        forEachBucket(wire, .negative) { h.negativeBuckets.append($0) }
        return h
    }
}
