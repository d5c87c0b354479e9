import TallyStorage
import TallyWire

extension WriteRequestView {
    /// An integer native histogram of the request as storage holds it: spans and bucket deltas read
    /// from the message, the reset hint kept when it is one of Prometheus' four (else unknown).
    /// The histogram passed `HistogramValidator` when the request was decoded.
    func integerHistogram(_ wire: WireHistogram) -> IntegerHistogram {
        var h = IntegerHistogram()
        h.counterResetHint = (0...3).contains(wire.resetHint) ? UInt8(wire.resetHint) : 0
        h.schema = wire.schema
        h.zeroThresholdBits = wire.zeroThresholdBits
        h.zeroCount = wire.zeroCountInt
        h.count = wire.countInt
        h.sumBits = wire.sumBits
        forEachSpan(of: wire, .positive) { h.positiveSpans.append(HistogramSpan(offset: $0, length: $1)) }
        forEachSpan(of: wire, .negative) { h.negativeSpans.append(HistogramSpan(offset: $0, length: $1)) }
        h.positiveBuckets.reserveCapacity(wire.bucketCount(.positive))
        h.negativeBuckets.reserveCapacity(wire.bucketCount(.negative))
        forEachDelta(of: wire, .positive) { h.positiveBuckets.append($0) }
        forEachDelta(of: wire, .negative) { h.negativeBuckets.append($0) }
        return h
    }
}

extension WireSeries {
    /// What storage can take of the series: its float samples and integer histograms (float
    /// histograms are refused).
    func storable(in view: WriteRequestView) -> Int {
        Int(sampleCount) + view.histograms(of: self).count { !$0.isFloat }
    }
}
