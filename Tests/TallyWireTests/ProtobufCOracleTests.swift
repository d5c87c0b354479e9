import RemoteWriteProtobufC
import TallyTestSupport
import TallyWire
import XCTest

/// The hand-written Remote-Write 1.0 decoder held to libprotobuf-c, an implementation written by
/// other people from the same `proto/` files: on generated requests in every legal layout, and on
/// mutations of them, both accept or both reject, and what they accept reads the same.
final class ProtobufCOracleTests: XCTestCase {
    /// Mutated requests per run; `TALLY_ORACLE_MUTATIONS` sets a longer run.
    static let mutations = Int(ProcessInfo.processInfo.environment["TALLY_ORACLE_MUTATIONS"] ?? "") ?? 100_000

    func testGeneratedRequestsInEveryLegalLayoutDecodeAsProtobufCDecodesThem() throws {
        var generator = RequestGenerator(test: "ProtobufCOracleTests generated")
        var verdicts: [HistogramRequestVerdict: Int] = [:]
        for k in 0..<5_000 {
            let (body, expected) = generator.request()
            let ours = OracleDecoding.tally(body), theirs = OracleDecoding.protobufC(body)
            XCTAssertEqual(theirs, expected, "request \(k): protobuf-c reads the generator's request differently: \(body)")
            XCTAssertEqual(ours, expected, "request \(k): \(body)")
            if ours != expected { return }
            // With Prometheus' histogram rules applied: the same verdict from Tally and the oracle.
            let verdict = HistogramRequestVerdict(expected.series.map(\.histograms))
            XCTAssertEqual(HistogramRequestVerdict(tally: { () throws(WireError) in _ = try RemoteWriteDecoder.decode(body: body) }), verdict,
                           "request \(k): \(expected)")
            if !expected.series.allSatisfy({ $0.histograms.isEmpty }) { verdicts[verdict, default: 0] += 1 }
        }
        print("ProtobufCOracleTests: requests with histograms by verdict: \(verdicts)")
        HistogramRequestVerdict.assertExercised(verdicts)
    }

    func testMutatedRequestsGetTheSameVerdictAndContentFromBothDecoders() throws {
        var generator = RequestGenerator(test: "ProtobufCOracleTests mutated")
        let accepted = Self.compareOnMutations("ProtobufCOracleTests", body: {
            var body = generator.request().body
            generator.mutate(&body)
            return body
        }, tally: { OracleDecoding.tally($0, validatingHistograms: true) }, oracle: { OracleDecoding.protobufC($0, validatingHistograms: true) }) { body throws(WireError) in
            _ = try RemoteWriteDecoder.decode(body: body, validatingLabels: false)
        }
        XCTAssertLessThan(accepted, Self.mutations * 19 / 20, "enough mutations are invalid to compare refusals")
    }

    /// Decodes `mutations` bodies with Tally and with the oracle and requires the same answer from
    /// both, apart from the one difference on purpose (`refusesFieldZero`), which is counted; returns
    /// how many Tally accepted, after checking that enough were to compare contents.
    static func compareOnMutations<Decoded: Equatable>(_ name: String, body: () -> [UInt8], tally: ([UInt8]) -> Decoded?,
                                                       oracle: ([UInt8]) -> Decoded?, decode: ([UInt8]) throws(WireError) -> Void,
                                                       file: StaticString = #filePath, line: UInt = #line) -> Int {
        var accepted = 0, fieldZero = 0, disagreements: [String] = []
        for k in 0..<mutations {
            let body = body()
            let ours = tally(body), expected = oracle(body)
            if ours != nil { accepted += 1 }
            if ours == nil, expected != nil, OracleDecoding.refusesFieldZero({ () throws(WireError) in try decode(body) }) {
                fieldZero += 1
                continue
            }
            if ours != expected, disagreements.count < 5 {
                disagreements.append("mutation \(k): tally \(ours.map { "\($0)" } ?? "refuses"), oracle \(expected.map { "\($0)" } ?? "refuses"); body \(body)")
            }
        }
        print("\(name): \(mutations) mutated requests, \(accepted) accepted by both, \(fieldZero) with a field number 0 refused by Tally only")
        XCTAssertEqual(disagreements, [], file: file, line: line)
        XCTAssertGreaterThan(accepted, mutations / 20, "enough mutations stay valid to compare contents", file: file, line: line)
        return accepted
    }

