import XCTest
@testable import TallyQuery
import TallyStorage

/// `absent_over_time` makes a point at every step nothing was found at, so its answer can be far
/// larger than anything it read: those points count against the query's samples limit.
final class AbsentOverTimeLimitTests: XCTestCase {
    /// Under a subquery of a year at a millisecond step, 31.5 billion absent points: the query fails
    /// on the samples limit, holding little memory. The points were gathered with no limit, and the
    /// server stopped on an allocation of 35 GB.
    func testAbsentPointsCountAgainstTheSamplesLimit() throws {
        let script = try PromQLScript.loaded(["m 1x10"])
        let engine = QueryEngine(options: QueryOptions(maxSamples: 50_000))
        let before = try ParallelEvaluationTests.peakResidentBytes(resetting: true)
        let result = engine.instantQuery("count_over_time((absent_over_time(nope[1m]))[1y:1ms])", time: 10 * 60_000, database: script.tenant)
        let grown = try ParallelEvaluationTests.peakResidentBytes(resetting: false) - before
        XCTAssertEqual(describeBits(result), "error execution: query processing would load too many samples into memory in query execution")
        XCTAssertLessThan(grown, 64 << 20, "peak resident set grew by \(grown >> 20) MiB")
    }

    /// Within the limit the answer is unchanged: a point at each step with nothing in its window,
    /// none where something is; the limit counts those points, not the ones they were worked out
    /// from (12 found, then 19 absent: 31 would not fit in 25).
    func testAbsentPointsWithinTheLimitAreAnswered() throws {
        // Samples at 0-10 minutes: a one-minute window finds one up to 11 minutes, none from 12 on.
        let script = try PromQLScript.loaded(["m 1x10"])
        let engine = QueryEngine(options: QueryOptions(maxSamples: 25))
        let absent = engine.rangeQuery("absent_over_time(m[1m])", start: 0, end: 30 * 60_000, step: 60_000, database: script.tenant)
        XCTAssertEqual(describeBits(absent), Labels([]).description + (12...30).map { " \($0 * 60_000):\(bits(1))" }.joined())
        let none = engine.rangeQuery("absent_over_time(m[1m])", start: 0, end: 9 * 60_000, step: 60_000, database: script.tenant)
        XCTAssertEqual(describeBits(none), "")
    }
}
