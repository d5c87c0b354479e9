import TallyStorage
import XCTest

/// `CircularExemplarStorage` against Prometheus' `CircularExemplarStorage` rules (tsdb/exemplar.go).
final class ExemplarStorageTests: XCTestCase {
    private func exemplar(_ trace: String, _ value: Double, _ t: Int64) -> Exemplar {
        Exemplar(labels: Labels(["trace_id": trace]), valueBits: value.bitPattern, timestamp: t)
    }

    private let a = Labels(["__name__": "m", "job": "a"]), b = Labels(["__name__": "m", "job": "b"])

    func testDuplicatesAreNoOpsAndOlderExemplarsAreRefused() {
        let storage = CircularExemplarStorage(capacity: 10)
        XCTAssertEqual(storage.add(exemplar("x", 1, 100), to: a), .appended)
        XCTAssertEqual(storage.add(exemplar("x", 1, 100), to: a), .duplicate)
        XCTAssertEqual(storage.add(exemplar("y", 1, 100), to: a), .outOfOrder, "same time, other labels")
        XCTAssertEqual(storage.add(exemplar("x", 2, 99), to: a), .outOfOrder)
        XCTAssertEqual(storage.add(exemplar("x", .nan, 101), to: a), .appended)
        XCTAssertEqual(storage.add(exemplar("x", .nan, 101), to: a), .outOfOrder, "NaN never equals NaN, as in Go")
        XCTAssertEqual(storage.add(exemplar("x", 1, 50), to: b), .appended, "another series has its own order")
        XCTAssertEqual(storage.count, 3)
        XCTAssertEqual(storage.seriesCount, 2)
        let long = Exemplar(labels: Labels(["trace_id": String(repeating: "é", count: 121)]), valueBits: 0, timestamp: 200)
        XCTAssertEqual(storage.add(long, to: a), .labelSetTooLong, "129 characters")
        XCTAssertEqual(CircularExemplarStorage(capacity: 0).add(exemplar("x", 1, 1), to: a), .disabled)
    }

    func testTheRingDropsTheOldestAcrossSeries() {
        let storage = CircularExemplarStorage(capacity: 3)
        XCTAssertEqual(storage.add(exemplar("1", 1, 10), to: a), .appended)
        XCTAssertEqual(storage.add(exemplar("2", 2, 20), to: b), .appended)
        XCTAssertEqual(storage.add(exemplar("3", 3, 30), to: a), .appended)
        XCTAssertEqual(storage.add(exemplar("4", 4, 40), to: b), .appended)  // overwrites a's first
        XCTAssertEqual(storage.count, 3)
        let all = storage.select(start: .min, end: .max, [[]])
        XCTAssertEqual(all.map(\.seriesLabels), [a, b])
        XCTAssertEqual(all.map { $0.exemplars.map(\.timestamp) }, [[30], [20, 40]])
        XCTAssertEqual(storage.add(exemplar("5", 5, 50), to: a), .appended)  // overwrites b's first
        XCTAssertEqual(storage.add(exemplar("6", 6, 60), to: a), .appended)  // overwrites a's 30
        XCTAssertEqual(storage.select(start: .min, end: .max, [[]]).map { $0.exemplars.map(\.timestamp) }, [[50, 60], [40]])
        XCTAssertEqual(storage.add(exemplar("7", 7, 70), to: a), .appended)  // overwrites b's last: b leaves
        XCTAssertEqual(storage.seriesCount, 1)
        XCTAssertEqual(storage.select(start: .min, end: .max, [[]]).map { $0.exemplars.map(\.timestamp) }, [[50, 60, 70]])
    }

    func testSelectByMatcherSetsAndTime() throws {
        let storage = CircularExemplarStorage(capacity: 100)
        for t in stride(from: Int64(0), to: 100, by: 10) {
            _ = storage.add(exemplar("a\(t)", 1, t), to: a)
            _ = storage.add(exemplar("b\(t)", 1, t + 5), to: b)
        }
        let jobA = try LabelMatcher("job", .equal, "a"), jobB = try LabelMatcher("job", .equal, "b")
        XCTAssertEqual(storage.select(start: 20, end: 40, [[jobA]]).map { $0.exemplars.map(\.timestamp) }, [[20, 30, 40]])
        XCTAssertEqual(storage.select(start: 20, end: 40, [[jobA], [jobB]]).map(\.seriesLabels), [a, b])
        XCTAssertEqual(storage.select(start: 200, end: 300, [[jobA]]), [])
        XCTAssertEqual(storage.select(start: 0, end: 100, [[jobA, jobB]]), [], "one set must match whole")
        XCTAssertEqual(storage.select(start: 0, end: 100, [[try LabelMatcher("missing", .equal, "")]]).count, 2, "a missing label matches \"\"")
    }
}
