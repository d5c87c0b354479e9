import TallyTestSupport
import XCTest
@testable import TallyStorage

/// The thread that reads WAL files ahead of a replay hands over every record once, in file and
/// record order, each file's end after its records, and stops at a file it cannot open.
final class WALReadAheadTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws { root = try temporaryDirectory() }
    override func tearDown() { try? FileSystem.removeTree(root) }

    /// Writes `count` records numbered from `first` (4 bytes each, big-endian) as one segment.
    private func segment(_ index: Int, records first: Int, count: Int) throws -> String {
        let writer = WALWriter(directory: root, segmentIndex: index)
        let records = (first..<first + count).map { n in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: n >> $0) } }
        _ = try writer.log(records)
        try writer.finishSegment()
        return root + "/" + WALFormat.segmentName(index)
    }

    /// Every event until `.finished`, records as their numbers.
    private func events(_ reader: WALReadAhead<Int>) -> [String] {
        var seen: [String] = []
        while true {
            switch reader.next() {
            case let .records(records): seen += records.map { "\($0)" }
            case let .fileEnd(path, end): seen.append("end \(path.split(separator: "/").last!) \(end)")
            case let .failed(error): seen.append("failed \(error.path)")
            case .finished: return seen
            }
        }
    }

    private static func number(_ record: UnsafeRawBufferPointer) -> Int { record.reduce(0) { $0 << 8 | Int($1) } }

    func testRecordsComeInOrderAcrossBatchesAndFiles() throws {
        let paths = [try segment(0, records: 0, count: 7), try segment(1, records: 7, count: 0), try segment(2, records: 7, count: 50)]
        // Batches cut by count, and by bytes (records are 4 bytes).
        for (batch, batchBytes, depth) in [(1, 1 << 18, 1), (3, 1 << 18, 1), (32, 1 << 18, 4), (100, 1 << 18, 2), (100, 8, 1), (100, 10, 2)] {
            for mapped in [true, false] {
                let reader = WALReadAhead(paths: paths, mapped: mapped, batch: batch, batchBytes: batchBytes, depth: depth, decode: Self.number)
                XCTAssertEqual(events(reader), (0..<7).map { "\($0)" } + ["end 00000000 clean", "end 00000001 clean"]
                    + (7..<57).map { "\($0)" } + ["end 00000002 clean"], "batch \(batch), \(batchBytes) bytes, depth \(depth), mapped \(mapped)")
            }
        }
    }

    func testAFileThatCannotBeOpenedEndsTheReading() throws {
        let paths = [try segment(0, records: 0, count: 3), root + "/00000001", try segment(2, records: 3, count: 3)]
        let reader = WALReadAhead(paths: paths, mapped: true, batch: 2, depth: 1, decode: Self.number)
        XCTAssertEqual(events(reader), ["0", "1", "2", "end 00000000 clean", "failed \(root)/00000001"])
    }

    func testStoppedReadingStillFinishes() throws {
        let paths = try (0..<20).map { try segment($0, records: $0 * 100, count: 100) }
        let reader = WALReadAhead(paths: paths, mapped: true, batch: 4, depth: 1, decode: Self.number)
        guard case let .records(first) = reader.next() else { return XCTFail("no records first") }
        XCTAssertEqual(first, [0, 1, 2, 3])
        reader.stop()
        let rest = events(reader)
        XCTAssertLessThan(rest.filter { !$0.hasPrefix("end") }.count, 1996, "reading went on after stop()")
        // Whatever still came is in order: the reading was cut short, not shuffled.
        let numbers = rest.compactMap { Int($0) }
        XCTAssertEqual(numbers, numbers.sorted())
    }

    func testBatchesAreCutByTheBytesOfTheirRecords() throws {
        let paths = [try segment(0, records: 0, count: 10)]
        let reader = WALReadAhead(paths: paths, mapped: true, batch: 32, batchBytes: 12, depth: 1, decode: Self.number)
        var batches: [[Int]] = []
        while true {
            switch reader.next() {
            case let .records(records): batches.append(records)
            case .finished: return XCTAssertEqual(batches, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]])
            default: continue
            }
        }
    }
}
