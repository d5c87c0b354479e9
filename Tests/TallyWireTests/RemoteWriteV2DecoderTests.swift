import TallyWire
import XCTest

/// The 2.0 decoder's label symbols: what lets a receiver know a series again by the symbols of its
/// labels, each resolved once per request.
final class RemoteWriteV2DecoderTests: XCTestCase {
    private let sample = WireSample(timestamp: 1_700_000_000_000, valueBits: 1.0.bitPattern)

    /// Each label keeps the symbol indexes of its name and value, resolving to its bytes, in every
    /// series of the request.
    func testEachLabelKeepsItsNameAndValueSymbols() throws {
        var request = WriteRequestV2Encoder()
        let all = [[("__name__", "up"), ("job", "a")], [("__name__", "node_ram_hourly_cost"), ("job", "a"), ("node", String(repeating: "n", count: 300))]]
        for labels in all { request.addSeries(labels: labels, samples: [sample]) }
        let view = try RemoteWriteV2Decoder.decode(body: request.bytes)
        XCTAssertEqual(view.symbols.map { String(decoding: view.body[$0.range], as: UTF8.self) }, request.symbols)
        for (series, labels) in zip(view.series, all) {
            let refs = view.labelSymbols(of: series).flatMap { [$0.name, $0.value] }
            XCTAssertEqual(refs.map { request.symbols[Int($0)] }, labels.flatMap { [$0.0, $0.1] })
            for (k, label) in view.labels(of: series).enumerated() {
                XCTAssertEqual(Array(view.body[label.name.range]), Array(request.symbols[Int(refs[2 * k])].utf8))
                XCTAssertEqual(Array(view.body[label.value.range]), Array(request.symbols[Int(refs[2 * k + 1])].utf8))
            }
        }
        let first = Array(view.labelSymbols(of: view.series[0])), second = Array(view.labelSymbols(of: view.series[1]))
        XCTAssertEqual(first[0].name, second[0].name, "one __name__ symbol")
        XCTAssertEqual(first[1], second[1], "one symbol each for job and a")
    }

    /// References of one, two and three varint bytes (a table past 16,384 symbols) resolve to their
    /// own symbols.
    func testReferencesOfEveryVarintLengthResolve() throws {
        var request = WriteRequestV2Encoder()
        let all = (0..<9000).map { [("__name__", "m"), ("id", "v\($0)"), ("x", "w\($0)")] }
        for labels in all { request.addSeries(labels: labels, samples: [sample]) }
        XCTAssertGreaterThan(request.symbols.count, 16_384)
        let view = try RemoteWriteV2Decoder.decode(body: request.bytes)
        func text(_ span: ByteSpan) -> String { String(decoding: view.body[span.range], as: UTF8.self) }
        XCTAssertEqual(view.series.count, all.count)
        for (series, labels) in zip(view.series, all) {
            XCTAssertNil(series.rejection)
            XCTAssertEqual(view.labels(of: series).map { [text($0.name), text($0.value)] }, labels.map { [$0.0, $0.1] })
        }
    }

    /// Metadata is kept under the series' metric name, with its type and text; a series without a
    /// metric name, or one Prometheus would refuse, keeps none, though all are counted.
    func testSeriesMetadataIsKeptUnderItsMetricName() throws {
        var request = WriteRequestV2Encoder()
        request.addSeries(labels: [("__name__", "node_cpu_hourly_cost"), ("node", "a")], samples: [sample], metadata: (2, "Cost of a CPU an hour.", "dollars"))
        request.addSeries(labels: [("job", "no-name")], samples: [sample], metadata: (1, "no metric name", ""))
        request.addSeries(labels: [("__name__", "1bad")], samples: [sample], metadata: (1, "an invalid metric name", ""))
        request.addSeries(labels: [("__name__", "up")], samples: [sample], metadata: (99, "", ""))
        let view = try RemoteWriteV2Decoder.decode(body: request.bytes)
        func text(_ span: ByteSpan) -> String { String(decoding: view.body[span.range], as: UTF8.self) }
        XCTAssertEqual(view.metadataCount, 4)
        XCTAssertEqual(view.metadata.map { [text($0.name), $0.typeName, text($0.help), text($0.unit)] },
                       [["node_cpu_hourly_cost", "gauge", "Cost of a CPU an hour.", "dollars"], ["up", "unknown", "", ""]])
    }
}
