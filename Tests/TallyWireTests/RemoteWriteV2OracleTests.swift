import RemoteWriteProtobufC
import TallyTestSupport
import TallyWire
import XCTest

/// The Remote-Write 2.0 decoder held to libprotobuf-c (generated from proto/write_v2.proto) plus the
/// spec's rules on symbol references, applied here to what protobuf-c read: on generated requests
/// (valid, and breaking each rule), on 100,000 mutations of them, and on protobuf-c's own encoding.
final class RemoteWriteV2OracleTests: XCTestCase {
    func testGeneratedRequestsDecodeAsTheOracleSays() {
        var generator = V2RequestGenerator(test: "RemoteWriteV2OracleTests generated")
        var refused = 0, rejectedSeries = 0, histogramsTaken = 0
        var verdicts: [HistogramRequestVerdict: Int] = [:]
        for k in 0..<5_000 {
            let body = generator.request()
            let ours = V2Decoding.tally(body), expected = V2Decoding.oracle(body)
            XCTAssertNotNil(V2Decoding.protobufCAccepts(body), "request \(k) is valid protobuf")
            XCTAssertEqual(ours, expected, "request \(k): \(body)")
            if ours != expected { return }
            if ours == nil { refused += 1 }
            rejectedSeries += ours?.series.filter { $0.rejection != nil }.count ?? 0
            histogramsTaken += ours?.series.reduce(0) { $0 + $1.histograms.count } ?? 0
            // Requests whose references are sound: custom buckets and broken histograms told apart.
            if let read = V2Decoding.oracle(body, validatingHistograms: false), read.series.contains(where: { !$0.histograms.isEmpty }) {
                let verdict = HistogramRequestVerdict(read.series.map(\.histograms))
                XCTAssertEqual(HistogramRequestVerdict(tally: { () throws(WireError) in _ = try RemoteWriteV2Decoder.decode(body: body) }), verdict, "request \(k)")
                verdicts[verdict, default: 0] += 1
            }
        }
        print("RemoteWriteV2OracleTests: 5000 generated requests, \(refused) refused whole, \(rejectedSeries) series refused by a label rule, \(histogramsTaken) histograms taken; with histograms by verdict: \(verdicts)")
        XCTAssertGreaterThan(refused, 100, "the reference rules are exercised")
        XCTAssertGreaterThan(rejectedSeries, 100, "the label rules are exercised")
        HistogramRequestVerdict.assertExercised(verdicts)
    }

    func testMutatedRequestsGetTheOraclesVerdictAndContent() {
        var generator = V2RequestGenerator(test: "RemoteWriteV2OracleTests mutated")
        var mutator = RequestGenerator(test: "RemoteWriteV2OracleTests mutations")
        _ = ProtobufCOracleTests.compareOnMutations("RemoteWriteV2OracleTests", body: {
            var body = generator.request()
            mutator.mutate(&body)
            return body
        }, tally: V2Decoding.tally, oracle: { V2Decoding.oracle($0) }) { body throws(WireError) in
            _ = try RemoteWriteV2Decoder.decode(body: body)
        }
    }

    func testProtobufCsEncodingDecodesAsWhatItWasBuiltFrom() throws {
        var generator = V2RequestGenerator(test: "RemoteWriteV2OracleTests repacked")
        for k in 0..<2_000 {
            let body = generator.request()
            let repacked = try XCTUnwrap(protobufCRequestV2.repacked(body), "request \(k)")
            XCTAssertEqual(V2Decoding.tally(repacked), V2Decoding.oracle(body), "request \(k) as protobuf-c encodes it")
        }
    }
}

/// What a 2.0 decoder made of a body: per series the labels resolved through the symbols (name,
/// value, ...), the rule that refuses the series if any, the samples and the histograms; the
/// exemplar count and the number of series with metadata.
struct DecodedV2: Equatable, CustomStringConvertible {
    struct Series: Equatable {
        var labels: [[UInt8]] = []
        var rejection: String?
        var samples: [WireSample] = []
        var histograms: [DecodedHistogram] = []
    }

    var series: [Series] = []
    var exemplars: [DecodedExemplar] = []
    var metadata = 0

    var description: String {
        let each = series.map { s in "{\(s.labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",")) \(s.rejection ?? "ok") \(s.samples.count) samples \(s.histograms)}" }
        return "\(each.joined(separator: " ").prefix(2000)) exemplars \(exemplars.count) metadata \(metadata)"
    }
}

