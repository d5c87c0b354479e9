import XCTest
@testable import TallyQuery
import TallyStorage

/// A range query moves one window per series across its steps, dropping samples as they leave
/// and compacting what it keeps; an instant query reads each window afresh. Both must give the
/// same value at every step, bit for bit.
final class RangeWindowTests: XCTestCase {
    func testSlidingWindowsAnswerAsFreshOnes() throws {
        // Long runs (windows of hundreds of samples that lose one a step), a gap, staleness
        // markers inside windows, and a reset.
        let script = try PromQLScript.loaded((0..<4).map { s in "m{s=\"\(s)\"} 0+\(s + 1)x400 _x\(s * 20 + 5) stale 7+0.\(s)x300 stale 3 1 4 1 5 9 2 6" })
        let engine = QueryEngine()
        let queries = ["avg_over_time(m[3h])", "count_over_time(m[2h])", "rate(m[90m])", "max_over_time(m[1h])",
                       "sum_over_time(m[7m])", "last_over_time(m[11m] offset 13m)", "quantile_over_time(0.25, m[2h])",
                       "avg_over_time(m[1h:1m])"]
        let end: Int64 = 760 * 60_000
        for query in queries {
            for (start, step) in [(Int64(0), Int64(60_000)), (Int64(25_000), Int64(240_000))] {
                guard case .success(let range) = engine.rangeQuery(query, start: start, end: end, step: step, database: script.tenant),
                      case .matrix(let series) = range.value else { return XCTFail("\(query): no matrix") }
                var fromRange: [String: UInt64] = [:]
                for s in series { for p in s.points { fromRange["\(s.labels) @\(p.timestamp)"] = p.value.bitPattern } }
                var fromInstants: [String: UInt64] = [:]
                for t in stride(from: start, through: end, by: Int(step)) {
                    guard case .success(let instant) = engine.instantQuery(query, time: t, database: script.tenant),
                          case .vector(let samples) = instant.value else { return XCTFail("\(query) at \(t): no vector") }
                    for sample in samples { fromInstants["\(sample.labels) @\(t)"] = sample.value.bitPattern }
                }
                XCTAssertGreaterThan(fromRange.count, 100, query)
                XCTAssertEqual(fromRange, fromInstants, "\(query) from \(start) by \(step)")
            }
        }
    }
}
