import Foundation
import TallyQuery
import TallyStorage
import XCTest

/// A query reads the tenant as it was when the query started: a compaction and a retention pass
/// that run meanwhile, rewriting and removing its blocks, change nothing in its answer.
final class QuerySnapshotTests: XCTestCase {
    func testCompactionAndRetentionDuringAQueryChangeNothingItReads() throws {
        var template = Array("/tmp/tally-snapshot-XXXXXX".utf8CString)
        let directory = String(cString: try XCTUnwrap(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let db = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(syncPolicy: .interval(.seconds(60))))
        defer { try? db.close() }
        let minute: Int64 = 60_000, hour = 60 * minute
        let writer = SeriesWriter(db)
        for node in ["a", "b", "c"] {
            try writer.append(["__name__": "node_total_hourly_cost", "node": node], (0..<(14 * 60)).map { (Int64($0) * minute, 1.0) })
        }
        while try !db.cutBlock().isEmpty {}
        XCTAssertGreaterThanOrEqual(db.blockMetas.count, 5, "blocks to compact")

        let engine = QueryEngine()
        let query = "sum by (node) (sum_over_time(node_total_hourly_cost[14h]))"
        let time = 14 * hour - minute
        func values(_ result: Result<QueryResult, QueryError>) throws -> [String: Double] {
            guard case .vector(let samples) = try result.get().value else { return [:] }
            return Dictionary(uniqueKeysWithValues: samples.map { ($0.labels.description, $0.value) })
        }
        let before = try values(engine.instantQuery(query, time: time, database: db))
        XCTAssertEqual(before, [#"{node="a"}"#: 840, #"{node="b"}"#: 840, #"{node="c"}"#: 840])

        // The query's snapshot is taken, then maintenance runs before it reads anything.
        let querier = db.querier(minTime: .min, maxTime: .max)
        let rangeBefore = try engine.rangeQuery(query, start: time - 2 * hour, end: time, step: hour, querier: querier).get()
        XCTAssertEqual(try db.compact().failures, [])
        XCTAssertFalse(try db.applyRetention(keep: 3 * hour).isEmpty)

        XCTAssertEqual(try values(engine.instantQuery(query, time: time, querier: querier)), before)
        guard case .matrix(let a) = rangeBefore.value,
              case .matrix(let b) = try engine.rangeQuery(query, start: time - 2 * hour, end: time, step: hour, querier: querier).get().value else {
            return XCTFail("range queries answer matrices")
        }
        XCTAssertEqual(a.map(\.points), b.map(\.points))
        XCTAssertNotEqual(try values(engine.instantQuery(query, time: time, database: db)), before, "a query started after retention sees less")
    }
}
