import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Byte layouts checked against vectors that promtool 2.42 produced (../shared/notes/prometheus-formats.md §10).
final class FormatVectorTests: XCTestCase {
    func hex(_ s: String) -> [UInt8] {
        let digits = Array(s.filter { !$0.isWhitespace && $0 != "|" })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    func testCRC32CCheckValue() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        // Long input exercises the slicing-by-8 path against the bytewise path.
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var split = CRC32C()
        split.update(Array(long[..<3]))
        split.update(Array(long[3...]))
        XCTAssertEqual(split.value, CRC32C.checksum(long))
    }

    func testXORChunkMatchesPromtoolBytes() {
        var chunk = XORChunk()
        for (t, v) in [(1_700_000_000_000, 1.0), (1_700_000_015_000, 1.0), (1_700_000_030_000, 0.0), (1_700_000_046_000, 1.0)] {
            chunk.append(timestamp: Int64(t), valueBits: v.bitPattern)
        }
        XCTAssertEqual(chunk.bytes, hex("0004 80a0abfef962 3ff0000000000000 9875 3115ffc1f45ff8"))
        // The chunk CRC in the segment covers the encoding byte and the data.
        XCTAssertEqual(CRC32C.checksum([XORChunk.encoding] + chunk.bytes), 0xE342_FB76)

        var single = XORChunk()
        single.append(timestamp: 1_700_000_000_000, valueBits: 2.5.bitPattern)
        XCTAssertEqual(single.bytes, hex("0001 80a0abfef962 4004000000000000 00"))
        XCTAssertEqual(CRC32C.checksum([1] + single.bytes), 0x4ADF_F223)
    }

    func testXORRoundTripKeepsEveryBitPattern() {
        let specials: [UInt64] = [0x7ff0_0000_0000_0002, 0x7ff8_0000_0000_0001, (-0.0).bitPattern, Double.infinity.bitPattern,
                                  (-Double.infinity).bitPattern, 1e300.bitPattern, 0, 42.5.bitPattern, Double.leastNonzeroMagnitude.bitPattern]
        var rng = SeededGenerator(test: "FormatVectorTests.testXORRoundTripKeepsEveryBitPattern")
        var expected: [(Int64, UInt64)] = []
        var t: Int64 = -5_000
        for i in 0..<240 {
            t += [1, 15_000, 60_000, 7, 1 << 40, 8193, 65537, 524_289][i % 8]
            let v = i % 3 == 0 ? specials[i % specials.count] : rng.next()
            expected.append((t, v))
        }
        var chunk = XORChunk()
        for (t, v) in expected { chunk.append(timestamp: t, valueBits: v) }
        XCTAssertEqual(chunk.count, expected.count)
        var decoded: [(Int64, UInt64)] = []
        chunk.bytes.withUnsafeBufferPointer { bytes in
            var it = XORIterator(bytes)
            while let s = it.next() { decoded.append(s) }
            XCTAssertFalse(it.failed)
        }
        XCTAssertEqual(decoded.map(\.0), expected.map(\.0))
        XCTAssertEqual(decoded.map(\.1), expected.map(\.1))
    }