    /// Both directions of encoding: protobuf-c re-encodes what it read (its canonical layout), and
    /// Tally's encoder writes what senders write; each decoder reads the other's bytes alike.
    func testEachSideReadsTheOthersEncoding() throws {
        var generator = RequestGenerator(test: "ProtobufCOracleTests encoders")
        for k in 0..<2_000 {
            // Not compared with the original: protobuf-c leaves out a -0.0 value as if it were the
            // default 0, so its encoding can differ from what it read.
            let repacked = try XCTUnwrap(protobufCWriteRequest.repacked(generator.request().body), "request \(k)")
            XCTAssertEqual(OracleDecoding.tally(repacked), try XCTUnwrap(OracleDecoding.protobufC(repacked)), "request \(k) as protobuf-c encodes it")
        }
        for k in 0..<2_000 {
            var encoder = WriteRequestEncoder()
            var expected = DecodedRequest()
            for _ in 0..<generator.count(4) {
                let labels = (0..<generator.count(4)).map { _ in (generator.text(), generator.text()) }
                let samples = (0..<generator.count(6)).map { _ in generator.sample() }
                encoder.addSeries(labels: labels, samples: samples)
                expected.series.append(.init(labels: labels.flatMap { [Array($0.0.utf8), Array($0.1.utf8)] }, samples: samples))
            }
            XCTAssertEqual(OracleDecoding.protobufC(encoder.writer.bytes), expected, "request \(k) as Tally encodes it")
        }
    }
}

/// What a decoder made of a body, in terms both decoders give: per series the labels in arrival
/// order (name, value, name, value, ...), the samples and the histograms; per request the
/// exemplar and metadata counts.
struct DecodedRequest: Equatable, CustomStringConvertible {
    struct Series: Equatable {
        var labels: [[UInt8]] = []
        var samples: [WireSample] = []
        var histograms: [DecodedHistogram] = []
    }

    var series: [Series] = []
    var exemplars: [DecodedExemplar] = []
    var metadata = 0

    var description: String {
        let each = series.map { s in
            "{\(s.labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",")) | \(s.samples.map { "\($0.timestamp)=\(String($0.valueBits, radix: 16))" }.joined(separator: " ")) | \(s.histograms)}"
        }
        return "\(each.joined(separator: " ").prefix(2000)) exemplars \(exemplars.count) metadata \(metadata)"
    }
}

/// An exemplar as a decoder read it: labels in arrival order (name, value, ...), value bits, timestamp.
struct DecodedExemplar: Equatable {
    var labels: [[UInt8]]
    var value: UInt64
    var timestamp: Int64

    /// Tally's reading of every exemplar of `view`, series by series.
    static func all(_ view: WriteRequestView, _ body: [UInt8]) -> [DecodedExemplar] {
        view.series.flatMap { view.exemplars(of: $0) }.map { e in
            DecodedExemplar(labels: view.labels(of: e).flatMap { [Array(body[$0.name.range]), Array(body[$0.value.range])] },
                            value: e.valueBits, timestamp: e.timestamp)
        }
    }
}

enum OracleDecoding {
    /// Without `validatingHistograms` histograms are compared as read, whatever rule they break.
    static func tally(_ body: [UInt8], validatingHistograms: Bool = false) -> DecodedRequest? {
        guard let view = try? RemoteWriteDecoder.decode(body: body, validatingLabels: false, validatingHistograms: validatingHistograms) else { return nil }
        var decoded = DecodedRequest(exemplars: DecodedExemplar.all(view, body), metadata: view.metadataCount)
        for series in view.series {
            decoded.series.append(.init(labels: view.labels(of: series).flatMap { [Array(body[$0.name.range]), Array(body[$0.value.range])] },
                                        samples: Array(view.samples(of: series)), histograms: view.histograms(of: series).map { DecodedHistogram(view, $0) }))
        }
        return decoded
    }

    /// The one difference from protobuf-c on purpose: field number 0 is invalid in protobuf and
    /// Prometheus' decoder refuses it, while protobuf-c refuses it only in a one-byte key.
    static func refusesFieldZero(_ decode: () throws(WireError) -> Void) -> Bool {
        do throws(WireError) {
            try decode()
            return false
        } catch {
            return error == .invalidProtobuf("field number 0")
        }
    }

