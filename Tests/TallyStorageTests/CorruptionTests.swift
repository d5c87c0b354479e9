import Foundation
import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Corrupt bytes on disk (zeroed, set, flipped; with and without their checksum fixed up so the
/// parsers behind it see them) must never trap a reader: opening, verifying, importing and reading
/// a block, reading tombstones and replaying a WAL either succeed or fail with a typed error that
/// names the file and the section. `TALLY_TEST_SEED=<n>` replays a run's random choices.
final class CorruptionTests: XCTestCase {
    enum Pattern: CaseIterable {
        case zero, ones, highBitFlipped

        func apply(_ byte: UInt8) -> UInt8 {
            switch self {
            case .zero: 0
            case .ones: 0xFF
            case .highBitFlipped: byte ^ 0x80
            }
        }
    }

    static let base: Int64 = 1_700_000_000_000
    static let seriesCount = 12, chunksPerSeries = 3, samplesPerChunk = 40

    // MARK: blocks

    func testEveryTOCByteCorruptedNeverTraps() throws {
        let fixture = try BlockFixture()
        let tocStart = fixture.pristine["index"]!.count - BlockReader.tocSize
        for offset in tocStart..<fixture.pristine["index"]!.count {
            for pattern in Pattern.allCases {
                for fixChecksum in [false, true] {
                    try fixture.corrupt("index", at: offset, pattern, fixChecksum: fixChecksum) { what in
                        fixture.readEverything(what, importing: true)
                    }
                }
            }
        }
    }

    func testRandomBytesOfEveryBlockFileCorruptedNeverTrap() throws {
        var random = SeededGenerator(test: "CorruptionTests block files")
        let fixture = try BlockFixture()
        let files = ["index", "chunks/000001", "tombstones", "meta.json"]
        for _ in 0..<400 {
            let file = files.randomElement(using: &random)!
            let offset = Int.random(in: 0..<fixture.pristine[file]!.count, using: &random)
            let pattern = Pattern.allCases.randomElement(using: &random)!
            try fixture.corrupt(file, at: offset, pattern, fixChecksum: Bool.random(using: &random)) { what in
                fixture.readEverything(what, importing: false)
            }
        }
    }

    func testTOCOffsetsPastTheEndAreReportedAsTOCErrors() throws {
        let fixture = try BlockFixture()
        let index = fixture.pristine["index"]!
        let tocStart = index.count - BlockReader.tocSize
        for (slot, value) in [(0, UInt64.max), (0, UInt64(Int.max) + 1), (5, UInt64(index.count + 1000)), (5, UInt64(tocStart + 1))] {
            var bytes = index
            bytes.replaceSubrange(tocStart + 8 * slot..<tocStart + 8 * slot + 8, with: bigEndian(value))
            Checksummed.fixed(tocStart..<index.count - 4).fixUp(&bytes)
            try fixture.expectError(replacing: "index", with: bytes, section: "index TOC")
        }
    }

    func testSectionCountsAndLengthsPastTheirEndAreReported() throws {
        let fixture = try BlockFixture()
        let index = fixture.pristine["index"]!
        let symbols = fixture.toc[0], table = fixture.toc[5], allPostings = fixture.toc[4]
        let cases: [(what: String, start: Int, field: Int, value: UInt32, section: String)] = [
            ("symbol count 2^32-1", symbols, symbols + 4, .max, "index symbols"),
            ("symbols length 0", symbols, symbols, 0, "index symbols"),
            ("symbols length 2^32-1", symbols, symbols, .max, "index symbols"),
            ("postings offset table count 2^32-1", table, table + 4, .max, "index postings offset table"),
            ("all-postings count 2^32-1", allPostings, allPostings + 4, .max, "index postings"),
            ("all-postings length 0", allPostings, allPostings, 0, "index postings"),
            ("last series ref past the file", allPostings, allPostings + 4 + 4 * Self.seriesCount, 0x0FFF_FFFF, "index series"),
        ]
        for c in cases {
            var bytes = index
            bytes.replaceSubrange(c.field..<c.field + 4, with: bigEndian(c.value))
            Checksummed.lengthPrefixed(start: c.start, varintLength: false, leading: 0).fixUp(&bytes)
            try fixture.expectError(replacing: "index", with: bytes, section: c.section, c.what)
        }
    }

    func testPostingsOffsetTableEntriesPastTheFileAreReported() throws {
        let fixture = try BlockFixture()
        let index = fixture.pristine["index"]!
        for offset in [UInt64.max, UInt64(Int.max) + 1, 1 << 40, UInt64(index.count)] {
            var entries: [UInt8] = [2, 0, 0]
            entries.appendUvarint(fixture.allPostingsOffset)
            entries += [2, 3] + Array("job".utf8) + [1] + Array("a".utf8)
            entries.appendUvarint(offset)
            try fixture.expectError(replacing: "index", with: fixture.index(withPostingsOffsetTable: 2, entries),
                                    section: "index postings offset table", "offset \(offset)")
        }
        // An 11-byte varint as the last entry's offset.
        var entries: [UInt8] = [2, 0, 0]
        entries += [UInt8](repeating: 0x80, count: 10) + [0x01]
        try fixture.expectError(replacing: "index", with: fixture.index(withPostingsOffsetTable: 1, entries),
                                section: "index postings offset table", "11-byte varint")
    }

    func testLabelPostingsNamingAMissingSeriesFailOnlyThatRead() throws {
        let fixture = try BlockFixture()
        let (value, offset) = try XCTUnwrap(fixture.reader.postingsOffsets["job"]?.first)
        var bytes = fixture.pristine["index"]!
        bytes.replaceSubrange(offset + 8..<offset + 12, with: bigEndian(UInt32.max))
        Checksummed.lengthPrefixed(start: offset, varintLength: false, leading: 0).fixUp(&bytes)
        try fixture.withFile("index", bytes) {
            let reader = try BlockReader(directory: fixture.block)
            let job = try LabelMatcher("job", .equal, value)
            XCTAssertThrowsError(try reader.select([job], minTime: .min, maxTime: .max)) { error in
                XCTAssertEqual((error as? BlockError)?.section, "index series", "\(error)")
            }
            var skipped: [BlockError] = []
            let rest = try reader.select([job], minTime: .min, maxTime: .max) { skipped.append($0) }
            XCTAssertEqual(skipped.count, 1)
            XCTAssertEqual(rest.count, Self.seriesCount / 2 - 1)
            XCTAssertThrowsError(try BlockVerifier.verify(reader))
        }
    }

    func testMalformedSeriesEntriesAreReported() throws {
        let fixture = try BlockFixture()
        // Labels (__name__, metric) and one chunk of the first series, with the ref or the counts broken.
        let name = UInt64(try XCTUnwrap(fixture.reader.symbols.firstIndex(of: "__name__")))
        let metric = UInt64(try XCTUnwrap(fixture.reader.symbols.firstIndex(of: "metric")))
        let (_, chunks) = try fixture.reader.series(fixture.reader.seriesRefs[0])
        func entry(labels: [UInt64] = [name, metric], chunkCount: UInt64 = 1, ref: UInt64 = chunks[0].ref, tail: [UInt8] = []) -> [UInt8] {
            var body: [UInt8] = []
            body.appendUvarint(UInt64(labels.count / 2))
            for symbol in labels { body.appendUvarint(symbol) }
            body.appendUvarint(chunkCount)
            body.appendVarint(chunks[0].minTime)
            body.appendUvarint(UInt64(chunks[0].maxTime - chunks[0].minTime))
            body.appendUvarint(ref)
            return body + tail
        }
        let cases: [(what: String, body: [UInt8], section: String)] = [
            ("chunk in segment 9999", entry(ref: 9998 << 32 | 8), "chunks/009999"),
            ("chunk offset past the segment", entry(ref: 0xFFFF_FFFF), "chunks/000001"),
            ("chunk ref 2^64-1", entry(ref: .max), "chunks/4294967296"),
            ("chunk ref inside a chunk", entry(ref: chunks[0].ref + 3), "chunks/000001"),
            ("symbol past the table", entry(labels: [name, 1 << 40]), "index series"),
            ("chunk count 2^64-1", entry(chunkCount: .max), "index series"),
            ("11-byte varint", [UInt8](repeating: 0xFF, count: 10) + [0x01], "index series"),
            ("truncated varint", [0x01, 0x80], "index series"),
        ]
        for c in cases {
            try fixture.expectError(replacing: "index", with: fixture.index(withLastSeries: c.body), section: c.section, c.what)
        }
    }

    func testMetaTimeRangesReversedOrBeyondWhatStorageHoldsAreReported() throws {
        let fixture = try BlockFixture()
        for (minTime, maxTime) in [(Int64.min, Int64.max), (Self.base + 1, Self.base), (Self.base, Int64.max - 1)] {
            var meta = fixture.reader.meta
            (meta.minTime, meta.maxTime) = (minTime, maxTime)
            try fixture.expectError(replacing: "meta.json", with: try meta.encoded(), section: "meta.json", "[\(minTime), \(maxTime))")
        }
        try fixture.expectError(replacing: "meta.json", with: Array("{\"ulid\": 1}".utf8), section: "meta.json", "not a meta.json")
    }

    func testArbitraryChunkBytesBehindAValidChecksumNeverTrap() throws {
        var random = SeededGenerator(test: "CorruptionTests chunk bytes")
        let directory = try temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        var series: [BlockSeries] = []
        for k in 0..<300 {
            var bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Mostly believable counts, so decoding goes deep into the stream before it fails.
            if bytes.count >= 2 && k % 2 == 0 { bytes[0] = 0; bytes[1] = UInt8.random(in: 0...8, using: &random) }
            series.append(BlockSeries(labels: [("__name__", "random"), ("k", String(k))],
                                      chunks: [EncodedChunk(minTime: Self.base, maxTime: Self.base + 1, bytes: bytes)]))
        }
        let meta = try BlockWriter.write(series: series, minTime: Self.base, maxTime: Self.base + 2, into: directory, tenant: "t")
        let reader = try BlockReader(directory: directory + "/" + meta.ulid)
        var skipped: [BlockError] = []
        _ = try reader.select([], minTime: .min, maxTime: .max) { skipped.append($0) }
        XCTAssertTrue(skipped.allSatisfy { $0.section == "chunks/000001" }, "\(skipped.prefix(3))")
        XCTAssertThrowsError(try BlockVerifier.verify(reader))
    }

    // MARK: tombstones

    func testCorruptTombstoneRecordsBehindAValidChecksumAreReported() throws {
        var random = SeededGenerator(test: "CorruptionTests tombstones")
        var tombstones = Tombstones()
        tombstones.add(1, DeletedInterval(minTime: 10, maxTime: 20))
        tombstones.add(7, DeletedInterval(minTime: .min, maxTime: .max))
        let pristine = tombstones.encoded()
        let crafted: [[UInt8]] = [
            [UInt8](repeating: 0xFF, count: 10) + [0x01, 0, 0],          // 11-byte varint ref
            [0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0],                       // ref past UInt32
            [0x01, 0x04, 0x02],                                         // reversed interval
            [0x01, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            [0x01, 0x02],                                               // truncated
        ]
        var files = crafted.map { records in
            var file = BlockWriter.tombstonesMagic + [1] + records + [0, 0, 0, 0]
            Checksummed.fixed(5..<file.count - 4).fixUp(&file)
            return file
        }
        for _ in 0..<500 {
            var file = pristine
            let offset = Int.random(in: 0..<file.count, using: &random)
            file[offset] = Pattern.allCases.randomElement(using: &random)!.apply(file[offset])
            if Bool.random(using: &random) { Checksummed.fixed(5..<file.count - 4).fixUp(&file) }
            files.append(file)
        }
        files += (0..<9).map { Array(pristine.prefix($0)) }
        for file in files {
            do {
                _ = try Tombstones.decode(file, block: "b")
            } catch let error as BlockError {
                XCTAssertEqual(error.section, "tombstones")
            }
        }
    }

    // MARK: WAL

    func testCorruptWALSegmentKeepsItsValidPrefix() throws {
        var random = SeededGenerator(test: "CorruptionTests WAL")
        let directory = try temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        let store = directory + "/store"
        let db = try TenantDatabase.open(directory: store, tenant: "t")
        for batch in 0..<40 {
            for name in ["a", "b", "c"] {
                try appendSamples(db, name, (0..<20).map { (Self.base + Int64(batch * 20 + $0) * 5_000, UInt64(batch * 7 + $0)) })
            }
        }
        try db.close()
        let segment = "/wal/" + WALFormat.segmentName(0)
        let pristine = try FileSystem.readFile(store + segment)
        let written = (pristine.lastIndex { $0 != 0 } ?? 0) + 1
        let everything = try samples(in: store)
        XCTAssertEqual(everything.values.reduce(0) { $0 + $1.count }, 3 * 40 * 20)

        let copy = directory + "/copy", prefix = directory + "/prefix"
        for round in 0..<150 {
            // Most of a segment is page padding: aim most corruptions at the written bytes.
            let offset = Int.random(in: 0..<(round % 4 == 0 ? pristine.count : written), using: &random)
            var bytes = pristine
            bytes[offset] = Pattern.allCases.randomElement(using: &random)!.apply(bytes[offset])
            guard bytes != pristine else { continue }
            try makeStore(copy, segment: bytes)
            try makeStore(prefix, segment: Array(pristine[..<offset]))

            let corrupted = try TenantDatabase.open(directory: copy, tenant: "t", readOnly: true)
            XCTAssertFalse(corrupted.replay.problems.isEmpty, "offset \(offset): corruption not reported")
            let read = try samples(in: copy)
            let kept = try samples(in: prefix)
            for (series, all) in everything {
                let got = read[series] ?? []
                XCTAssertTrue(Set(got.map(\.timestamp)).isSubset(of: Set(all.map(\.timestamp))), "offset \(offset): invented samples")
                XCTAssertGreaterThanOrEqual(got.count, kept[series]?.count ?? 0, "offset \(offset): lost part of the valid prefix")
            }
            if round % 10 == 0 {
                // A writable open cuts the bad tail (kept in quarantine) and reads the same.
                let repaired = try TenantDatabase.open(directory: copy, tenant: "t")
                try repaired.close()
                XCTAssertEqual(try samples(in: copy).mapValues(\.count), read.mapValues(\.count), "offset \(offset)")
            }
        }
    }

    func testWALRecordsBehindAValidChecksumNeverTrapTheDecoder() throws {
        var random = SeededGenerator(test: "CorruptionTests WAL records")
        var encoder = WALRecordEncoder()
        encoder.beginSeries()
        encoder.addSeries(ref: 1, labels: [("__name__", "up"), ("job", "a")])
        encoder.addSeries(ref: 2, labels: [("__name__", "up"), ("job", "b")])
        let series = encoder.bytes
        encoder.beginSamples(baseRef: 1, baseTimestamp: Self.base)
        for k in 0..<10 { encoder.addSample(ref: UInt64(1 + k % 2), timestamp: Self.base + Int64(k) * 15_000, valueBits: UInt64(k)) }
        let samples = encoder.bytes
        encoder.tombstones([(1, DeletedInterval(minTime: Self.base, maxTime: Self.base + 15_000))])
        let tombstones = encoder.bytes
        for _ in 0..<3000 {
            var record = [series, samples, tombstones].randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let offset = Int.random(in: 1..<record.count, using: &random)
                record[offset] = Pattern.allCases.randomElement(using: &random)!.apply(record[offset])
            }
            if Bool.random(using: &random) { record = Array(record.prefix(Int.random(in: 1...record.count, using: &random))) }
            record.withUnsafeBytes { bytes in
                var decoder = WALRecordDecoder(bytes)
                do throws(WALRecordError) {
                    switch decoder.type {
                    case WALRecordType.series.rawValue: try decoder.forEachSeries { _, _ in }
                    case WALRecordType.samples.rawValue: try decoder.forEachSample { _, _, _ in }
                    default: try decoder.forEachTombstone { _, _ in }
                    }
                } catch {
                    XCTAssertTrue(error.description.hasPrefix("malformed WAL record"), error.description)
                }
            }
        }
    }

    func testReplayOfWellFramedRecordsWithExtremeValuesNeverTraps() throws {
        let directory = try temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        var encoder = WALRecordEncoder()
        func series(_ ref: UInt64, _ labels: [(String, String)] = [("__name__", "up")]) -> [UInt8] {
            encoder.beginSeries()
            encoder.addSeries(ref: ref, labels: labels)
            return encoder.bytes
        }
        func samples(_ ref: UInt64, _ timestamps: [Int64]) -> [UInt8] {
            encoder.beginSamples(baseRef: ref, baseTimestamp: timestamps[0])
            for t in timestamps { encoder.addSample(ref: ref, timestamp: t, valueBits: 1) }
            return encoder.bytes
        }
        func tombstone(_ ref: UInt64, _ interval: DeletedInterval) -> [UInt8] {
            encoder.tombstones([(ref, interval)])
            return encoder.bytes
        }
        let farthest = StorableTime.range.upperBound
        let cases: [(what: String, records: [[UInt8]], reported: Bool)] = [
            ("series ref 2^64-1", [series(.max), samples(.max, [Self.base])], true),
            ("series ref 0", [series(0), samples(0, [Self.base])], false),
            ("no labels", [series(1, []), samples(1, [Self.base])], false),
            ("a label twice, empty and invalid UTF-8", [series(1, [("a", ""), ("a", "\u{FFFD}")]), samples(1, [Self.base])], false),
            ("timestamp 2^63-1", [series(1), samples(1, [.max])], true),
            ("timestamp -2^63", [series(1), samples(1, [.min])], true),
            ("timestamps -2^63+1 and 2^63-2", [series(1), samples(1, [.min + 1, .max - 1])], true),
            ("timestamps across the whole range in two series", [series(1), series(2, [("__name__", "b")]), samples(1, [.min + 1]), samples(2, [.max - 1])], true),
            ("timestamps ±2^53", [series(1), series(2, [("__name__", "b")]), samples(1, [-farthest]), samples(2, [farthest])], false),
            ("tombstone over everything", [series(1), samples(1, [Self.base]), tombstone(1, DeletedInterval(minTime: .min, maxTime: .max))], false),
            ("tombstone of an unknown series", [tombstone(.max, DeletedInterval(minTime: .max, maxTime: .min))], false),
        ]
        for (what, records, reported) in cases {
            let store = directory + "/" + what.filter(\.isLetter)
            try FileSystem.makeDirectory(store)
            try FileSystem.makeDirectory(store + "/wal")
            let writer = WALWriter(directory: store + "/wal", segmentIndex: 0)
            _ = try writer.log(records)
            try writer.finishSegment()
            let replayed = try TenantDatabase.open(directory: store, tenant: "t", readOnly: true)
            _ = try replayed.select([])
            XCTAssertEqual(!replayed.replay.problems.isEmpty, reported, "\(what): \(replayed.replay.problems)")
            let db = try TenantDatabase.open(directory: store, tenant: "t")
            let samples = try db.select([]).reduce(0) { $0 + $1.samples.count }
            try db.close()
            // Blocks cut from what replayed open again, holding the same.
            let reopened = try TenantDatabase.open(directory: store, tenant: "t", readOnly: true)
            XCTAssertEqual(reopened.replay.unloadedBlocks, [], what)
            XCTAssertEqual(try reopened.select([]).reduce(0) { $0 + $1.samples.count }, samples, what)
        }
    }

    /// A tenant directory at `path` holding only a WAL of `segment`.
    private func makeStore(_ path: String, segment: [UInt8]) throws {
        try FileSystem.removeTree(path)
        try FileSystem.makeDirectory(path)
        try FileSystem.makeDirectory(path + "/wal")
        try FileSystem.writeFile(path + "/wal/" + WALFormat.segmentName(0), segment)
    }

    private func samples(in store: String) throws -> [Labels: [Sample]] {
        let db = try TenantDatabase.open(directory: store, tenant: "t", readOnly: true)
        return Dictionary(uniqueKeysWithValues: try db.select([]).map { ($0.labels, $0.samples) })
    }
}

/// A block of 12 series in 3 chunks each, with a tombstone meta.json counts, so that it verifies
/// clean; `corrupt` changes one of its files, runs a check, then puts the file back.
private final class BlockFixture {
    let root: String
    let block: String
    /// Every file's bytes as written.
    let pristine: [String: [UInt8]]
    let reader: BlockReader
    /// The index's six TOC offsets.
    let toc: [Int]
    /// Checksummed stretches of each file, so a change inside one can have its checksum fixed up.
    let checksummed: [String: [Checksummed]]

    init() throws {
        root = try temporaryDirectory()
        var series: [BlockSeries] = []
        for k in 0..<CorruptionTests.seriesCount {
            let labels = [("__name__", "metric"), ("instance", "i\(k % 4)"), ("job", k % 2 == 0 ? "a" : "b"), ("series", "s\(k)")]
            let chunks = (0..<CorruptionTests.chunksPerSeries).map { c in
                var chunk = XORChunk()
                let first = CorruptionTests.base + Int64(c * CorruptionTests.samplesPerChunk) * 15_000
                for s in 0..<CorruptionTests.samplesPerChunk {
                    chunk.append(timestamp: first + Int64(s) * 15_000 + Int64(s % 3), valueBits: (Double(k * 1000 + s) / 7).bitPattern)
                }
                return EncodedChunk(minTime: first, maxTime: first + Int64(CorruptionTests.samplesPerChunk - 1) * 15_000 + 2, bytes: chunk.bytes)
            }
            series.append(BlockSeries(labels: labels, chunks: chunks))
        }
        let end = CorruptionTests.base + Int64(CorruptionTests.chunksPerSeries * CorruptionTests.samplesPerChunk) * 15_000
        var meta = try BlockWriter.write(series: series, minTime: CorruptionTests.base, maxTime: end, into: root, tenant: "t")
        block = root + "/" + meta.ulid
        let written = try BlockReader(directory: block)
        // Five samples of the first series deleted.
        var tombstones = Tombstones()
        tombstones.add(written.seriesRefs[0], DeletedInterval(minTime: CorruptionTests.base, maxTime: CorruptionTests.base + 4 * 15_000 + 2))
        meta.stats.numTombstones = 1
        meta.tally = BlockMeta.Tally(deletedSamples: 5)
        try FileSystem.writeFile(block + "/tombstones", tombstones.encoded())
        try FileSystem.writeFile(block + "/meta.json", try meta.encoded())
        reader = try BlockReader(directory: block)
        try BlockVerifier.verify(reader)

        var pristine: [String: [UInt8]] = [:]
        for file in ["index", "chunks/000001", "tombstones", "meta.json"] { pristine[file] = try FileSystem.readFile(block + "/" + file) }
        self.pristine = pristine
        let index = pristine["index"]!
        let tocStart = index.count - BlockReader.tocSize
        toc = (0..<6).map { Int(readBigEndian(index, at: tocStart + 8 * $0, width: 8)) }
        var indexSections: [Checksummed] = [.fixed(tocStart..<index.count - 4),
                                            .lengthPrefixed(start: toc[0], varintLength: false, leading: 0),
                                            .lengthPrefixed(start: toc[5], varintLength: false, leading: 0)]
        indexSections += reader.postingsOffsets.values.flatMap { $0.map { Checksummed.lengthPrefixed(start: $0.offset, varintLength: false, leading: 0) } }
        indexSections += reader.seriesRefs.map { Checksummed.lengthPrefixed(start: Int($0) * 16, varintLength: true, leading: 0) }
        var chunkSections: [Checksummed] = []
        for ref in reader.seriesRefs {
            for chunk in try reader.series(ref).chunks { chunkSections.append(.lengthPrefixed(start: Int(chunk.ref & 0xffff_ffff), varintLength: true, leading: 1)) }
        }
        checksummed = ["index": indexSections, "chunks/000001": chunkSections,
                       "tombstones": [.fixed(5..<pristine["tombstones"]!.count - 4)], "meta.json": []]
    }

    deinit { try? FileSystem.removeTree(root) }

    var allPostingsOffset: UInt64 { UInt64(toc[4]) }

    /// Runs `body` with `file` holding `bytes`, then restores it.
    func withFile(_ file: String, _ bytes: [UInt8], _ body: () throws -> Void) throws {
        try FileSystem.writeFile(block + "/" + file, bytes)
        defer { try? FileSystem.writeFile(block + "/" + file, pristine[file]!) }
        try body()
    }

    /// Runs `check` with byte `offset` of `file` changed by `pattern`, the checksum around it fixed
    /// up if asked (and there is one); a change that changes nothing is skipped.
    func corrupt(_ file: String, at offset: Int, _ pattern: CorruptionTests.Pattern, fixChecksum: Bool,
                 _ check: (String) -> Void) throws {
        var bytes = pristine[file]!
        bytes[offset] = pattern.apply(bytes[offset])
        if fixChecksum, let section = checksummed[file]?.first(where: { $0.span(in: pristine[file]!).contains(offset) }) {
            section.fixUp(&bytes)
        }
        guard bytes != pristine[file]! else { return }
        try withFile(file, bytes) { check("\(file) byte \(offset) \(pattern)\(fixChecksum ? " checksum fixed up" : "")") }
    }

    /// Opens, reads every series and chunk, selects through postings, tolerantly selects, and
    /// verifies; with `importing`, also imports. Each either works or throws a BlockError, and a
    /// tenant holding the block opens and reads tolerantly without failing.
    func readEverything(_ what: String, importing: Bool) {
        do {
            let reader = try BlockReader(directory: block)
            for ref in reader.seriesRefs {
                for chunk in try reader.series(ref).chunks { try reader.forEachSample(inChunk: chunk.ref) { _, _ in true } }
            }
            _ = try reader.select([try LabelMatcher("job", .equal, "a"), try LabelMatcher("instance", .regex, "i[12]")],
                                  minTime: .min, maxTime: .max)
            _ = try reader.valueBits(labels: [("__name__", "metric"), ("instance", "i0"), ("job", "a"), ("series", "s0")],
                                     at: CorruptionTests.base + 15_000 * 50)
            try BlockVerifier.verify(reader)
        } catch is BlockError {
        } catch {
            XCTFail("\(what): \(type(of: error)) \(error)")
        }
        if importing {
            let tenant = root + "/imported"
            do {
                _ = try BlockImporter.importBlock(block, tenantDirectory: tenant, tenant: "t")
            } catch is BlockError {
            } catch {
                XCTFail("\(what): import: \(type(of: error)) \(error)")
            }
            try? FileSystem.removeTree(tenant)
        }
        do {
            let db = try TenantDatabase.open(directory: root, tenant: "t", readOnly: true)
            _ = try db.select([], minTime: .min, maxTime: .max) { _ in }
        } catch {
            XCTFail("\(what): tenant read: \(error)")
        }
    }

    /// Asserts that opening or reading the block with `file` holding `bytes` fails naming `section`.
    func expectError(replacing file: String, with bytes: [UInt8], section: String, _ what: String = "",
                     line: UInt = #line) throws {
        try withFile(file, bytes) {
            do {
                let reader = try BlockReader(directory: block)
                for ref in reader.seriesRefs {
                    for chunk in try reader.series(ref).chunks { try reader.forEachSample(inChunk: chunk.ref) { _, _ in true } }
                }
                XCTFail("\(what): no error", line: line)
            } catch let error as BlockError {
                XCTAssertEqual(error.section, section, "\(what): \(error)", line: line)
                XCTAssertEqual(error.block, URL(fileURLWithPath: block).lastPathComponent, line: line)
            }
            XCTAssertThrowsError(try BlockVerifier.verify(directory: block), what, line: line)
        }
    }

    /// The index with its postings offset table replaced by `count` and `entries` (the TOC moves
    /// up behind it; its offsets stay valid).
    func index(withPostingsOffsetTable count: UInt32, _ entries: [UInt8]) -> [UInt8] {
        let index = pristine["index"]!
        var out = Array(index[..<toc[5]])
        let body = bigEndian(count) + entries
        out += bigEndian(UInt32(body.count)) + body + bigEndian(CRC32C.checksum(body))
        return out + index[(index.count - BlockReader.tocSize)...]
    }

    /// The index with the last series' entry replaced by one of `body`: the new entry goes after
    /// the postings offset table (the TOC moves up behind it) and the all-postings list's last ref
    /// points to it, that list's checksum fixed up.
    func index(withLastSeries body: [UInt8]) -> [UInt8] {
        let index = pristine["index"]!
        var out = Array(index[..<(index.count - BlockReader.tocSize)])
        while out.count % 16 != 0 { out.append(0) }
        let ref = UInt32(out.count / 16)
        out.appendUvarint(UInt64(body.count))
        out += body + bigEndian(CRC32C.checksum(body))
        out += index[(index.count - BlockReader.tocSize)...]
        let lastRef = toc[4] + 8 + 4 * (CorruptionTests.seriesCount - 1)
        out.replaceSubrange(lastRef..<lastRef + 4, with: bigEndian(ref))
        Checksummed.lengthPrefixed(start: toc[4], varintLength: false, leading: 0).fixUp(&out)
        return out
    }
}

/// A stretch of a file under a CRC32C stored right after it.
enum Checksummed {
    /// The checksum covers `range`.
    case fixed(Range<Int>)
    /// A length (u32 or uvarint) at `start`; the checksum covers `leading` bytes after it (a
    /// chunk's encoding byte) and then the counted bytes.
    case lengthPrefixed(start: Int, varintLength: Bool, leading: Int)

    /// Where the checksum covers and the checksum itself lie in `bytes`, if inside them.
    private func covered(in bytes: [UInt8]) -> Range<Int>? {
        switch self {
        case let .fixed(range):
            return range.upperBound + 4 <= bytes.count ? range : nil
        case let .lengthPrefixed(start, varintLength, leading):
            return bytes.withUnsafeBytes { raw -> Range<Int>? in
                var c = ByteCursor(raw, from: start)
                guard let length = varintLength ? c.uvarint() : c.u32().map(UInt64.init),
                      let range = c.take(length &+ UInt64(leading)), c.u32() != nil else { return nil }
                return range
            }
        }
    }

    /// The whole stretch in `bytes`: length, covered bytes and checksum.
    func span(in bytes: [UInt8]) -> Range<Int> {
        guard let covered = covered(in: bytes) else { return 0..<0 }
        switch self {
        case let .fixed(range): return range.lowerBound..<covered.upperBound + 4
        case let .lengthPrefixed(start, _, _): return start..<covered.upperBound + 4
        }
    }

    /// Writes the checksum of the covered bytes as a changed length now places them, if inside `bytes`.
    func fixUp(_ bytes: inout [UInt8]) {
        guard let covered = covered(in: bytes) else { return }
        bytes.replaceSubrange(covered.upperBound..<covered.upperBound + 4, with: bigEndian(CRC32C.checksum(Array(bytes[covered]))))
    }
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    var out: [UInt8] = []
    out.appendBigEndian(value)
    return out
}

private func bigEndian(_ value: UInt64) -> [UInt8] {
    var out: [UInt8] = []
    out.appendBigEndian(value)
    return out
}

private func readBigEndian(_ bytes: [UInt8], at offset: Int, width: Int) -> UInt64 {
    bytes[offset..<offset + width].reduce(0) { $0 << 8 | UInt64($1) }
}