    /// `XORIterator` cuts fields from 64-bit windows; a bit-at-a-time reading of the format (as
    /// Prometheus' `bstreamReader` without its buffer) must give the same samples and fail at the
    /// same sample, on whole, cut short and damaged chunks alike.
    func testXORIteratorMatchesBitByBitReading() {
        struct BitByBit {
            let bytes: [UInt8]
            var position = 16
            mutating func bits(_ n: Int) -> UInt64? {
                var out: UInt64 = 0
                for _ in 0..<n {
                    guard position < bytes.count * 8 else { return nil }
                    out = out << 1 | UInt64(bytes[position / 8] >> (7 - UInt8(position % 8)) & 1)
                    position += 1
                }
                return out
            }
            mutating func uvarint() -> UInt64? {
                var out: UInt64 = 0
                for shift in stride(from: 0, to: 64, by: 7) {
                    guard let b = bits(8) else { return nil }
                    out |= (b & 0x7f) << UInt64(shift)
                    if b < 0x80 { return out }
                }
                return nil
            }
            /// Samples until the count or the first one that cannot be read; whether one could not.
            mutating func decode() -> (samples: [(Int64, UInt64)], failed: Bool) {
                guard bytes.count >= 2 else { return ([], false) }
                let count = Int(bytes[0]) << 8 | Int(bytes[1])
                var out: [(Int64, UInt64)] = []
                var t: Int64 = 0, v: UInt64 = 0, delta: Int64 = 0, leading = 0, trailing = 0
                while out.count < count {
                    if out.isEmpty {
                        guard let raw = uvarint(), let first = bits(64) else { return (out, true) }
                        t = Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
                        v = first
                        out.append((t, v))
                        continue
                    }
                    if out.count == 1 {
                        guard let d = uvarint() else { return (out, true) }
                        delta = Int64(bitPattern: d)
                    } else {
                        var ones = 0
                        while ones < 4 {
                            guard let bit = bits(1) else { return (out, true) }
                            if bit == 0 { break }
                            ones += 1
                        }
                        let width = [0, 14, 17, 20, 64][ones]
                        guard let raw = bits(width) else { return (out, true) }
                        delta &+= width == 64 || raw <= 1 << (width - 1) ? Int64(bitPattern: raw) : Int64(bitPattern: raw) - (1 << width)
                    }
                    t &+= delta
                    guard let changed = bits(1) else { return (out, true) }
                    if changed == 1 {
                        guard let fresh = bits(1) else { return (out, true) }
                        if fresh == 1 {
                            guard let l = bits(5), let n = bits(6) else { return (out, true) }
                            let significant = n == 0 ? 64 : Int(n)
                            guard Int(l) + significant <= 64 else { return (out, true) }
                            (leading, trailing) = (Int(l), 64 - Int(l) - significant)
                        }
                        guard let x = bits(64 - leading - trailing) else { return (out, true) }
                        v ^= x << UInt64(trailing)
                    }
                    out.append((t, v))
                }
                return (out, false)
            }
        }
        var rng = SeededGenerator(test: "FormatVectorTests.testXORIteratorMatchesBitByBitReading")
        for _ in 0..<60 {
            var chunk = XORChunk()
            var t = Int64.random(in: -1_000_000...1_000_000_000_000, using: &rng)
            var v = Double.random(in: -1e6...1e6, using: &rng)
            var step: Int64 = 60_000
            var repeating = 0
            for _ in 0..<Int.random(in: 1...140, using: &rng) {
                chunk.append(timestamp: t, valueBits: v.bitPattern)
                // Runs of the same interval and value, which the batch decoder takes whole.
                if repeating > 0 {
                    repeating -= 1
                    t += step
                    continue
                }
                if Int.random(in: 0..<4, using: &rng) == 0 { repeating = Int.random(in: 1...70, using: &rng) }
                step = [1, 15_000, 60_000, 60_000, 8193, 1 << 33][Int.random(in: 0..<6, using: &rng)]
                t += step
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: break
                case 1: v += 1
                case 2: v = Double(bitPattern: rng.next())
                default: v *= 1.0001
                }
            }
            var variants = [chunk.bytes]
            for cut in Set((0..<6).map { _ in Int.random(in: 0..<chunk.bytes.count, using: &rng) }) { variants.append(Array(chunk.bytes[..<cut])) }
            for _ in 0..<6 {
                var damaged = chunk.bytes
                let at = Int.random(in: 2..<damaged.count, using: &rng)
                damaged[at] ^= UInt8.random(in: 1...255, using: &rng)
                variants.append(damaged)
            }
            for bytes in variants {
                var reference = BitByBit(bytes: bytes)
                let expected = reference.decode()
                var decoded: [(Int64, UInt64)] = []
                var failed = false
                bytes.withUnsafeBufferPointer { buffer in
                    var it = XORIterator(buffer)
                    while let s = it.next() { decoded.append(s) }
                    failed = it.failed
                }
                XCTAssertEqual(decoded.map(\.0), expected.samples.map(\.0))
                XCTAssertEqual(decoded.map(\.1), expected.samples.map(\.1))
                XCTAssertEqual(failed, expected.failed, "\(bytes.count) bytes")
                // The batch decoder, in batches of any size and cut at any time, gives the same.
                let capacity = Int.random(in: 1...150, using: &rng)
                let cut = expected.samples.isEmpty ? Int64.max : expected.samples.randomElement(using: &rng)!.0
                var batched: [(Int64, UInt64)] = []
                var later: (Int64, UInt64)?
                bytes.withUnsafeBufferPointer { buffer in
                    var it = XORIterator(buffer)
                    withUnsafeTemporaryAllocation(of: Sample.self, capacity: capacity) { out in
                        while true {
                            let (count, end) = it.decode(into: out.baseAddress!, capacity: capacity, through: cut)
                            batched += out[..<count].map { ($0.timestamp, $0.valueBits) }
                            if case .full = end { continue }
                            if case .later(let sample) = end { later = (sample.timestamp, sample.valueBits) }
                            break
                        }
                    }
                    failed = it.failed
                }
                let through = expected.samples.prefix { $0.0 <= cut }
                XCTAssertEqual(batched.map(\.0), through.map(\.0), "capacity \(capacity), through \(cut)")
                XCTAssertEqual(batched.map(\.1), through.map(\.1))
                if through.count < expected.samples.count {
                    XCTAssertEqual(later?.0, expected.samples[through.count].0)
                    XCTAssertEqual(later?.1, expected.samples[through.count].1)
                } else {
                    XCTAssertNil(later)
                    XCTAssertEqual(failed, expected.failed, "\(bytes.count) bytes, batched")
                }
            }
        }
    }

    /// `BitWriter.writeBits` writes a byte at a time; Prometheus' `bstream.writeBits` writes whole
    /// bytes and then bit by bit, and where it ends on a byte boundary decides whether a zero byte
    /// trails. Both must leave the same bytes and free bits after any sequence of writes.
    func testBitWriterMatchesPrometheusBitByBitStream() {
        var rng = SeededGenerator(test: "FormatVectorTests.testBitWriterMatchesPrometheusBitByBitStream")
        for _ in 0..<200 {
            var reference = ReferenceStream()
            var writer = BitWriter(bytes: [])
            for _ in 0..<Int.random(in: 1...60, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    let bit = Bool.random(using: &rng)
                    reference.writeBit(bit); writer.writeBit(bit)
                case 1:
                    let byte = UInt8.random(in: 0...255, using: &rng)
                    reference.writeByte(byte); writer.writeByte(byte)
                default:
                    let n = [1, 2, 5, 6, 7, 8, 9, 14, 16, 17, 20, 24, 31, 33, 52, 63, 64, Int.random(in: 1...64, using: &rng)].randomElement(using: &rng)!
                    let random: UInt64 = rng.next()
                    let value = n == 64 ? random : random & ((1 << UInt64(n)) - 1)
                    reference.writeBits(value, n); writer.writeBits(value, n)
                }
                XCTAssertEqual(writer.bytes, reference.stream)
                XCTAssertEqual(writer.freeBits, reference.count)
            }
        }
    }

    /// `XORChunk` gathers each sample's bits before writing them; Prometheus' `xorAppender`
    /// writes them one call at a time into its bit-by-bit stream. Both must give the same bytes,
    /// the trailing byte included, after every sample: over every delta-of-delta width (negative
    /// too) and value case (repeat, reused window, new window, every bit changed).
    func testXORChunkMatchesPrometheusAppenderOverEveryCase() {
        struct ReferenceAppender {
            var b = ReferenceStream()
            var count = 0, t: Int64 = 0, v: UInt64 = 0, tDelta: UInt64 = 0
            var leading: UInt8 = 0xff, trailing: UInt8 = 0
            mutating func append(_ t: Int64, _ v: UInt64) {
                if count == 0 { b.stream = [0, 0] }
                switch count {
                case 0:
                    var zigzag = UInt64(bitPattern: (t << 1) ^ (t >> 63))
                    while zigzag >= 0x80 { b.writeByte(UInt8(truncatingIfNeeded: zigzag) | 0x80); zigzag >>= 7 }
                    b.writeByte(UInt8(zigzag))
                    b.writeBits(v, 64)
                case 1:
                    tDelta = UInt64(bitPattern: t &- self.t)
                    var d = tDelta
                    while d >= 0x80 { b.writeByte(UInt8(truncatingIfNeeded: d) | 0x80); d >>= 7 }
                    b.writeByte(UInt8(d))
                    writeValue(v)
                default:
                    let delta = UInt64(bitPattern: t &- self.t)
                    let dod = Int64(bitPattern: delta &- tDelta)
                    tDelta = delta
                    func fits(_ n: Int64) -> Bool { -((1 << (n - 1)) - 1) <= dod && dod <= 1 << (n - 1) }
                    if dod == 0 { b.writeBit(false) }
                    else if fits(14) { b.writeBits(0b10, 2); b.writeBits(UInt64(bitPattern: dod) & 0x3fff, 14) }
                    else if fits(17) { b.writeBits(0b110, 3); b.writeBits(UInt64(bitPattern: dod) & 0x1ffff, 17) }
                    else if fits(20) { b.writeBits(0b1110, 4); b.writeBits(UInt64(bitPattern: dod) & 0xfffff, 20) }
                    else { b.writeBits(0b1111, 4); b.writeBits(UInt64(bitPattern: dod), 64) }
                    writeValue(v)
                }
                count += 1
                b.stream[0] = UInt8(count >> 8)
                b.stream[1] = UInt8(count & 0xff)
                self.t = t
                self.v = v
            }
            mutating func writeValue(_ value: UInt64) {
                let delta = value ^ v
                if delta == 0 { b.writeBit(false); return }
                b.writeBit(true)
                let newLeading = UInt8(min(delta.leadingZeroBitCount, 31)), newTrailing = UInt8(delta.trailingZeroBitCount)
                if leading != 0xff && newLeading >= leading && newTrailing >= trailing {
                    b.writeBit(false)
                    let n = 64 - Int(leading) - Int(trailing)
                    b.writeBits(n == 64 ? delta : (delta >> trailing) & ((1 << UInt64(n)) - 1), n)
                    return
                }
                (leading, trailing) = (newLeading, newTrailing)
                b.writeBit(true)
                b.writeBits(UInt64(newLeading), 5)
                let significant = 64 - Int(newLeading) - Int(newTrailing)
                b.writeBits(UInt64(significant) & 0x3f, 6)
                b.writeBits(significant == 64 ? delta : delta >> newTrailing, significant)
            }
        }
        var rng = SeededGenerator(test: "FormatVectorTests.testXORChunkMatchesPrometheusAppenderOverEveryCase")
        for _ in 0..<300 {
            var reference = ReferenceAppender()
            var chunk = XORChunk()
            var t = Int64.random(in: -1_000_000...2_000_000_000_000, using: &rng)
            var v: UInt64 = rng.next()
            var step: Int64 = [1, 15_000, 60_000][Int.random(in: 0..<3, using: &rng)]
            for _ in 0..<Int.random(in: 1...200, using: &rng) {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: step += Int64.random(in: -8_000...8_000, using: &rng)           // 14 bits
                case 1: step += Int64.random(in: -65_000...65_000, using: &rng)         // 17 bits
                case 2: step += Int64.random(in: -500_000...500_000, using: &rng)       // 20 bits
                case 3: step += Int64.random(in: -(1 << 40)...(1 << 40), using: &rng)  // 64 bits
                default: break
                }
                step = max(1, step)
                t += step
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: break
                case 1: v ^= UInt64.random(in: 1...0xff, using: &rng) << 20
                case 2: v ^= UInt64.random(in: 1...0xffff, using: &rng) << UInt64.random(in: 0...48, using: &rng)
                case 3: v = rng.next()
                default: v = ~v
                }
                reference.append(t, v)
                chunk.append(timestamp: t, valueBits: v)
                XCTAssertEqual(chunk.bytes, reference.b.stream)
            }
        }
    }

    func testWALSegmentMatchesPromtoolVector() throws {
        // Series {__name__="w",job="x"} ref 1, then Samples 1@1795382000000 and 2@+15000.
        var encoder = WALRecordEncoder()
        encoder.beginSeries()
        encoder.addSeries(ref: 1, labels: [("__name__", "w"), ("job", "x")])
        let series = encoder.bytes
        encoder.beginSamples(baseRef: 1, baseTimestamp: 1_795_382_000_000)
        encoder.addSample(ref: 1, timestamp: 1_795_382_000_000, valueBits: 1.0.bitPattern)
        encoder.addSample(ref: 1, timestamp: 1_795_382_015_000, valueBits: 2.0.bitPattern)
        let samples = encoder.bytes
        let directory = try temporaryDirectory()
        let wal = WALWriter(directory: directory, segmentIndex: 0)
        _ = try wal.log([series, samples])
        try wal.finishSegment()
        let bytes = try FileSystem.readFile(directory + "/00000000")
        XCTAssertEqual(bytes.count, WALFormat.pageSize)
        let expected = hex("""
            01 001b cdfb3438 | 01 0000000000000001 02 08 5f5f6e616d655f5f 01 77 03 6a6f62 01 78
            01 0027 bde23e09 | 02 0000000000000001 000001a2051b3980 00 00 3ff0000000000000 00 b0ea01 4000000000000000
            """)
        XCTAssertEqual(Array(bytes[..<expected.count]), expected)
        XCTAssertTrue(bytes[expected.count...].allSatisfy { $0 == 0 })
    }

    /// Two integer histograms of series ref 1, one second apart, as Prometheus 2.42
    /// (`--enable-feature=native-histograms`) logged them after a remote write: schema 1, zero
    /// threshold 0.001, positive spans 0:2 and 3:1 with deltas 3 1 -2, negative span -2:1 with 4.
    static let histogramRecord = """
        07 0000000000000001 000001a231f1ee55
        00 00 | 00 02 3f50624dd2f1a9fc 02 0f 401e000000000000 | 02 0002 0601 | 01 0301 | 03 060203 | 01 08
        00 d00f | 00 02 3f50624dd2f1a9fc 03 12 4022800000000000 | 02 0002 0601 | 01 0301 | 03 080001 | 01 08
        """

    static func histogram(zeroCount: UInt64, count: UInt64, sum: Double, positive: [Int64]) -> IntegerHistogram {
        var h = IntegerHistogram()
        h.schema = 1
        h.zeroThresholdBits = 0.001.bitPattern
        h.zeroCount = zeroCount
        h.count = count
        h.sumBits = sum.bitPattern
        h.positiveSpans = [HistogramSpan(offset: 0, length: 2), HistogramSpan(offset: 3, length: 1)]
        h.negativeSpans = [HistogramSpan(offset: -2, length: 1)]
        h.positiveBuckets = positive
        h.negativeBuckets = [4]
        return h
    }

    static let histograms = [histogram(zeroCount: 2, count: 15, sum: 7.5, positive: [3, 1, -2]),
                             histogram(zeroCount: 3, count: 18, sum: 9.25, positive: [4, 0, -1])]

    func testHistogramSamplesRecordMatchesPrometheus242() throws {
        let t: Int64 = 0x1a2_31f1_ee55
        var encoder = WALRecordEncoder()
        encoder.histogramSamples([(UInt64(1), t, Self.histograms[0]), (UInt64(1), t + 1000, Self.histograms[1])])
        XCTAssertEqual(encoder.bytes, hex(Self.histogramRecord))
        /// What the decoder reads from `bytes`, or nil when it finds them malformed.
        func decode(_ bytes: [UInt8]) -> [String]? {
            bytes.withUnsafeBytes { raw -> [String]? in
                var decoder = WALRecordDecoder(raw)
                var decoded: [String] = []
                do {
                    try decoder.forEachHistogramSample { (ref, timestamp, h: IntegerHistogram) in
                        decoded.append("\(ref)@\(timestamp - t)")
                        XCTAssertEqual(h, Self.histograms[min(decoded.count - 1, 1)])
                    }
                } catch { return nil }
                return decoded
            }
        }
        let bytes = hex(Self.histogramRecord)
        XCTAssertEqual(bytes.withUnsafeBytes { WALRecordDecoder($0).type }, WALRecordType.histogramSamples.rawValue)
        XCTAssertEqual(decode(bytes), ["1@0", "1@1000"])
        // Cut short anywhere but between the two samples, it is malformed, never a trap.
        for end in 18..<bytes.count where end != 53 {
            XCTAssertNil(decode(Array(bytes[..<end])), "cut at \(end)")
        }
        var huge = bytes
        huge[39] = 0x7f  // the first sample's positive span count, past the record
        XCTAssertNil(decode(huge))
    }

    /// The same two histograms in the chunk (encoding 2) of the block Prometheus 2.42 cut from its
    /// head for a snapshot: count 2, header unknown, layout, then the samples.
    static let histogramChunk = """
        0002 00 | ff 3f50624dd2f1a9fc
        8ca48ce31b7f0000d118f8f72ae3e4803c0000000000 0138da9e3e89c750fe637880
        """

    func testHistogramChunkMatchesPrometheus242() {
        let t: Int64 = 0x1a2_31f1_ee55
        var chunk = HistogramChunk()
        for (i, h) in Self.histograms.enumerated() {
            XCTAssertTrue(chunk.fits(h))
            chunk.append(timestamp: t + Int64(i) * 1000, h)
        }
        XCTAssertEqual(chunk.bytes, hex(Self.histogramChunk))
        let bytes = hex(Self.histogramChunk)
        bytes.withUnsafeBufferPointer { buffer in
            var iterator = HistogramIterator(buffer)
            XCTAssertEqual(iterator.header, .unknown)
            XCTAssertEqual(iterator.next()?.histogram, Self.histograms[0])
            let second = iterator.next()
            XCTAssertEqual(second?.timestamp, t + 1000)
            XCTAssertEqual(second?.histogram, Self.histograms[1])
            XCTAssertNil(iterator.next())
            XCTAssertFalse(iterator.failed)
        }
        // A staleness marker: its sum only, the buckets as they were (as Prometheus' iterator reads it).
        var stale = IntegerHistogram()
        stale.sumBits = 0x7ff0_0000_0000_0002
        XCTAssertTrue(chunk.fits(stale))
        chunk.append(timestamp: t + 2000, stale)
        chunk.bytes.withUnsafeBufferPointer { buffer in
            var iterator = HistogramIterator(buffer)
            _ = iterator.next()
            _ = iterator.next()
            let marker = iterator.next()
            XCTAssertEqual(marker?.histogram.sumBits, stale.sumBits)
            XCTAssertEqual(marker?.histogram.positiveBuckets, Self.histograms[1].positiveBuckets)
            XCTAssertFalse(iterator.failed)
        }
        // Cut short anywhere, the iterator stops with `failed`, never traps.
        for end in 3..<bytes.count - 1 {
            Array(bytes[..<end]).withUnsafeBufferPointer { buffer in
                var iterator = HistogramIterator(buffer)
                while iterator.next() != nil {}
                XCTAssertTrue(iterator.failed, "cut at \(end)")
            }
        }
    }

    func testHistogramChunkRoundTripsWhateverTheValues() {
        var random = SeededGenerator(test: "histogram chunk", fixedSeed: 42)
        for round in 0..<300 {
            var layout = IntegerHistogram()
            layout.schema = Int32.random(in: -4...8, using: &random)
            layout.zeroThresholdBits = [0, 0.001.bitPattern, 0.5.bitPattern, 0x1p-200.bitPattern, (-1.0).bitPattern, Double.nan.bitPattern].randomElement(using: &random)!
            layout.positiveSpans = (0..<Int.random(in: 0...3, using: &random)).map { _ in HistogramSpan(offset: Int32.random(in: -5...5, using: &random), length: UInt32.random(in: 0...4, using: &random)) }
            layout.negativeSpans = (0..<Int.random(in: 0...2, using: &random)).map { _ in HistogramSpan(offset: Int32.random(in: -5...5, using: &random), length: UInt32.random(in: 0...4, using: &random)) }
            layout.counterResetHint = 0
            var chunk = HistogramChunk(header: .notCounterReset)
            var written: [(Int64, IntegerHistogram)] = []
            var t = Int64.random(in: -1 << 62...1 << 62, using: &random)
            for _ in 0..<Int.random(in: 1...40, using: &random) {
                func value() -> Int64 {
                    [Int64.random(in: -3...3, using: &random), Int64.random(in: -1 << 40...1 << 40, using: &random), .max, .min].randomElement(using: &random)!
                }
                var h = layout
                h.count = UInt64(bitPattern: value())
                h.zeroCount = UInt64(bitPattern: value())
                h.sumBits = random.next()
                h.positiveBuckets = (0..<h.positiveSpans.reduce(0) { $0 + Int($1.length) }).map { _ in value() }
                h.negativeBuckets = (0..<h.negativeSpans.reduce(0) { $0 + Int($1.length) }).map { _ in value() }
                t = t &+ value()
                XCTAssertTrue(chunk.fits(h))
                chunk.append(timestamp: t, h)
                written.append((t, h))
            }
            var other = layout
            other.schema = layout.schema == 0 ? 1 : 0
            other.positiveBuckets = Array(repeating: 0, count: layout.positiveSpans.reduce(0) { $0 + Int($1.length) })
            other.negativeBuckets = Array(repeating: 0, count: layout.negativeSpans.reduce(0) { $0 + Int($1.length) })
            XCTAssertFalse(chunk.fits(other), "another layout needs another chunk")
            chunk.bytes.withUnsafeBufferPointer { buffer in
                var iterator = HistogramIterator(buffer)
                XCTAssertEqual(iterator.header, .notCounterReset)
                var read: [(Int64, IntegerHistogram)] = []
                while let (t, h) = iterator.next() { read.append((t, h)) }
                XCTAssertFalse(iterator.failed, "round \(round)")
                XCTAssertEqual(read.map(\.0), written.map(\.0), "round \(round)")
                XCTAssertEqual(read.map(\.1), written.map(\.1), "round \(round)")
            }
        }
    }

    /// tombstones.go: magic, version 1, (uvarint ref, varint mint, varint maxt)..., CRC32C of the records.
    func testTombstonesLayoutAndMerging() throws {
        XCTAssertEqual(Tombstones().encoded(), [0x01, 0x30, 0xBA, 0x30, 0x01, 0, 0, 0, 0])
        var t = Tombstones()
        t.add(300, DeletedInterval(minTime: -1, maxTime: 2))
        let records: [UInt8] = [0xAC, 0x02, 0x01, 0x04]
        let crc = CRC32C.checksum(records)
        XCTAssertEqual(t.encoded(), [0x01, 0x30, 0xBA, 0x30, 0x01] + records + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc & 0xff)])
        t.add(300, DeletedInterval(minTime: 3, maxTime: 10))      // touches: merged
        t.add(300, DeletedInterval(minTime: 20, maxTime: .max))   // apart: kept
        t.add(7, DeletedInterval(minTime: .min, maxTime: 0))
        XCTAssertEqual(t.intervals[300], [DeletedInterval(minTime: -1, maxTime: 10), DeletedInterval(minTime: 20, maxTime: .max)])
        XCTAssertEqual(t.count, 3)
        XCTAssertEqual(try Tombstones.decode(t.encoded(), block: "b"), t)
        var corrupt = t.encoded()
        corrupt[6] ^= 1
        XCTAssertThrowsError(try Tombstones.decode(corrupt, block: "b")) { XCTAssertTrue("\($0)".contains("tombstones: checksum mismatch")) }
    }

    /// Intervals added in any order, overlapping, touching or apart, merge into the runs of deleted
    /// times a model of the set computes, and `deletes` answers each time as the model does; a file
    /// of 20,000 apart intervals in descending order loads whole (each used to re-sort the list).
    func testTombstonesMergeIntoTheRunsOfDeletedTimes() throws {
        var random = SeededGenerator(test: "tombstone merging")
        for round in 0..<300 {
            var tombstones = Tombstones()
            var deleted = Set<Int64>()
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                let start = Int64.random(in: 0...60, using: &random)
                let end = start + Int64.random(in: 0...6, using: &random)
                tombstones.add(1, DeletedInterval(minTime: start, maxTime: end))
                deleted.formUnion(start...end)
            }
            var runs: [DeletedInterval] = []
            for t in deleted.sorted() {
                if let last = runs.last, last.maxTime + 1 == t { runs[runs.count - 1].maxTime = t } else { runs.append(DeletedInterval(minTime: t, maxTime: t)) }
            }
            XCTAssertEqual(tombstones.intervals[1], runs, "round \(round)")
            for t in Int64(-1)...70 { XCTAssertEqual(tombstones.deletes(1, t), deleted.contains(t), "round \(round), t \(t)") }
            XCTAssertEqual(try Tombstones.decode(tombstones.encoded(), block: "b"), tombstones)
        }
        var edges = Tombstones()
        edges.add(2, DeletedInterval(minTime: 10, maxTime: .max))
        edges.add(2, DeletedInterval(minTime: .min, maxTime: 8))
        edges.add(2, DeletedInterval(minTime: 9, maxTime: 9))
        XCTAssertEqual(edges.intervals[2], [DeletedInterval(minTime: .min, maxTime: .max)])
        XCTAssertTrue(edges.deletes(2, .min) && edges.deletes(2, .max))

        var records: [UInt8] = []
        for k in stride(from: 19_999, through: 0, by: -1) {
            records.appendUvarint(18)
            records.appendVarint(Int64(2 * k))
            records.appendVarint(Int64(2 * k))
        }
        var file = BlockWriter.tombstonesMagic + [1] + records
        file.appendBigEndian(CRC32C.checksum(records))
        let many = try Tombstones.decode(file, block: "b")
        XCTAssertEqual(many.count, 20_000)
        XCTAssertTrue(many.deletes(18, 39_998) && many.deletes(18, 0) && !many.deletes(18, 39_999) && !many.deletes(18, 1))
    }

    func testGoFloatFormatting() {
        let cases: [(Double, String)] = [
            (1, "1"), (0.5, "0.5"), (-0.0, "-0"), (0, "0"), (100000, "100000"), (1e6, "1e+06"),
            (1234567, "1.234567e+06"), (123456.7, "123456.7"), (0.0001, "0.0001"), (0.00001, "1e-05"),
            (1.7e12, "1.7e+12"), (Double.nan, "NaN"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"),
            (0.1 + 0.2, "0.30000000000000004"), (-2.5e-7, "-2.5e-07"), (1e300, "1e+300"), (Double.leastNonzeroMagnitude, "5e-324"),
        ]
        for (v, s) in cases { XCTAssertEqual(GoFormat.float(v), s, "\(v)") }
    }

    func testGoQuote() {
        XCTAssertEqual(GoFormat.quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"")
        XCTAssertEqual(GoFormat.quote("ü\u{01}"), "\"ü\\x01\"")
    }
}