    /// With `validatingHistograms`, nil also for a request with a histogram Prometheus' rules refuse.
    static func protobufC(_ body: [UInt8], validatingHistograms: Bool = false) -> DecodedRequest? {
        let decoded = protobufCWriteRequest.withUnpacked(body) { request -> DecodedRequest? in
            // Tally's rule past protobuf's: 2.0's symbols and series (4, 5) make a 1.0 body a mistake.
            guard !protobufCUnknownFields(request.base.n_unknown_fields, request.base.unknown_fields).contains(where: { [4, 5].contains($0.tag) && $0.lengthDelimited }) else { return nil }
            var decoded = DecodedRequest(metadata: request.n_metadata)
            for i in 0..<request.n_timeseries {
                let series = request.timeseries[i]!.pointee
                var read = DecodedRequest.Series(histograms: (0..<series.n_histograms).map { DecodedHistogram(protobufC: series.histograms[$0]!.pointee) })
                for j in 0..<series.n_labels {
                    read.labels += [protobufCBytes(series.labels[j]!.pointee.name), protobufCBytes(series.labels[j]!.pointee.value)]
                }
                for j in 0..<series.n_samples {
                    read.samples.append(WireSample(timestamp: series.samples[j]!.pointee.timestamp, valueBits: series.samples[j]!.pointee.value.bitPattern))
                }
                decoded.exemplars += (0..<series.n_exemplars).map { j in
                    let e = series.exemplars[j]!.pointee
                    return DecodedExemplar(labels: (0..<e.n_labels).flatMap { [protobufCBytes(e.labels[$0]!.pointee.name), protobufCBytes(e.labels[$0]!.pointee.value)] },
                                           value: e.value.bitPattern, timestamp: e.timestamp)
                }
                decoded.series.append(read)
            }
            return decoded
        } ?? nil
        guard validatingHistograms, let decoded else { return decoded }
        return HistogramRequestVerdict(decoded.series.map(\.histograms)) == .accepted ? decoded : nil
    }
}

/// Remote-Write 1.0 bodies in every layout protobuf allows: fields in any order, repeated where the
/// schema allows, defaults left out or written, unknown fields of every wire type at every level,
/// packed and unpacked repeated scalars; with the content each must decode to. And mutations of them.
struct RequestGenerator {
    private var random: SeededGenerator

    /// A fixed seed: `make test` covers the same requests every run (`TALLY_TEST_SEED` picks others).
    init(test: String) { random = SeededGenerator(test: test, fixedSeed: 20_261_201) }

    mutating func count(_ max: Int) -> Int { Int.random(in: 0...max, using: &random) }
    private mutating func chance(_ oneIn: Int) -> Bool { Int.random(in: 0..<oneIn, using: &random) == 0 }

