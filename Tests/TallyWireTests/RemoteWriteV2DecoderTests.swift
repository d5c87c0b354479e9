import TallyWire
import XCTest

/// The 2.0 decoder's label keys: what lets a receiver know a series again without reading its labels.
final class RemoteWriteV2DecoderTests: XCTestCase {
    private let labels = [("__name__", "node_ram_hourly_cost"), ("cluster_id", "prod-eu"), ("node", String(repeating: "n", count: 300))]
    private let sample = WireSample(timestamp: 1_700_000_000_000, valueBits: 1.0.bitPattern)

    private func key(_ view: WriteRequestView, _ index: Int) -> [UInt8] { Array(view.body[view.series[index].encodedLabels.range]) }

    /// The same series has the same key in every request, whatever its symbol indexes, and the key
    /// is the label bytes Prometheus writes in 1.0, so 1.0 and 2.0 senders share known series.
    func testASeriesKeyIsIts10LabelBytesInEveryRequest() throws {
        var v1 = WriteRequestEncoder()
        v1.addSeries(labels: labels, samples: [sample])
        let expected = key(try RemoteWriteDecoder.decode(body: v1.writer.bytes, validatingLabels: false), 0)
        XCTAssertFalse(expected.isEmpty)

        var alone = WriteRequestV2Encoder(), second = WriteRequestV2Encoder()
        alone.addSeries(labels: labels, samples: [sample])
        second.addSeries(labels: [("__name__", "other"), ("zone", "a")], samples: [sample])
        second.addSeries(labels: labels, samples: [sample])
        XCTAssertEqual(key(try RemoteWriteV2Decoder.decode(body: alone.bytes), 0), expected)
        XCTAssertEqual(key(try RemoteWriteV2Decoder.decode(body: second.bytes), 1), expected, "other symbol indexes, the same key")
    }

    /// A series refused by a 2.0 rule gets no key (its 1.0 twin could be known and valid), and a
    /// request whose keys would pass the bound gets no further keys.
    func testRefusedSeriesAndKeysPastTheBoundGetNone() throws {
        var request = WriteRequestV2Encoder()
        request.addSeries(labels: [("node", "n1"), ("__name__", "unsorted")], samples: [sample])
        request.addSeries(labels: [("__name__", "empty_value"), ("node", "")], samples: [sample])
        request.addSeries(labels: labels, samples: [sample])
        request.addSeries(labels: labels + [("zone", "b")], samples: [sample])
        let view = try RemoteWriteV2Decoder.decode(body: request.bytes)
        XCTAssertEqual(view.series.map(\.encodedLabels.count).prefix(2), [0, 0])
        XCTAssertGreaterThan(view.series[2].encodedLabels.count, 300)

        let bounded = try RemoteWriteV2Decoder.decode(body: request.bytes, maxKeyBytes: Int(view.series[2].encodedLabels.count))
        XCTAssertEqual(bounded.series.map(\.encodedLabels.count), [0, 0, view.series[2].encodedLabels.count, 0])
        XCTAssertEqual(bounded.body.count, request.bytes.count + Int(view.series[2].encodedLabels.count))
    }
}
