import TallyWire
import XCTest

/// Native histograms read in place and checked against Prometheus' rules, in both wire versions.
final class HistogramDecodingTests: XCTestCase {
    /// A histogram message built field by field (proto field numbers of `prometheus.Histogram`).
    struct Histogram {
        var countInt: UInt64? = nil
        var countFloat: Double? = nil
        var sum = 0.0
        var schema: Int32 = 0
        var zeroCountInt: UInt64? = nil
        var zeroCountFloat: Double? = nil
        var negativeSpans: [(Int32, UInt32)] = []
        var negativeDeltas: [Int64] = []
        var positiveSpans: [(Int32, UInt32)] = []
        var positiveDeltas: [Int64] = []
        var positiveCounts: [Double] = []
        var customValues: [Double] = []
        var timestamp: Int64 = 1_700_000_000_000

        func write(_ w: inout ProtobufWriter, field: UInt64) {
            func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
            w.messageField(field) { h in
                if let countInt { h.varintField(1, countInt) }
                if let countFloat { h.fixed64Field(2, countFloat.bitPattern) }
                h.fixed64Field(3, sum.bitPattern)
                h.varintField(4, UInt64(UInt32(bitPattern: (schema << 1) ^ (schema >> 31))))
                if let zeroCountInt { h.varintField(6, zeroCountInt) }
                if let zeroCountFloat { h.fixed64Field(7, zeroCountFloat.bitPattern) }
                for (number, spans) in [(UInt64(8), negativeSpans), (11, positiveSpans)] {
                    for (offset, length) in spans {
                        h.messageField(number) { s in
                            s.varintField(1, UInt64(UInt32(bitPattern: (offset << 1) ^ (offset >> 31))))
                            s.varintField(2, UInt64(length))
                        }
                    }
                }
                var packed = ProtobufWriter()
                for d in negativeDeltas { packed.varint(zigzag(d)) }
                if !negativeDeltas.isEmpty { h.bytesField(9, packed.bytes) }
                for d in positiveDeltas { h.varintField(12, zigzag(d)) }
                for c in positiveCounts { h.fixed64Field(13, c.bitPattern) }
                for c in customValues { h.fixed64Field(16, c.bitPattern) }
                h.varintField(15, UInt64(bitPattern: timestamp))
            }
        }
    }

    static func v1(_ histogram: Histogram) -> [UInt8] {
        var w = ProtobufWriter()
        w.messageField(1) { ts in
            ts.messageField(1) { l in l.bytesField(1, Array("__name__".utf8)); l.bytesField(2, Array("h".utf8)) }
            histogram.write(&ts, field: 4)
        }
        return w.bytes
    }

    static func v2(_ histogram: Histogram) -> [UInt8] {
        var w = ProtobufWriter()
        for s in ["", "__name__", "h"] { w.bytesField(4, Array(s.utf8)) }
        w.messageField(5) { ts in
            ts.bytesField(1, [1, 2])
            histogram.write(&ts, field: 3)
        }
        return w.bytes
    }

    /// The error both versions give, or nil when both take the histogram.
    func refusal(_ histogram: Histogram, file: StaticString = #filePath, line: UInt = #line) -> WireError? {
        func outcome(_ decode: () throws(WireError) -> WriteRequestView) -> WireError? {
            do throws(WireError) {
                _ = try decode()
                return nil
            } catch { return error }
        }
        let one = outcome { () throws(WireError) in try RemoteWriteDecoder.decode(body: Self.v1(histogram)) }
        let two = outcome { () throws(WireError) in try RemoteWriteV2Decoder.decode(body: Self.v2(histogram)) }
        XCTAssertEqual(one, two, "1.0 and 2.0 agree", file: file, line: line)
        return one
    }

    func assertInvalid(_ histogram: Histogram, _ reason: String, file: StaticString = #filePath, line: UInt = #line) {
        guard case let .invalidHistogram(why) = refusal(histogram, file: file, line: line) else {
            return XCTFail("not refused as an invalid histogram: \(String(describing: refusal(histogram)))", file: file, line: line)
        }
        XCTAssertTrue(why.contains(reason), why, file: file, line: line)
        XCTAssertTrue(why.hasPrefix("series 0 {__name__=\"h\"}, histogram at 1700000000000: "), why, file: file, line: line)
    }

    /// A valid integer histogram: 2 + 3 + 1 observations in buckets, 4 in the zero bucket.
    static let valid = Histogram(countInt: 10, sum: 12.5, schema: 3, zeroCountInt: 4,
                                 negativeSpans: [(-2, 1)], negativeDeltas: [2],
                                 positiveSpans: [(0, 1), (2, 1)], positiveDeltas: [3, -2])