enum V2Decoding {
    static func tally(_ body: [UInt8]) -> DecodedV2? {
        guard let view = try? RemoteWriteV2Decoder.decode(body: body) else { return nil }
        var decoded = DecodedV2(exemplars: DecodedExemplar.all(view, body), metadata: view.metadataCount)
        for series in view.series {
            decoded.series.append(.init(labels: view.labels(of: series).flatMap { [Array(body[$0.name.range]), Array(body[$0.value.range])] },
                                        rejection: series.rejection?.rawValue, samples: Array(view.samples(of: series)),
                                        histograms: view.histograms(of: series).map { DecodedHistogram(view, $0) }))
        }
        return decoded
    }

    /// Whether protobuf-c reads `body` at all (nil when it refuses).
    static func protobufCAccepts(_ body: [UInt8]) -> Bool? { protobufCRequestV2.withUnpacked(body) { _ in true } }

    /// What protobuf-c reads, then the spec's rules: no field 1-3 (reserved), every reference inside the symbols,
    /// label references in pairs, `symbols[0]` empty once anything refers to the table; per series,
    /// the first pair with an empty value or a name not after the previous one refuses it. With
    /// `validatingHistograms`, a histogram Prometheus' rules refuse makes the request nil too.
    static func oracle(_ body: [UInt8], validatingHistograms: Bool = true) -> DecodedV2? {
        let decoded = protobufCRequestV2.withUnpacked(body) { request -> DecodedV2? in
            // Fields 1-3 are reserved (1.0's): Tally refuses a 1.0 body sent as 2.0.
            guard !protobufCUnknownFields(request.base.n_unknown_fields, request.base.unknown_fields).contains(where: { (1...3).contains($0.tag) }) else { return nil }
            let symbols = (0..<request.n_symbols).map { protobufCBytes(request.symbols[$0]) }
            func resolve(_ ref: UInt32) -> [UInt8]? {
                guard Int(ref) < symbols.count, symbols[0].isEmpty else { return nil }
                return symbols[Int(ref)]
            }
            var decoded = DecodedV2()
            for i in 0..<request.n_timeseries {
                let series = request.timeseries[i]!.pointee
                var read = DecodedV2.Series(histograms: (0..<series.n_histograms).map { DecodedHistogram(protobufC: series.histograms[$0]!.pointee) })
                for j in 0..<series.n_samples {
                    read.samples.append(WireSample(timestamp: series.samples[j]!.pointee.timestamp, valueBits: series.samples[j]!.pointee.value.bitPattern))
                }
                for j in 0..<series.n_exemplars {
                    let exemplar = series.exemplars[j]!.pointee
                    guard exemplar.n_labels_refs % 2 == 0 else { return nil }
                    var labels: [[UInt8]] = []
                    for r in 0..<exemplar.n_labels_refs {
                        guard let symbol = resolve(exemplar.labels_refs[r]) else { return nil }
                        labels.append(symbol)
                    }
                    decoded.exemplars.append(DecodedExemplar(labels: labels, value: exemplar.value.bitPattern, timestamp: exemplar.timestamp))
                }
                if let metadata = series.metadata?.pointee {
                    guard resolve(metadata.help_ref) != nil, resolve(metadata.unit_ref) != nil else { return nil }
                    decoded.metadata += 1
                }
                guard series.n_labels_refs % 2 == 0 else { return nil }
                for pair in stride(from: 0, to: series.n_labels_refs, by: 2) {
                    guard let name = resolve(series.labels_refs[pair]), let value = resolve(series.labels_refs[pair + 1]) else { return nil }
                    if read.rejection == nil {
                        if name.isEmpty {
                            read.rejection = SeriesRejection.emptyLabelName.rawValue
                        } else if value.isEmpty {
                            read.rejection = SeriesRejection.emptyLabelValue.rawValue
                        } else if let previous = read.labels.dropLast().last, name.lexicographicallyPrecedes(previous) {
                            read.rejection = SeriesRejection.unsortedLabels.rawValue
                        }
                    }
                    read.labels += [name, value]
                }
                decoded.series.append(read)
            }
            return decoded
        } ?? nil
        guard validatingHistograms, let decoded else { return decoded }
        return HistogramRequestVerdict(decoded.series.map(\.histograms)) == .accepted ? decoded : nil
    }
}

