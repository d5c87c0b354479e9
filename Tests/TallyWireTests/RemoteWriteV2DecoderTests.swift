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
}
