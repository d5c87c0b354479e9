import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Snappy-compressed WAL records (Prometheus' `wlog` with compression on): written when smaller,
/// read either way, corruption in them reported and cut like any other.
final class WALCompressionTests: XCTestCase {
    private static let base: Int64 = 1_795_382_000_000
    private var root = ""

    override func setUpWithError() throws { root = try temporaryDirectory() }
    override func tearDown() { try? FileSystem.removeTree(root) }

    func testWriterCompressesWhatShrinksAndTheReaderReturnsEveryRecord() throws {
        var random = SeededGenerator(test: "WALCompressionTests records")
        let words = ["node", "pod", "namespace", "container", "cpu", "memory", "kube", "cost", "0", "15000", "instance"]
        let text = Array((0..<60_000).map { _ in words.randomElement(using: &random)! }.joined(separator: " ").utf8)
        let records: [(bytes: [UInt8], compressible: Bool)] = [
            ([2, 0, 0, 0, 1], false),                                            // too short to shrink
            (Array(repeating: 7, count: 100_000), true),                         // one fragment compressed
            ((0..<80_000).map { _ in UInt8.random(in: 0...255, using: &random) }, false), // bigger compressed: kept
            (text, true),                                                        // compressed over several pages
            ([3], false),
        ]
        for compress in [true, false] {
            let directory = root + "/\(compress)"
            try FileSystem.makeDirectory(directory)
            let writer = WALWriter(directory: directory, segmentIndex: 0, compress: compress)
            _ = try writer.log(records.map(\.bytes))
            try writer.finishSegment()
            let bytes = try FileSystem.readFile(directory + "/" + WALFormat.segmentName(0))
            var read: [[UInt8]] = []
            let end = bytes.withUnsafeBytes { WALSegmentReader.read($0) { read.append(Array($0)) } }
            XCTAssertEqual(end, .clean)
            XCTAssertEqual(read, records.map(\.bytes), "compress: \(compress)")
            // Only records that shrink are compressed, and all fragments of a record carry its flag.
            XCTAssertEqual(Self.recordFlags(bytes).map(\.compressed), records.map { compress && $0.compressible }, "compress: \(compress)")
            if compress {
                XCTAssertGreaterThan(Self.recordFlags(bytes)[3].fragments, 2, "a compressed record spans pages")
                XCTAssertLessThan(bytes.count, records.reduce(0) { $0 + $1.bytes.count } - 100_000)
            }
        }
    }

    func testCompressedWALReplaysExactlyAsAnUncompressedOne() throws {
        var random = SeededGenerator(test: "WALCompressionTests replay")
        // One workload: many series in one batch (a Series record over several pages), in-order and
        // late samples, a deletion (a Tombstones record), a block cut (a checkpoint), restarts.
        let ids = (0..<2_000).map { _ in String(UInt64.random(in: 0...UInt64.max, using: &random), radix: 36) }
        let values = (0..<4_000).map { _ in UInt64.random(in: 0...UInt64.max, using: &random) }
        var walBytes: [Bool: Int] = [:]
        func run(_ db: TenantDatabase, round: Int, compress: Bool) throws {
            let offset = Self.base + Int64(round) * 3_600_000
            try appendMany(db, ids: ids, timestamp: offset, values: values)
            let inOrder = (0..<200).map { k -> (Int64, UInt64) in (offset + Int64(k) * 15_000, values[k]) }
            let late = (0..<20).map { k -> (Int64, UInt64) in (offset + Int64(k) * 15_000 + 7_000, values[k + 200]) }
            let long = (0..<300).map { k -> (Int64, UInt64) in (offset + Int64(k) * 60_000, UInt64(k)) }
            try appendSamples(db, "a", inOrder)
            try appendSamples(db, "a", late)
            // Before any block cut: the WAL holds every record written so far.
            if round == 0 { walBytes[compress] = try BlockCatalog.treeSize(db.directory + "/wal") }
            try appendSamples(db, "b", long)
            _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "a")]],
                                    in: DeletedInterval(minTime: offset + 100_000, maxTime: offset + 400_000))
            _ = try db.cutBlock()
        }
        var stored: [Bool: [SeriesSamples]] = [:]
        for compress in [true, false] {
            let directory = root + "/\(compress)"
            let options = StorageOptions(syncPolicy: .interval(.seconds(3600)), walCompression: compress)
            for round in 0..<3 {
                let db = try TenantDatabase.open(directory: directory, tenant: "t", options: options)
                XCTAssertEqual(db.replay.problems, [], "compress: \(compress), round \(round)")
                try run(db, round: round, compress: compress)
                // Before the flush at close: the WAL (checkpoint and segments) replays what the live
                // tenant holds. (Background cuts make where the checkpoint falls vary from run to run.)
                let live = try db.select([])
                let replayed = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
                XCTAssertEqual(replayed.replay.problems, [], "compress: \(compress), round \(round)")
                XCTAssertGreaterThan(replayed.replay.samples, 0)
                let again = try replayed.select([])
                XCTAssertEqual(again.map(\.labels), live.map(\.labels), "compress: \(compress), round \(round)")
                XCTAssertEqual(again.map(\.samples), live.map(\.samples), "compress: \(compress), round \(round)")
                stored[compress] = again
                try db.close()
            }
            XCTAssertEqual(try FileSystem.listDirectory(directory + "/wal").filter { $0.hasPrefix("checkpoint.") }.count, 1)
        }
        XCTAssertEqual(stored[true]!.count, 2_002)
        XCTAssertEqual(stored[true]!.map(\.labels), stored[false]!.map(\.labels))
        XCTAssertEqual(stored[true]!.map(\.samples), stored[false]!.map(\.samples))
        XCTAssertLessThan(walBytes[true]!, walBytes[false]!)
        // The checkpoint is written compressed too, as Prometheus writes it when its WAL is.
        for compress in [true, false] {
            let wal = root + "/\(compress)/wal"
            let checkpoint = try FileSystem.listDirectory(wal).first { $0.hasPrefix("checkpoint.") }!
            let records = Self.recordFlags(try FileSystem.readFile(wal + "/" + checkpoint + "/" + WALFormat.segmentName(0)))
            XCTAssertEqual(records.contains { $0.compressed }, compress, "compress: \(compress)")
        }
    }

    func testCorruptCompressedRecordIsATypedErrorAndItsTailIsCut() throws {
        let directory = root + "/t"
        let segment = directory + "/wal/" + WALFormat.segmentName(0)
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try appendSamples(db, "a", [(1, 1), (2, 2)])
        try appendSamples(db, "a", [(3, 3)])
        let complete = try db.select([])
        let before = FileSystem.fileSize(segment)
        // Fifty series in one batch: their Series record compresses well, so it is written compressed.
        try appendMany(db, ids: (0..<50).map { "instance-\($0)-of-a-long-and-repetitive-deployment-name" },
                       timestamp: 10, values: Array(0..<50))
        try db.close()

        var bytes = try FileSystem.readFile(segment)
        XCTAssertEqual(bytes[before], WALFormat.snappyFlag | WALFormat.Fragment.full.rawValue, "the Series record is compressed")
        // The snappy length prefix claims one byte more; the fragment's checksum is made right again,
        // so only decompressing finds the fault.
        let length = Int(bytes[before + 1]) << 8 | Int(bytes[before + 2])
        let data = before + WALFormat.headerSize
        var last = data
        while bytes[last] >= 0x80 { last += 1 }
        bytes[last] += 1
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[data..<data + length])) }
        for k in 0..<4 { bytes[before + 3 + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(k))) }
        try FileSystem.writeFile(segment, bytes)

        let readOnly = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(readOnly.replay.corruptions.map(\.file), [segment])
        XCTAssertEqual(readOnly.replay.corruptions.map(\.section), [.compressedRecord])
        XCTAssertEqual(readOnly.replay.corruptions.map(\.offset), [before])
        XCTAssertEqual(readOnly.replay.problems.count, 1)
        XCTAssertTrue(readOnly.replay.problems[0].hasPrefix(segment + ": snappy-compressed record at offset \(before): snappy: "),
                      readOnly.replay.problems[0])
        XCTAssertEqual(try readOnly.select([]).map(\.samples), complete.map(\.samples), "read up to the bad record")
        XCTAssertEqual(try FileSystem.readFile(segment), bytes, "a read-only open changes nothing")

        // A writable open cuts the tail at the bad record, keeps the cut bytes and pads the segment.
        let repaired = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(repaired.replay.corruptions.map(\.section), [.compressedRecord])
        XCTAssertTrue(repaired.replay.problems[0].contains("moved to wal-quarantine/"), repaired.replay.problems[0])
        XCTAssertEqual(try repaired.select([]).map(\.samples), complete.map(\.samples))
        let now = try FileSystem.readFile(segment)
        XCTAssertEqual(now.count, WALFormat.pageSize)
        XCTAssertEqual(Array(now[..<before]), Array(bytes[..<before]))
        XCTAssertTrue(now[before...].allSatisfy { $0 == 0 })
        let quarantined = try FileSystem.listDirectory(directory + "/wal-quarantine")
        XCTAssertEqual(quarantined, ["00000000-offset-\(before)"])
        XCTAssertEqual(try FileSystem.readFile(directory + "/wal-quarantine/" + quarantined[0]), Array(bytes[before...]))
        try appendSamples(repaired, "a", [(4, 4)])
        try repaired.close()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(reopened.replay.problems, [])
        XCTAssertEqual(reopened.replay.corruptions, [])
        XCTAssertEqual(try reopened.select([]).first?.samples.count, 4)
    }

    func testCompressedRecordsThatLieAboutTheirSizeAreCorruptNotAllocated() throws {
        // Valid checksums around snappy data that claims 4 GiB, a flag on only one fragment of a
        // record, and a flagged page terminator: each is corruption in a section of its own.
        let claim: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41]
        let cases: [(what: String, fragments: [(type: UInt8, data: [UInt8])], section: WALCorruption.Section)] = [
            ("claims 4 GiB", [(WALFormat.snappyFlag | 1, claim)], .compressedRecord),
            ("not snappy", [(WALFormat.snappyFlag | 1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80])], .compressedRecord),
            ("flag on the first fragment only", [(WALFormat.snappyFlag | 2, [1, 2]), (4, [3])], .recordFragments),
            ("flag on the last fragment only", [(2, [1, 2]), (WALFormat.snappyFlag | 4, [3])], .recordFragments),
            ("flagged terminator", [(WALFormat.snappyFlag, [1])], .fragmentHeader),
        ]
        for (what, fragments, section) in cases {
            var page: [UInt8] = []
            for fragment in fragments {
                let crc = fragment.data.withUnsafeBytes { CRC32C.checksum($0) }
                page += [fragment.type, 0, UInt8(fragment.data.count)]
                page += (0..<4).map { UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32($0))) }
                page += fragment.data
            }
            page += Array(repeating: 0, count: WALFormat.pageSize - page.count)
            var records = 0
            let end = page.withUnsafeBytes { WALSegmentReader.read($0, file: what) { _ in records += 1 } }
            guard case let .corrupt(validEnd, corruption) = end else { return XCTFail("\(what): \(end)") }
            XCTAssertEqual(validEnd, 0, what)
            XCTAssertEqual(records, 0, what)
            XCTAssertEqual(corruption.file, what)
            XCTAssertEqual(corruption.section, section, "\(what): \(corruption)")
            XCTAssertEqual(corruption.offset, section == .recordFragments ? 9 : 0, "\(what): \(corruption)")
        }
    }

    // MARK: helpers

    /// Each record of a segment: whether its fragments carry the snappy flag (failing the test if
    /// they disagree), and how many fragments it has.
    private static func recordFlags(_ bytes: [UInt8]) -> [(compressed: Bool, fragments: Int)] {
        var records: [(compressed: Bool, fragments: Int)] = []
        var flags: [Bool] = []
        for type in WALSegmentReader.fragmentTypes(bytes) {
            flags.append(type & WALFormat.snappyFlag != 0)
            let kind = type & 7
            if kind == WALFormat.Fragment.full.rawValue || kind == WALFormat.Fragment.last.rawValue {
                XCTAssertEqual(Set(flags).count, 1, "one flag per record")
                records.append((flags[0], flags.count))
                flags = []
            }
        }
        return records
    }
}

/// Appends one sample each to series `{__name__="m", id=<id>}` in one batch.
private func appendMany(_ db: TenantDatabase, ids: [String], timestamp: Int64, values: [UInt64]) throws {
    let name = Array("__name__".utf8), metric = Array("m".utf8), idName = Array("id".utf8)
    let (_, commit) = try db.append { batch in
        for (k, id) in ids.enumerated() {
            let value = Array(id.utf8)
            name.withUnsafeBytes { n in metric.withUnsafeBytes { m in idName.withUnsafeBytes { i in value.withUnsafeBytes { v in
                let handle = [RawLabel(name: n, value: m), RawLabel(name: i, value: v)].withUnsafeBufferPointer { try! batch.series($0) }
                _ = batch.add(handle, timestamp: timestamp, valueBits: values[k % values.count])
            } } } }
        }
    }
    waitDurable(db, commit)
}
