import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Timestamps at the edges of Int64 never reach arithmetic that can trap: appends refuse them, and a
/// WAL that already holds them (written by an older version) replays with them skipped and counted.
final class TimestampBoundsTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try temporaryDirectory() + "/tenant" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }

    func testAppendsOutsideTheStorableRangeAreRefusedAndTheTenantKeepsWorking() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        let edge = StorableTime.range
        XCTAssertEqual(try appendSamples(db, "m", [(.max, 1), (.min + 1, 2), (edge.upperBound + 1, 3), (edge.lowerBound - 1, 4)]),
                       [.outOfBounds, .outOfBounds, .outOfBounds, .outOfBounds])
        // The first stored sample of the tenant at the oldest storable time, then a normal one: the
        // late-sample window arithmetic (newest minus window) stays in range.
        XCTAssertEqual(try appendSamples(db, "m", [(edge.lowerBound, 5)]), [.accepted])
        XCTAssertEqual(try appendSamples(db, "m", [(1_700_000_000_000, 6), (edge.upperBound, 7)]), [.accepted, .accepted])
        XCTAssertEqual(try appendSamples(db, "m", [(edge.lowerBound + 1, 8)]), [.tooOld])
        try db.close()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try reopened.select([try LabelMatcher("__name__", .equal, "m")]).first?.samples.map(\.valueBits), [5, 6, 7])
        try reopened.close()
    }

    func testReplaySkipsAndCountsUnstorableSamplesAlreadyInTheWAL() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try appendSamples(db, "m", [(1_000, 1)]), [.accepted])
        try db.close()
        // What an older version acknowledged: one series, then samples at the very edges of Int64.
        let segments = try WALFormat.segments(in: directory + "/wal")
        let writer = WALWriter(directory: directory + "/wal", segmentIndex: (segments.last ?? 0) + 1)
        var encoder = WALRecordEncoder()
        encoder.beginSeries()
        encoder.addSeries(ref: 900, labels: [("__name__", "edge")])
        let series = encoder.bytes
        encoder.beginSamples(baseRef: 900, baseTimestamp: .max)
        encoder.addSample(ref: 900, timestamp: .max, valueBits: 1)
        encoder.addSample(ref: 900, timestamp: .min + 1, valueBits: 2)
        encoder.addSample(ref: 900, timestamp: 2_000, valueBits: 3)
        _ = try writer.log([series, encoder.bytes])
        try writer.finishSegment()

        let replayed = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(replayed.replay.unstorableSamples, 2)
        XCTAssertEqual(try replayed.select([try LabelMatcher("__name__", .equal, "edge")]).first?.samples.map(\.valueBits), [3])
        XCTAssertEqual(try appendSamples(replayed, "edge", [(3_000, 4)]), [.accepted])
        try replayed.cutBlock()
        try replayed.close()
    }

    /// One series' samples in descending time order, as one batch: each late sample is checked
    /// against the batch in constant time, so this is linear (it took 16 s for 200,000 before).
    func testDescendingSamplesInOneBatchCostAboutAsMuchAsAscendingOnes() throws {
        let count: Int64 = 200_000
        let base: Int64 = 1_700_000_000_000
        func seconds(_ samples: [(Int64, UInt64)], _ name: String) throws -> Double {
            let db = try TenantDatabase.open(directory: directory + "-" + name, tenant: name)
            defer { try? db.close() }
            let clock = ContinuousClock()
            let started = clock.now
            let verdicts = try appendSamples(db, "m", samples)
            let elapsed = clock.now - started
            XCTAssertEqual(verdicts.filter { $0 == .accepted }.count, samples.count, name)
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        let ascending = try seconds((0..<count).map { (base + $0, UInt64($0)) }, "ascending")
        let descending = try seconds((0..<count).map { (base + count - $0, UInt64($0)) }, "descending")
        print("200,000 samples in one batch: ascending \(ascending) s, descending \(descending) s")
        XCTAssertLessThan(descending, max(10 * ascending, 1.0), "late samples must cost a constant factor more, not a factor of n")
    }
}