/// Remote-Write 2.0 bodies in the layouts protobuf allows (fields in any order, references packed or
/// not, unknown fields, symbols before or after the series), mostly valid, some breaking one rule:
/// an unsorted or empty label, a reference past the table, an odd reference count, a first symbol
/// that is not empty.
struct V2RequestGenerator {
    private var random: SeededGenerator

    init(test: String) { random = SeededGenerator(test: test, fixedSeed: 20_261_201) }

    private mutating func count(_ max: Int) -> Int { Int.random(in: 0...max, using: &random) }
    private mutating func chance(_ oneIn: Int) -> Bool { Int.random(in: 0..<oneIn, using: &random) == 0 }

    /// A repeated uint32 field, packed into one field or one field per value.
    private static func refsField(_ w: inout ProtobufWriter, _ field: UInt64, _ refs: [UInt64], packed: Bool) {
        guard !refs.isEmpty else { return }
        if packed {
            var packed = ProtobufWriter()
            for ref in refs { packed.varint(ref) }
            w.bytesField(field, packed.bytes)
        } else {
            for ref in refs { w.varintField(field, ref) }
        }
    }

    mutating func request() -> [UInt8] {
        let names = ["__name__", "cluster_id", "container", "namespace", "node", "pod"]
        var symbols: [String] = chance(40) ? ["not-empty"] : [""]
        var index: [String: UInt64] = [:]
        func symbol(_ s: String) -> UInt64 {
            if let known = index[s] { return known }
            index[s] = UInt64(symbols.count)
            symbols.append(s)
            return UInt64(symbols.count - 1)
        }
        if symbols[0].isEmpty { index[""] = 0 }
        var series: [[UInt8]] = []
        for k in 0..<count(4) {
            var labelNames = Array(names.shuffled(using: &random).prefix(1 + count(4)))
            if !chance(20) { labelNames.sort() }
            var refs: [UInt64] = []
            for name in labelNames {
                refs.append(symbol(name))
                refs.append(chance(30) ? symbol("") : symbol("\(name)-\(count(3))"))
            }
            if chance(40) { refs.append(UInt64(symbols.count + count(3))) }
            if chance(40), !refs.isEmpty { refs.removeLast() }
            var s = ProtobufWriter()
            var parts: [(inout ProtobufWriter) -> Void] = []
            let labelRefs = refs, packLabels = chance(2)
            parts.append { w in Self.refsField(&w, 1, labelRefs, packed: packLabels) }
            for _ in 0..<count(3) {
                let value = random.next(), timestamp = UInt64(bitPattern: 1_700_000_000_000 + Int64(k) + Int64(count(1000)))
                parts.append { w in w.messageField(2) { $0.fixed64Field(1, value); $0.varintField(2, timestamp) } }
            }
            if chance(6) {
                let exemplarRefs = [symbol("trace_id"), symbol("abc\(count(9))")] + (chance(20) ? [UInt64(symbols.count + 5)] : [])
                let packed = chance(2)
                parts.append { w in
                    w.messageField(4) { e in
                        Self.refsField(&e, 1, exemplarRefs, packed: packed)
                        e.fixed64Field(2, 0x3ff0_0000_0000_0000)
                        e.varintField(3, 1_700_000_000_000)
                    }
                }
            }
            if chance(6) {
                let help = chance(20) ? UInt64(symbols.count + 9) : symbol("help text"), unit = chance(2) ? 0 : symbol("bytes")
                let type = UInt64(count(7))
                parts.append { w in w.messageField(5) { m in m.varintField(1, type); m.varintField(3, help); if unit != 0 { m.varintField(4, unit) } } }
            }
            for _ in 0..<(chance(5) ? 1 + count(1) : 0) {
                var histogram = ProtobufWriter()
                _ = HistogramWriter.write(&histogram, field: 3, &random)
                let bytes = histogram.bytes
                parts.append { w in w.bytes += bytes }
            }
            if chance(8) { parts.append { w in w.varintField(6, 1_699_999_000_000) } }
            if chance(10) { parts.append { w in w.bytesField(31, Array("unknown".utf8)) } }
            if chance(3) { parts.shuffle(using: &random) }
            for write in parts { write(&s) }
            series.append(s.bytes)
        }
        var w = ProtobufWriter()
        let symbolsFirst = !chance(4)
        if !symbolsFirst { for s in series { w.bytesField(5, s) } }
        for s in symbols { w.bytesField(4, Array(s.utf8)) }
        if symbolsFirst { for s in series { w.bytesField(5, s) } }
        return w.bytes
    }
}
