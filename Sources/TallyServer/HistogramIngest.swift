import TallyStorage
import TallyWire

extension WriteRequestView {
    /// A native histogram of the request as storage holds it, integer or float, chosen by the
    /// message's count field (`count_int` or `count_float`), as Prometheus'
    /// `HistogramProtoToHistogram` and `FloatHistogramProtoToFloatHistogram` read it: integer
    /// bucket deltas (`*_deltas`) or float absolute counts (`*_counts`). The histogram passed
    /// `HistogramValidator` when the request was decoded.
    func storedHistogram(_ wire: WireHistogram) -> HistogramValue {
        if wire.isFloat {
            var h = layout(FloatHistogram(), wire)
            h.zeroCount = wire.zeroCountFloat
            h.count = wire.countFloat
            forEachCount(of: wire, .positive) { h.positiveBuckets.append($0) }
            forEachCount(of: wire, .negative) { h.negativeBuckets.append($0) }
            return .float(h)
        }
        var h = layout(IntegerHistogram(), wire)
        h.zeroCount = wire.zeroCountInt
        h.count = wire.countInt
        forEachDelta(of: wire, .positive) { h.positiveBuckets.append($0) }
        forEachDelta(of: wire, .negative) { h.negativeBuckets.append($0) }
        return .integer(h)
    }

    /// `empty` with the message's reset hint (kept when it is one of Prometheus' four, else
    /// unknown), schema, zero threshold, sum and spans, and room for its buckets.
    private func layout<H: NativeHistogram>(_ empty: H, _ wire: WireHistogram) -> H {
        var h = empty
        h.counterResetHint = (0...3).contains(wire.resetHint) ? UInt8(wire.resetHint) : 0
        h.schema = wire.schema
        h.zeroThresholdBits = wire.zeroThresholdBits
        h.sumBits = wire.sumBits
        forEachSpan(of: wire, .positive) { h.positiveSpans.append(HistogramSpan(offset: $0, length: $1)) }
        forEachSpan(of: wire, .negative) { h.negativeSpans.append(HistogramSpan(offset: $0, length: $1)) }
        h.positiveBuckets.reserveCapacity(wire.bucketCount(.positive))
        h.negativeBuckets.reserveCapacity(wire.bucketCount(.negative))
        return h
    }
}
