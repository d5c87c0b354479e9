import FuzzSupport
import TallyWire

// A Remote-Write body through the receiver's path, as 1.0 and as 2.0: snappy and protobuf decoding
// of the input as it arrives (compressed), protobuf decoding of the input as a decompressed body, and
// the lazy label validation the receiver runs per series. And the same bytes as a Remote-Read request,
// compressed and not: the other request body any client can send as protobuf.

/// Smaller than the receiver's 64 MiB so runs stay far below the RSS limit; inputs can still claim
/// more than they hold, which is the case the limit guards.
let maxDecodedBytes = 1 << 22

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked {
        var requests: [String: [UInt8]] = [:]
        for (i, series) in sampleSeries.enumerated() {
            var encoder = WriteRequestEncoder()
            // Labels as senders send them: unsorted, with an empty value the receiver drops.
            encoder.addSeries(labels: series.labels.reversed() + [("empty", "")],
                              samples: series.samples.map { WireSample(timestamp: $0.timestamp, valueBits: $0.valueBits) })
            requests["request-\(i).snappy"] = encoder.compressed()
            requests["request-\(i).pb"] = encoder.writer.bytes
        }
        var everything = WriteRequestEncoder()
        for series in sampleSeries {
            everything.addSeries(labels: series.labels, samples: [WireSample(timestamp: 1, valueBits: 0)])
        }
        requests["request-all.snappy"] = everything.compressed()
        var v2 = WriteRequestV2Encoder()
        for series in sampleSeries {
            v2.addSeries(labels: series.labels, samples: series.samples.map { WireSample(timestamp: $0.timestamp, valueBits: $0.valueBits) })
        }
        requests["request-v2.snappy"] = v2.compressed()
        requests["request-v2.pb"] = v2.bytes
        var read = ProtobufWriter()
        read.messageField(1) { query in
            query.varintField(1, 1)
            query.varintField(2, 2)
            for (type, name, value) in [(UInt64(0), "__name__", "m"), (2, "job", "a|b.*"), (1, "x", ""), (3, "y", "z")] {
                query.messageField(3) { matcher in
                    matcher.varintField(1, type)
                    matcher.bytesField(2, Array(name.utf8))
                    matcher.bytesField(3, Array(value.utf8))
                }
            }
        }
        read.bytesField(2, [0, 1])
        requests["read-request.pb"] = read.bytes
        requests["read-request.snappy"] = SnappyBlock.compress(read.bytes)
        return requests
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if let view = try? RemoteWriteDecoder.decode(compressed: input, maxDecodedBytes: maxDecodedBytes) {
        check(view)
    }
    if var view = try? RemoteWriteDecoder.decode(body: input, validatingLabels: false) {
        for index in view.series.indices { _ = view.validateLabels(ofSeriesAt: index) }
        check(view)
    }
    // Histograms read in place whatever rule they break (the receiver checks them first).
    if var view = try? RemoteWriteDecoder.decode(body: input, validatingLabels: false, validatingHistograms: false) {
        for index in view.series.indices { _ = view.validateLabels(ofSeriesAt: index) }
        check(view)
    }
    if let view = try? RemoteWriteV2Decoder.decode(compressed: input, maxDecodedBytes: maxDecodedBytes) {
        check(view)
    }
    for request in [try? RemoteReadRequest.decode(compressed: input, maxDecodedBytes: maxDecodedBytes), try? RemoteReadRequest.decode(body: input)] {
        guard let request else { continue }
        // Each query and matcher takes at least a key and a length of the body.
        let matchers = request.queries.reduce(0) { $0 + $1.matchers.count }
        precondition(request.queries.count + matchers <= max(input.count, maxDecodedBytes) / 2, "more messages than bytes")
    }
    if var view = try? RemoteWriteV2Decoder.decode(body: input) {
        // Each label's two symbols are in the table, read before validation as the receiver reads them.
        precondition(view.labelSymbols.count == view.labels.count, "a label without its symbols")
        for series in view.series {
            precondition(view.labelSymbols(of: series).allSatisfy { Int($0.name) < view.symbols.count && Int($0.value) < view.symbols.count }, "a symbol past the table")
        }
        for index in view.series.indices { _ = view.validateLabels(ofSeriesAt: index) }
        check(view)
    }
    return 0
}

/// What a decoded request must satisfy whatever the bytes: spans inside the body, each series' labels
/// and samples inside the view's arrays, accepted series' labels sorted by name without repeats, and
/// no more samples than the body has room for (a Sample field takes at least its key and length).
func check(_ view: WriteRequestView) {
    precondition(view.samples.count <= view.body.count / 2, "\(view.samples.count) samples from a \(view.body.count)-byte body")
    let body = view.body
    func inBody(_ span: ByteSpan) -> Bool { span.start >= 0 && span.count >= 0 && span.range.upperBound <= body.count }
    for series in view.series {
        _ = view.samples(of: series)
        for histogram in view.histograms(of: series) {
            precondition(inBody(histogram.message), "histogram outside the body")
            // Walking spans and buckets finds as many as decoding counted.
            var spans = 0, deltas = 0, counts = 0
            for side in [WireHistogram.Side.negative, .positive] {
                view.forEachSpan(of: histogram, side) { _, _ in spans += 1 }
                view.forEachDelta(of: histogram, side) { _ in deltas += 1 }
                view.forEachCount(of: histogram, side) { _ in counts += 1 }
            }
            precondition(spans == histogram.spanCount(.negative) + histogram.spanCount(.positive), "span count")
            precondition(deltas == Int(histogram.negativeDeltaCount + histogram.positiveDeltaCount), "delta count")
            precondition(counts == Int(histogram.negativeCountCount + histogram.positiveCountCount), "bucket count")
        }
        for exemplar in view.exemplars(of: series) {
            precondition(view.labels(of: exemplar).allSatisfy { inBody($0.name) && inBody($0.value) }, "exemplar label outside the body")
        }
        let labels = view.labels(of: series)
        precondition(labels.allSatisfy { inBody($0.name) && inBody($0.value) }, "label span outside the body")
        precondition(inBody(series.encodedLabels), "encoded labels outside the body")
        guard series.rejection == nil else { continue }
        for (a, b) in zip(labels, labels.dropFirst()) {
            precondition(body[a.name.range].lexicographicallyPrecedes(body[b.name.range]), "accepted labels not sorted and unique")
        }
    }
}