    /// Label-like text, sometimes with multi-byte characters, never NUL.
    mutating func text() -> String {
        let alphabet = Array("abcxyz_:019 ={}\"\\é☃")
        return String((0..<count(10)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &random)] })
    }

    mutating func sample() -> WireSample {
        let timestamps: [Int64] = [0, 1, -1, .max, .min, 1_700_000_000_000]
        let timestamp = chance(3) ? timestamps[count(timestamps.count - 1)] : Int64.random(in: -1 << 50...1 << 50, using: &random)
        let values: [UInt64] = [0, 0x7ff0_0000_0000_0002, Double.nan.bitPattern, (-0.0).bitPattern, Double.infinity.bitPattern]
        return WireSample(timestamp: timestamp, valueBits: chance(3) ? values[count(values.count - 1)] : random.next())
    }

    /// An unknown field (numbers past the schema's) of a random wire type.
    private mutating func unknownField(_ w: inout ProtobufWriter) {
        let field = chance(4) ? UInt64.random(in: 17...(1 << 29) - 1, using: &random) : UInt64.random(in: 17...40, using: &random)
        switch count(3) {
        case 0: w.varintField(field, random.next() >> UInt64(count(63)))
        case 1: w.fixed64Field(field, random.next())
        case 2: w.bytesField(field, Array(text().utf8))
        default:
            w.key(field, 5)
            w.bytes += (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
    }

    /// Writes `fields` in a random order, with unknown fields between them.
    private mutating func shuffled(_ w: inout ProtobufWriter, _ fields: [(inout ProtobufWriter) -> Void]) {
        for write in fields.shuffled(using: &random) {
            if chance(8) { unknownField(&w) }
            write(&w)
        }
        if chance(8) { unknownField(&w) }
    }

    /// A string field, left out when empty unless the layout writes the default.
    private mutating func stringField(_ w: inout ProtobufWriter, _ field: UInt64, _ value: [UInt8]) {
        if !value.isEmpty || chance(2) { w.bytesField(field, value) }
    }

    private mutating func label(_ w: inout ProtobufWriter) -> [[UInt8]] {
        let name = Array(text().utf8), value = Array(text().utf8)
        let stale = Array(text().utf8)
        let repeatsName = chance(10)
        w.messageField(1) { label in
            var fields: [(inout ProtobufWriter) -> Void] = [
                { $0.bytesField(1, name) }, { $0.bytesField(2, value) }]
            // A repeated scalar field: the last one counts, wherever it is.
            if repeatsName { fields = [{ $0.bytesField(1, stale) }, { $0.bytesField(2, value) }, { $0.bytesField(1, name) }] }
            for write in fields {
                if chance(10) { unknownField(&label) }
                write(&label)
            }
        }
        return [name, value]
    }

    private mutating func sampleField(_ w: inout ProtobufWriter) -> WireSample {
        let sample = sample()
        let writeValue = sample.valueBits != 0 || chance(2), writeTimestamp = sample.timestamp != 0 || chance(2)
        var fields: [(inout ProtobufWriter) -> Void] = []
        if writeValue { fields.append { $0.fixed64Field(1, sample.valueBits) } }
        if writeTimestamp { fields.append { $0.varintField(2, UInt64(bitPattern: sample.timestamp)) } }
        if writeTimestamp && chance(10) { fields.insert({ $0.varintField(2, 12345) }, at: 0) }  // overridden by the later timestamp
        if chance(10) && !writeTimestamp { fields.append { $0.varintField(2, 0) } }
        w.messageField(2) { s in for write in fields { write(&s) } }
        return sample
    }

    private mutating func histogram(_ w: inout ProtobufWriter) -> DecodedHistogram {
        HistogramWriter.write(&w, field: 4, &random)
    }

    private mutating func exemplar(_ w: inout ProtobufWriter) -> DecodedExemplar {
        var e = ProtobufWriter()
        var labels: [[UInt8]] = []
        for _ in 0..<count(2) { labels += label(&e) }
        let value = random.next(), timestamp = random.next()
        shuffled(&e, [{ $0.fixed64Field(2, value) }, { $0.varintField(3, timestamp) }])
        w.bytesField(3, e.bytes)
        return DecodedExemplar(labels: labels, value: value, timestamp: Int64(bitPattern: timestamp))
    }

    private mutating func metadata(_ w: inout ProtobufWriter) {
        let type = UInt64(count(8)), name = Array(text().utf8), help = Array(text().utf8), unit = Array(text().utf8)
        var m = ProtobufWriter()
        shuffled(&m, [{ $0.varintField(1, type) }, { $0.bytesField(2, name) }, { $0.bytesField(4, help) }, { $0.bytesField(5, unit) }])
        w.bytesField(3, m.bytes)
    }

    mutating func request() -> (body: [UInt8], expected: DecodedRequest) {
        var w = ProtobufWriter()
        var expected = DecodedRequest()
        for _ in 0..<count(4) {
            var parts: [Int] = []
            parts += Array(repeating: 0, count: count(5))
            parts += Array(repeating: 1, count: count(6))
            if chance(4) { parts += Array(repeating: 2, count: count(2)) }
            if chance(4) { parts += Array(repeating: 3, count: count(2)) }
            // Prometheus writes labels, then samples; any order is legal, and arrival order is kept.
            if chance(3) { parts.shuffle(using: &random) }
            var series = DecodedRequest.Series()
            var s = ProtobufWriter()
            for part in parts {
                if chance(12) { unknownField(&s) }
                switch part {
                case 0: series.labels += label(&s)
                case 1: series.samples.append(sampleField(&s))
                case 2:
                    expected.exemplars.append(exemplar(&s))
                default:
                    series.histograms.append(histogram(&s))
                }
            }
            w.bytesField(1, s.bytes)
            expected.series.append(series)
            if chance(6) { unknownField(&w) }
            if chance(6) {
                metadata(&w)
                expected.metadata += 1
            }
        }
        return (w.bytes, expected)
    }

    /// One to three random changes: bit flips, bytes set, truncation, deletion, insertion,
    /// duplicated ranges, lengths off by one.
    mutating func mutate(_ body: inout [UInt8]) {
        for _ in 0...count(2) {
            guard !body.isEmpty else {
                body = (0..<count(8)).map { _ in UInt8.random(in: 0...255, using: &random) }
                return
            }
            let at = Int.random(in: 0..<body.count, using: &random)
            switch count(6) {
            case 0: body[at] ^= 1 << UInt8(count(7))
            case 1: body[at] = UInt8.random(in: 0...255, using: &random)
            case 2: body.removeSubrange(at...)
            case 3: body.removeSubrange(at..<min(body.count, at + 1 + count(8)))
            case 4: body.insert(contentsOf: (0..<1 + count(4)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: at)
            case 5:
                let copied = Array(body[at..<min(body.count, at + 1 + count(16))])
                body.insert(contentsOf: copied, at: Int.random(in: 0...body.count, using: &random))
            default: body[at] = chance(2) ? body[at] &+ 1 : body[at] &- 1
            }
        }
    }
}
