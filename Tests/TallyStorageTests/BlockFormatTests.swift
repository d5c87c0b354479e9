import XCTest
@testable import TallyStorage

/// Block bytes against the promtool 2.42 vector (../shared/notes/prometheus-formats.md §10).
final class BlockFormatTests: XCTestCase {
    private func hex(_ s: String) -> [UInt8] {
        let digits = Array(s.filter { $0.isHexDigit })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    private func ascii(_ s: String) -> String { s.utf8.map { String(format: "%02x", $0) }.joined() }

    static func vectorSeries() -> [BlockSeries] {
        var up = XORChunk()
        for (t, v) in [(1_700_000_000_000, 1.0), (1_700_000_015_000, 1.0), (1_700_000_030_000, 0.0), (1_700_000_046_000, 1.0)] {
            up.append(timestamp: Int64(t), valueBits: v.bitPattern)
        }
        var single = XORChunk()
        single.append(timestamp: 1_700_000_000_000, valueBits: 2.5.bitPattern)
        return [
            // Given out of order on purpose: the writer sorts series.
            BlockSeries(labels: [("__name__", "up"), ("instance", "y"), ("job", "b")],
                        chunks: [EncodedChunk(minTime: 1_700_000_000_000, maxTime: 1_700_000_000_000, bytes: single.bytes)]),
            BlockSeries(labels: [("__name__", "up"), ("instance", "x"), ("job", "a")],
                        chunks: [EncodedChunk(minTime: 1_700_000_000_000, maxTime: 1_700_000_046_000, bytes: up.bytes)]),
        ]
    }

    func testBlockBytesMatchPromtoolVector() throws {
        let directory = try temporaryDirectory()
        let ulid = ULID("01M82HEZVD3N7TBM7Q1ZBG249S")!
        let meta = try BlockWriter.write(series: Self.vectorSeries(), minTime: 1_700_000_000_000, maxTime: 1_700_000_046_001,
                                         into: directory, tenant: "t", ulid: ulid)
        XCTAssertEqual(meta.stats, BlockMeta.Stats(numSamples: 5, numSeries: 2, numChunks: 2))
        let block = directory + "/" + ulid.description
        XCTAssertFalse(FileSystem.exists(block + ".tmp"))

        let chunks = try FileSystem.readFile(block + "/chunks/000001")
        XCTAssertEqual(chunks, hex("""
            85bd40dd 01 000000
            19 01 0004 80a0abfef962 3ff0000000000000 9875 3115ffc1f45ff8 e342fb76
            11 01 0001 80a0abfef962 4004000000000000 00 4adff223
            """))
        XCTAssertEqual(try FileSystem.readFile(block + "/tombstones"), hex("0130ba30 01 00000000"))

        let index = try FileSystem.readFile(block + "/index")
        let expected = hex("""
            baaad700 02
            00000026 00000009 00 08 \(ascii("__name__")) 01 61 01 62 08 \(ascii("instance")) 03 \(ascii("job")) 02 \(ascii("up")) 01 78 01 79 0d10744e
            00000000000000000000000000
            12 03 0106 0407 0502 01 80a0abfef962 b0e702 08 8b33f3b8 000000000000000000
            10 03 0106 0408 0503 01 80a0abfef962 00 27 33e10090
            000000
            0000000c 00000002 00000004 00000006 00153664
            0000000c 00000002 00000004 00000006 00153664
            00000008 00000001 00000004 73a34a39
            00000008 00000001 00000006 92983ace
            00000008 00000001 00000004 73a34a39
            00000008 00000001 00000006 92983ace
            00000045 00000006 02 00 00 78 02 08 \(ascii("__name__")) 02 \(ascii("up")) 8c01
            02 08 \(ascii("instance")) 01 78 a001 02 08 \(ascii("instance")) 01 79 b001
            02 03 \(ascii("job")) 01 61 c001 02 03 \(ascii("job")) 01 62 d001 37dd605e
            """)
        XCTAssertEqual(index.count, 353)
        XCTAssertEqual(Array(index[..<expected.count]), expected)
        // TOC: symbols, series, label indices, label offset table, postings, postings offset table.
        XCTAssertEqual(Array(index[expected.count...]), hex("""
            0000000000000005 0000000000000033 0000000000000075 00000000000000e0 0000000000000078 00000000000000e0 4d1c64d3
            """))
    }

    /// Series are written in the byte order of their labels, as Prometheus' `labels.Compare` orders
    /// them, whatever order they come in: not Swift's string order (canonically equal strings of
    /// other bytes, a NUL inside a value, non-ASCII bytes after ASCII ones), a shorter label set
    /// before a longer one that starts with it.
    func testSeriesAreWrittenInTheByteOrderOfTheirLabels() throws {
        var chunk = XORChunk()
        chunk.append(timestamp: 1_000, valueBits: 1.0.bitPattern)
        let values = ["é", "e\u{301}", "z", "a", "a\u{0}", "ab", "a\u{0}b", "A", "\u{10FFFF}", "\u{FFFF}"]
        var labelSets = values.map { [("__name__", "m"), ("k", $0)] }
        labelSets += [[("__name__", "m")], [("__name__", "m"), ("k", "a"), ("l", "x")], [("__name__", "m"), ("j", "z")],
                      [("__name__", "n"), ("a", "b")], [("__name__", "m\u{0}")]]
        var generator = SystemRandomNumberGenerator()
        let directory = try temporaryDirectory()
        for round in 0..<3 {
            let given = labelSets.shuffled(using: &generator)
            let meta = try BlockWriter.write(series: given.map { BlockSeries(labels: $0, chunks: [EncodedChunk(minTime: 1_000, maxTime: 1_000, bytes: chunk.bytes)]) },
                                             minTime: 1_000, maxTime: 1_001, into: directory, tenant: "t")
            let block = try BlockReader(directory: directory + "/" + meta.ulid)
            let written = try block.seriesRefs.map { try block.series($0).labels }
            let expected = labelSets.sorted { Labels.pairsPrecede($0, $1) }
            XCTAssertEqual(written.count, expected.count)
            for (w, e) in zip(written, expected) {
                XCTAssertTrue(Labels.pairsEqual(w, e), "round \(round): \(w) where \(e) belongs")
            }
            XCTAssertEqual(block.symbols.map { Array($0.utf8) }, block.symbols.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) })
        }
    }

    func testULIDRoundTripsAndSortsByTime() {
        let a = ULID(milliseconds: 1_700_000_000_000, random: (0, 0))
        let b = ULID(milliseconds: 1_700_000_000_001, random: (.max, .max))
        XCTAssertEqual(a.description.count, 26)
        XCTAssertLessThan(a, b)
        XCTAssertEqual(ULID(a.description), a)
        XCTAssertNil(ULID("01M82HEZVD3N7TBM7Q1ZBG249"))     // 25 characters
        XCTAssertNil(ULID("01M82HEZVD3N7TBM7Q1ZBG249U"))    // U is not Crockford base32
        XCTAssertNil(ULID("81M82HEZVD3N7TBM7Q1ZBG249S"))    // overflows 128 bits
        XCTAssertEqual(ULID(milliseconds: 0, random: (0, 0)).description, String(repeating: "0", count: 26))
        XCTAssertEqual(ULID(milliseconds: (1 << 48) - 1, random: (.max, .max)).description, "7" + String(repeating: "Z", count: 25))
    }
}