func temporaryDirectory() throws -> String {
    var template = Array("/tmp/tally-test-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard let path else { throw StorageIOError("mkdtemp", "/tmp") }
    return String(cString: path)
}

/// Prometheus' `bstream` writer, bit by bit as its Go source reads (`writeBit`, `writeByte`,
/// `writeBits`), to hold `BitWriter` and the XOR encoder to.
private struct ReferenceStream {
    var stream: [UInt8] = []
    var count: UInt8 = 0
    mutating func writeBit(_ bit: Bool) {
        if count == 0 { stream.append(0); count = 8 }
        if bit { stream[stream.count - 1] |= 1 << (count - 1) }
        count -= 1
    }
    mutating func writeByte(_ byte: UInt8) {
        if count == 0 { stream.append(0); count = 8 }
        stream[stream.count - 1] |= byte >> (8 - count)
        stream.append(count == 8 ? 0 : byte << count)
    }
    mutating func writeBits(_ value: UInt64, _ nbits: Int) {
        var u = nbits == 64 ? value : value << UInt64(64 - nbits)
        var n = nbits
        while n >= 8 { writeByte(UInt8(u >> 56)); u <<= 8; n -= 8 }
        while n > 0 { writeBit(u >> 63 == 1); u <<= 1; n -= 1 }
    }
}
