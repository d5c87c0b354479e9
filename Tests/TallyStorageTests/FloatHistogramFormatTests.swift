import TallyTestSupport
import XCTest
@testable import TallyStorage

/// The float-histogram chunk (encoding 3) and the WAL's FloatHistogramSamples record (type 8),
/// against bytes derived by hand from Prometheus 2.42's `float_histogram.go` and `record.go`.
final class FloatHistogramFormatTests: XCTestCase {
    private func hex(_ s: String) -> [UInt8] {
        let digits = Array(s.filter(\.isHexDigit))
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    /// Schema 0, no zero threshold, one positive bucket (index 0).
    private func floatHistogram(count: Double, sum: Double, bucket: Double) -> FloatHistogram {
        var h = FloatHistogram()
        h.count = count
        h.sumBits = sum.bitPattern
        h.positiveSpans = [HistogramSpan(offset: 0, length: 1)]
        h.positiveBuckets = [bucket]
        return h
    }

    /// {count 1, sum 1, [1]} at 1000 and {count 2, sum 3, [2]} at 2000, bit by bit:
    /// - `0002 00`: two samples, header unknown;
    /// - layout: threshold byte 00, schema `0`, one positive span `10 001`, its length `10 001` and
    ///   offset `0`, no negative spans `0`;
    /// - t = 1000 as a 12-bit varbit `11110 001111101000`, then the 64 bits of 1.0, 0.0, 1.0, 1.0;
    /// - t's double delta 1000 again; count 2.0 XOR 1.0 = 0x7ff0...: `1 1 00001 001011` and 11 ones;
    ///   zero count unchanged `0`; sum 3.0 XOR 1.0 = 0x7ff8...: `1 1 00001 001100` and 12 ones;
    ///   the bucket as the count.
    static let chunkVector = "000200 0046278fa0ffc00000000000000000000000000000ffc0000000000000ffc0000000000003c7d184bffec267ffe12fff80"

    func testChunkMatchesHandDerivedBytes() {
        var chunk = FloatHistogramChunk()
        let first = floatHistogram(count: 1, sum: 1, bucket: 1), second = floatHistogram(count: 2, sum: 3, bucket: 2)
        chunk.append(timestamp: 1000, first)
        XCTAssertTrue(chunk.fits(second))
        chunk.append(timestamp: 2000, second)
        XCTAssertEqual(chunk.bytes, hex(Self.chunkVector))
        let bytes = hex(Self.chunkVector)
        bytes.withUnsafeBufferPointer { buffer in
            var it = FloatHistogramIterator(buffer)
            XCTAssertEqual(it.header, .unknown)
            XCTAssertEqual(it.next()?.histogram, first)
            let next = it.next()
            XCTAssertEqual(next?.timestamp, 2000)
            XCTAssertEqual(next?.histogram, second)
            XCTAssertNil(it.next())
            XCTAssertFalse(it.failed)
        }
        // Cut short anywhere, the iterator stops with `failed`, never traps.
        for end in 3..<bytes.count - 1 {
            Array(bytes[..<end]).withUnsafeBufferPointer { buffer in
                var it = FloatHistogramIterator(buffer)
                while it.next() != nil {}
                XCTAssertTrue(it.failed, "cut at \(end)")
            }
        }
        // A count claiming more buckets than the chunk can hold fails before allocating them.
        var huge = hex(Self.chunkVector)
        huge[5] = 0x7f
        huge.withUnsafeBufferPointer { buffer in
            var it = FloatHistogramIterator(buffer)
            while it.next() != nil {}
            XCTAssertTrue(it.failed)
        }
    }

    func testChunkRoundTripsWhateverTheValues() {
        var random = SeededGenerator(test: "float histogram chunk", fixedSeed: 7)
        for round in 0..<300 {
            var layout = FloatHistogram()
            layout.schema = Int32.random(in: -4...8, using: &random)
            layout.zeroThresholdBits = [0, 0.001.bitPattern, 0.5.bitPattern, 0x1p-200.bitPattern].randomElement(using: &random)!
            layout.positiveSpans = (0..<Int.random(in: 0...3, using: &random)).map { _ in HistogramSpan(offset: Int32.random(in: -5...5, using: &random), length: UInt32.random(in: 0...4, using: &random)) }
            layout.negativeSpans = (0..<Int.random(in: 0...2, using: &random)).map { _ in HistogramSpan(offset: Int32.random(in: -5...5, using: &random), length: UInt32.random(in: 0...4, using: &random)) }
            var chunk = FloatHistogramChunk(header: .notCounterReset)
            var written: [(Int64, FloatHistogram)] = []
            var t = Int64.random(in: -1 << 62...1 << 62, using: &random)
            for _ in 0..<Int.random(in: 1...40, using: &random) {
                func value() -> Double {
                    [Double(Int.random(in: 0...5, using: &random)), Double(bitPattern: random.next()), .nan, 0.1, -0.0, .infinity].randomElement(using: &random)!
                }
                var h = layout
                h.count = value()
                h.zeroCount = value()
                h.sumBits = random.next()
                h.positiveBuckets = (0..<HistogramLayout.buckets(h.positiveSpans)).map { _ in value() }
                h.negativeBuckets = (0..<HistogramLayout.buckets(h.negativeSpans)).map { _ in value() }
                if h.isStale { h.sumBits = 0 }
                t = t &+ Int64.random(in: -1 << 40...1 << 40, using: &random)
                XCTAssertTrue(chunk.fits(h))
                chunk.append(timestamp: t, h)
                written.append((t, h))
            }
            chunk.bytes.withUnsafeBufferPointer { buffer in
                var it = FloatHistogramIterator(buffer)
                XCTAssertEqual(it.header, .notCounterReset)
                var read: [(Int64, FloatHistogram)] = []
                while let (t, h) = it.next() { read.append((t, h)) }
                XCTAssertFalse(it.failed, "round \(round)")
                XCTAssertEqual(read.map(\.0), written.map(\.0), "round \(round)")
                XCTAssertEqual(read.map(\.1), written.map(\.1), "round \(round)")
            }
        }
    }

    func testStalenessMarkerKeepsTheBuckets() {
        var chunk = FloatHistogramChunk()
        chunk.append(timestamp: 1, floatHistogram(count: 1, sum: 1, bucket: 1))
        var stale = FloatHistogram()
        stale.sumBits = HistogramChunk.staleNaNBits
        XCTAssertTrue(chunk.fits(stale))
        chunk.append(timestamp: 2, stale)
        chunk.bytes.withUnsafeBufferPointer { buffer in
            var it = FloatHistogramIterator(buffer)
            _ = it.next()
            let marker = it.next()
            XCTAssertEqual(marker?.histogram.sumBits, HistogramChunk.staleNaNBits)
            XCTAssertEqual(marker?.histogram.positiveBuckets, [1])
            XCTAssertFalse(it.failed)
        }
        var other = floatHistogram(count: 1, sum: 1, bucket: 1)
        other.schema = 1
        XCTAssertFalse(chunk.fits(other), "another layout needs another chunk")
    }

    /// record.go's `FloatHistogramSamples`: type 8, base ref and time, then per sample the deltas,
    /// hint, schema, zero threshold, zero count, count and sum as float bits, spans, buckets.
    static let recordVector = """
        08 0000000000000001 00000000000003e8
        00 00 00 00 0000000000000000 0000000000000000 3ff0000000000000 3ff0000000000000 01 00 01 00 01 3ff0000000000000 00
        00 d00f 00 00 0000000000000000 0000000000000000 4000000000000000 4008000000000000 01 00 01 00 01 4000000000000000 00
        """

    func testRecordMatchesHandDerivedBytesAndRejectsCorruption() throws {
        let samples = [(ref: UInt64(1), timestamp: Int64(1000), histogram: floatHistogram(count: 1, sum: 1, bucket: 1)),
                       (ref: UInt64(1), timestamp: Int64(2000), histogram: floatHistogram(count: 2, sum: 3, bucket: 2))]
        var encoder = WALRecordEncoder()
        encoder.histogramSamples(samples)
        let bytes = hex(Self.recordVector)
        XCTAssertEqual(encoder.bytes, bytes)
        XCTAssertEqual(bytes.withUnsafeBytes { WALRecordDecoder($0).type }, WALRecordType.floatHistogramSamples.rawValue)
        func decode(_ bytes: [UInt8]) throws -> [(UInt64, Int64, FloatHistogram)] {
            var out: [(UInt64, Int64, FloatHistogram)] = []
            try bytes.withUnsafeBytes { raw in
                var decoder = WALRecordDecoder(raw)
                try decoder.forEachHistogramSample { (ref, t, h: FloatHistogram) in out.append((ref, t, h)) }
            }
            return out
        }
        let read = try decode(bytes)
        XCTAssertEqual(read.map(\.0), [1, 1])
        XCTAssertEqual(read.map(\.1), [1000, 2000])
        XCTAssertEqual(read.map(\.2), samples.map(\.histogram))
        // Cut anywhere inside a sample, the record is refused with a typed error, never a trap.
        for end in 18..<bytes.count where end != bytes.count - 51 {
            XCTAssertThrowsError(try decode(Array(bytes[..<end])), "cut at \(end)") { XCTAssertTrue($0 is WALRecordError) }
        }
        // A bucket count beyond the record.
        var long = bytes
        long[17 + 2 + 2 + 8 * 4 + 4] = 0x7f
        XCTAssertThrowsError(try decode(long)) { XCTAssertTrue("\($0)".contains("bucket count")) }
    }
}
