import XCTest
import TallyWire

final class RemoteWriteDecoderTests: XCTestCase {
    private func string(_ view: WriteRequestView, _ span: ByteSpan) -> String {
        String(decoding: view.body[span.range], as: UTF8.self)
    }

    private func labels(_ view: WriteRequestView, _ series: WireSeries) -> [String] {
        view.labels(of: series).map { string(view, $0.name) + "=" + string(view, $0.value) }
    }

    func testDecodesSeriesSortsLabelsAndDropsEmptyValues() throws {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("job", "a"), ("__name__", "up"), ("empty", ""), ("instance", "x")],
                          samples: [WireSample(timestamp: 1000, valueBits: 1.0.bitPattern),
                                    WireSample(timestamp: -5, valueBits: 0x7ff0_0000_0000_0002)])
        let view = try RemoteWriteDecoder.decode(compressed: encoder.compressed(), maxDecodedBytes: 1 << 20)
        XCTAssertEqual(view.series.count, 1)
        XCTAssertNil(view.series[0].rejection)
        XCTAssertEqual(labels(view, view.series[0]), ["__name__=up", "instance=x", "job=a"])
        XCTAssertEqual(Array(view.samples(of: view.series[0])),
                       [WireSample(timestamp: 1000, valueBits: 1.0.bitPattern), WireSample(timestamp: -5, valueBits: 0x7ff0_0000_0000_0002)])
    }

    func testSkipsUnknownFieldsAndCountsExemplarsHistogramsMetadata() throws {
        var w = ProtobufWriter()
        w.varintField(15, 7)                       // unknown WriteRequest field
        w.messageField(1) { ts in
            ts.messageField(1) { l in l.bytesField(1, Array("__name__".utf8)); l.bytesField(2, Array("m".utf8)); l.fixed64Field(9, 1) }
            ts.messageField(2) { s in s.fixed64Field(1, 2.0.bitPattern); s.varintField(2, 5); s.bytesField(7, [1, 2, 3]) }
            ts.messageField(3) { e in e.fixed64Field(2, 1.0.bitPattern); e.varintField(3, 5) }
            ts.messageField(4) { h in h.varintField(1, 3); h.varintField(6, 3); h.varintField(15, 5) }
            ts.bytesField(12, [0xff])               // unknown TimeSeries field
        }
        w.messageField(3) { m in m.varintField(1, 2); m.bytesField(2, Array("m".utf8)) }
        let view = try RemoteWriteDecoder.decode(body: w.bytes)
        XCTAssertEqual(view.samples, [WireSample(timestamp: 5, valueBits: 2.0.bitPattern)])
        XCTAssertEqual(view.exemplarCount, 1)
        XCTAssertEqual(view.histogramCount, 1)
        XCTAssertEqual(view.series[0].histogramCount, 1)
        XCTAssertEqual(view.metadataCount, 1)
    }

    func testMetadataOnlyRequestIsValidAndEmpty() throws {
        var w = ProtobufWriter()
        w.messageField(3) { m in m.varintField(1, 1) }
        let view = try RemoteWriteDecoder.decode(body: w.bytes)
        XCTAssertTrue(view.series.isEmpty)
        XCTAssertEqual(view.metadataCount, 1)
    }

    /// The decoder reads the usual layout of a label and a sample directly; every other legal
    /// encoding of the same message must decode to the same label set and samples.
    func testUnusualButLegalEncodingsDecodeAlike() throws {
        func request(_ label: (inout ProtobufWriter, String, String) -> Void,
                     _ sample: (inout ProtobufWriter, Int64, UInt64) -> Void) throws -> ([String], [WireSample]) {
            var w = ProtobufWriter()
            w.messageField(1) { ts in
                for (name, value) in [("__name__", "node_cpu_hourly_cost"), ("instance", String(repeating: "n", count: 200)), ("job", "")] {
                    ts.messageField(1) { label(&$0, name, value) }
                }
                for (t, v) in [(Int64(1_700_000_000_000), (0.031 as Double).bitPattern), (-1, 0x7ff0_0000_0000_0002), (0, 0)] {
                    ts.messageField(2) { sample(&$0, t, v) }
                }
            }
            let view = try RemoteWriteDecoder.decode(body: w.bytes)
            return (labels(view, view.series[0]), Array(view.samples(of: view.series[0])))
        }
        let usual = try request({ l, name, value in l.bytesField(1, Array(name.utf8)); l.bytesField(2, Array(value.utf8)) },
                                { s, t, v in s.fixed64Field(1, v); s.varintField(2, UInt64(bitPattern: t)) })
        XCTAssertEqual(usual.0, ["__name__=node_cpu_hourly_cost", "instance=" + String(repeating: "n", count: 200)])
        XCTAssertEqual(usual.1.map(\.timestamp), [1_700_000_000_000, -1, 0])
        XCTAssertEqual(usual.1.map(\.valueBits), [(0.031 as Double).bitPattern, 0x7ff0_0000_0000_0002, 0])
        let reordered = try request({ l, name, value in l.bytesField(2, Array(value.utf8)); l.bytesField(1, Array(name.utf8)) },
                                    { s, t, v in s.varintField(2, UInt64(bitPattern: t)); s.fixed64Field(1, v) })
        let padded = try request({ l, name, value in l.bytesField(1, Array(name.utf8)); l.bytesField(2, Array(value.utf8)); l.varintField(7, 1) },
                                 { s, t, v in s.fixed64Field(1, v); s.varintField(2, UInt64(bitPattern: t)); s.bytesField(9, []) })
        let sparse = try request({ l, name, value in l.bytesField(1, Array(name.utf8)); if !value.isEmpty { l.bytesField(2, Array(value.utf8)) } },
                                 { s, t, v in if v != 0 { s.fixed64Field(1, v) }; if t != 0 { s.varintField(2, UInt64(bitPattern: t)) } })
        for (name, other) in [("reordered fields", reordered), ("unknown trailing fields", padded), ("proto3 defaults left out", sparse)] {
            XCTAssertEqual(other.0, usual.0, name)
            XCTAssertEqual(other.1, usual.1, name)
        }
    }

    func testInvalidProtobufIsRejected() {
        let cases: [(String, [UInt8])] = [
            ("truncated varint", [0x08, 0x80]),
            ("length overruns", [0x0a, 0x05, 0x01]),
            ("group wire type", [0x0b]),
            ("field zero", [0x02, 0x00]),
            ("sample value with wrong wire type", { var w = ProtobufWriter(); w.messageField(1) { $0.messageField(2) { $0.varintField(1, 3) } }; return w.bytes }()),
            ("truncated fixed64", { var w = ProtobufWriter(); w.messageField(1) { $0.bytesField(2, [0x09, 1, 2]) }; return w.bytes }()),
        ]
        for (name, body) in cases {
            XCTAssertThrowsError(try RemoteWriteDecoder.decode(body: body), name) { error in
                guard case .invalidProtobuf = error as? WireError else { return XCTFail("\(name): \(error)") }
            }
        }
    }

    func testSnappyFramingCorruptionAndLimits() throws {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: 1, valueBits: 0)])
        let framed: [UInt8] = [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59] + encoder.compressed()
        XCTAssertThrowsError(try RemoteWriteDecoder.decode(compressed: framed, maxDecodedBytes: 1 << 20)) {
            XCTAssertEqual($0 as? WireError, .framedSnappy)
        }
        XCTAssertThrowsError(try RemoteWriteDecoder.decode(compressed: Array("not snappy at all".utf8), maxDecodedBytes: 1 << 20)) {
            XCTAssertEqual($0 as? WireError, .corruptSnappy)
        }
        var truncated = encoder.compressed()
        truncated.removeLast(3)
        XCTAssertThrowsError(try RemoteWriteDecoder.decode(compressed: truncated, maxDecodedBytes: 1 << 20)) {
            XCTAssertEqual($0 as? WireError, .corruptSnappy)
        }
        let size = encoder.writer.bytes.count
        XCTAssertThrowsError(try RemoteWriteDecoder.decode(compressed: encoder.compressed(), maxDecodedBytes: size - 1)) {
            XCTAssertEqual($0 as? WireError, .decodedTooLarge(size, limit: size - 1))
        }
        XCTAssertEqual(try RemoteWriteDecoder.decode(compressed: encoder.compressed(), maxDecodedBytes: size).sampleCount, 1)
    }

    func testLabelRulesRejectWholeSeries() throws {
        var w = ProtobufWriter()
        func series(_ labels: [([UInt8], [UInt8])]) {
            w.messageField(1) { ts in
                for (n, v) in labels { ts.messageField(1) { $0.bytesField(1, n); $0.bytesField(2, v) } }
                ts.messageField(2) { $0.fixed64Field(1, 1.0.bitPattern); $0.varintField(2, 1) }
            }
        }
        let name = Array("__name__".utf8)
        series([(name, Array("ok".utf8))])
        series([(name, Array("a".utf8)), ([], Array("v".utf8))])
        series([(name, Array("a".utf8)), (Array("x".utf8), Array("1".utf8)), (Array("x".utf8), Array("2".utf8))])
        series([(name, Array("a".utf8)), (Array("x".utf8), [0xc3, 0x28])])
        series([(name, [0xed, 0xa0, 0x80])])      // an encoded surrogate is not UTF-8
        series([(Array("job".utf8), Array("a".utf8))])
        series([(name, []), (Array("job".utf8), Array("a".utf8))])
        // Past the eight-bytes-at-a-time ASCII path: a bad byte after 8 and 16 ASCII bytes, then
        // long valid multi-byte values (2, 3 and 4 bytes a character) that straddle those words.
        series([(name, Array("abcdefgh".utf8) + [0xff])])
        series([(name, Array("abcdefghijklmnop".utf8) + [0xc3])])
        series([(name, Array("ok".utf8)), (Array("v".utf8), Array("abcdefg\u{e9}z\u{20ac}\u{1F600}abcdefghij\u{e9}".utf8))])
        // Prometheus' name rules: `:` in metric names only, no leading digit, ASCII letters only.
        series([(name, Array("job:rate5m".utf8)), (Array("_x9".utf8), Array("v".utf8))])
        series([(name, Array("m".utf8)), (Array("a:b".utf8), Array("v".utf8))])
        series([(name, Array("9m".utf8))])
        series([(name, Array("m".utf8)), (Array("\u{e9}".utf8), Array("v".utf8))])
        let view = try RemoteWriteDecoder.decode(body: w.bytes)
        XCTAssertEqual(view.series.map(\.rejection), [nil, .emptyLabelName, .duplicateLabelName, .invalidUTF8, .invalidUTF8, .missingMetricName, .missingMetricName,
                                                      .invalidUTF8, .invalidUTF8, nil, nil, .invalidLabelName, .invalidMetricName, .invalidLabelName])
    }

    /// `encodedLabels` covers exactly the label fields when they come back to back, and nothing when a
    /// sample sits between them; without `validatingLabels` nothing is refused until asked.
    func testEncodedLabelsAndDeferredValidation() throws {
        var w = ProtobufWriter()
        func label(_ ts: inout ProtobufWriter, _ n: String, _ v: [UInt8]) { ts.messageField(1) { $0.bytesField(1, Array(n.utf8)); $0.bytesField(2, v) } }
        func sample(_ ts: inout ProtobufWriter) { ts.messageField(2) { $0.fixed64Field(1, 1.0.bitPattern); $0.varintField(2, 1) } }
        w.messageField(1) { ts in label(&ts, "__name__", Array("up".utf8)); label(&ts, "job", Array("a".utf8)); sample(&ts) }
        w.messageField(1) { ts in label(&ts, "__name__", Array("up".utf8)); sample(&ts); label(&ts, "job", Array("a".utf8)) }
        w.messageField(1) { ts in label(&ts, "__name__", Array("up".utf8)); label(&ts, "job", [0xff]); sample(&ts) }
        var view = try RemoteWriteDecoder.decode(body: w.bytes, validatingLabels: false)
        XCTAssertEqual(view.series.map(\.rejection), [nil, nil, nil])
        let first = view.series[0]
        var labels = ProtobufWriter()
        label(&labels, "__name__", Array("up".utf8))
        label(&labels, "job", Array("a".utf8))
        XCTAssertEqual(Array(view.body[first.encodedLabels.range]), labels.bytes)
        XCTAssertEqual(view.series[1].encodedLabels.count, 0, "a sample between the labels")
        XCTAssertEqual(view.validateLabels(ofSeriesAt: 2), .invalidUTF8)
        XCTAssertNil(view.validateLabels(ofSeriesAt: 1))
        XCTAssertEqual(view.labels(of: view.series[1]).map { string(view, $0.name) }, ["__name__", "job"])
    }

    /// `WriteRequest.metadata` entries are read with their type names; one with a metric name
    /// Prometheus would refuse or text that is not UTF-8 is counted and not kept.
    func testMetadataIsReadAndInvalidEntriesAreNotKept() throws {
        var request = WriteRequestEncoder()
        request.addMetadata(type: 1, name: "kubecost_cluster_management_cost", help: "Management fee.", unit: "")
        request.addMetadata(type: 5, name: "request_seconds", help: "Latency.", unit: "seconds")
        request.addMetadata(type: 1, name: "bad name", help: "", unit: "")
        request.addMetadata(type: 3, name: "h", help: String(decoding: [0xff], as: UTF8.self), unit: "")
        var invalidHelp = request.writer.bytes
        // The replacement character the String above became, turned back into a lone 0xff byte.
        let replacement: [UInt8] = [0xef, 0xbf, 0xbd]
        if let at = invalidHelp.firstRange(of: replacement) { invalidHelp.replaceSubrange(at, with: [0xff, 0x20, 0x20]) }
        let view = try RemoteWriteDecoder.decode(body: invalidHelp)
        func text(_ span: ByteSpan) -> String { String(decoding: view.body[span.range], as: UTF8.self) }
        XCTAssertEqual(view.metadataCount, 4)
        XCTAssertEqual(view.metadata.map { [text($0.name), $0.typeName, text($0.help), text($0.unit)] },
                       [["kubecost_cluster_management_cost", "counter", "Management fee.", ""], ["request_seconds", "summary", "Latency.", "seconds"]])
    }
}