    func testAValidIntegerHistogramReadsBackFieldByField() throws {
        for view in [try RemoteWriteDecoder.decode(body: Self.v1(Self.valid)), try RemoteWriteV2Decoder.decode(body: Self.v2(Self.valid))] {
            XCTAssertEqual(view.histogramCount, 1)
            let h = try XCTUnwrap(view.histograms(of: view.series[0]).first)
            XCTAssertFalse(h.isFloat)
            XCTAssertEqual(h.countInt, 10)
            XCTAssertEqual(h.zeroCountInt, 4)
            XCTAssertEqual(h.schema, 3)
            XCTAssertEqual(h.sum, 12.5)
            XCTAssertEqual(h.timestamp, 1_700_000_000_000)
            var spans: [String] = [], deltas: [Int64] = []
            view.forEachSpan(of: h, .negative) { spans.append("n\($0):\($1)") }
            view.forEachSpan(of: h, .positive) { spans.append("p\($0):\($1)") }
            view.forEachDelta(of: h, .negative) { deltas.append($0) }
            view.forEachDelta(of: h, .positive) { deltas.append($0) }
            XCTAssertEqual(spans, ["n-2:1", "p0:1", "p2:1"])
            XCTAssertEqual(deltas, [2, 3, -2])
        }
    }

    func testSpansMustCoverTheBucketsAndOnlyTheFirstMayHaveANegativeOffset() {
        var h = Self.valid
        h.positiveSpans = [(0, 1), (2, 2)]
        assertInvalid(h, "positive side: spans need 3 buckets, have 2 buckets")
        h = Self.valid
        h.positiveSpans = [(0, 1), (-1, 1)]
        assertInvalid(h, "positive side: span number 2 with offset -1: histogram has a span whose offset is negative")
        // Lengths near UInt32.max add up without trapping.
        h.positiveSpans = Array(repeating: (0, UInt32.max), count: 5)
        assertInvalid(h, "spans need 21474836475 buckets, have 2 buckets")
    }

    func testSchemaOutsideMinus4To8IsRefusedAndCustomBucketsAreNotSupported() {
        for schema: Int32 in [-5, 9, 52, .min, .max] {
            var h = Self.valid
            h.schema = schema
            assertInvalid(h, "got schema \(schema)")
        }
        for schema: Int32 in [-4, 8] {
            var h = Self.valid
            h.schema = schema
            XCTAssertNil(refusal(h))
        }
        var custom = Histogram(countInt: 1, schema: -53, positiveSpans: [(0, 1)], positiveDeltas: [1], customValues: [0.5])
        custom.sum = 0.25
        XCTAssertEqual(refusal(custom), .histogramCustomBuckets("series 0 {__name__=\"h\"}, histogram at 1700000000000"))
        XCTAssertTrue(WireError.histogramCustomBuckets("x").description.hasPrefix("custom buckets not supported"))
        var exponential = Self.valid
        exponential.customValues = [1]
        assertInvalid(exponential, "histogram with exponential schema must not have custom bounds")
    }

    func testBucketCountsMayNotGoNegativeNorOverflow() {
        var h = Self.valid
        h.positiveDeltas = [3, -4]
        assertInvalid(h, "positive side: bucket number 2 has observation count of -1")
        h.positiveDeltas = [.max, 1]
        assertInvalid(h, "positive side: bucket number 2: the running sum of the deltas overflows int64")
        // Two buckets of Int64.max and more: the total passes UInt64, beyond any count.
        h.positiveSpans = [(0, 3)]
        h.positiveDeltas = [.max, 0, 0]
        h.countInt = .max
        assertInvalid(h, "more than 18446744073709551615 observations found in buckets, but the Count field is 18446744073709551615")
    }

    func testTheCountMustMatchTheBucketsUnlessTheSumIsNaN() {
        var h = Self.valid
        h.countInt = 9
        assertInvalid(h, "10 observations found in buckets, but the Count field is 9: histogram's observation count should equal")
        h.countInt = 11
        assertInvalid(h, "10 observations found in buckets, but the Count field is 11: histogram's observation count should equal")
        // A NaN observation counts but lands in no bucket, and makes the sum NaN.
        h.sum = .nan
        XCTAssertNil(refusal(h))
        h.countInt = 9
        assertInvalid(h, "should be at least the number of observations found in the buckets")
        // The zero count of the other kind (zero_count_float on an integer histogram) counts 0.
        h = Self.valid
        h.zeroCountInt = nil
        h.zeroCountFloat = 4
        assertInvalid(h, "6 observations found in buckets, but the Count field is 10")
    }

    func testFloatHistogramsRefuseNegativeCountsAndTakeNaN() {
        var h = Histogram(countFloat: 5.5, sum: 3, zeroCountFloat: 0.5, positiveSpans: [(1, 2)], positiveCounts: [2, 3])
        XCTAssertNil(refusal(h))
        // Prometheus does not compare a float histogram's count with its buckets.
        h.countFloat = 1
        XCTAssertNil(refusal(h))
        h.positiveCounts = [.nan, 3]
        XCTAssertNil(refusal(h), "NaN is not below 0")
        h.positiveCounts = [2, -0.5]
        assertInvalid(h, "positive side: bucket number 2 has observation count of -0.5")
        h.positiveCounts = [2, 3]
        h.zeroCountFloat = -1
        assertInvalid(h, "zero bucket has observation count of -1.0")
        h.zeroCountFloat = 0
        h.countFloat = -1
        assertInvalid(h, "observation count is -1.0: histogram's observation count is negative")
        // A float histogram's buckets are its counts: deltas beside them are not counted.
        h.countFloat = 5
        h.positiveDeltas = [1, 1, 1]
        XCTAssertNil(refusal(h))
    }
}
