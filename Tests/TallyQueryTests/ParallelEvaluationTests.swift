import XCTest
@testable import TallyQuery
import TallyStorage

/// Per-series loops split between cores (`Evaluator.perSeries`) answer exactly what the loop
/// answers, bit for bit and in the same order, and fail where it fails with the same error.
final class ParallelEvaluationTests: XCTestCase {
    func testSplitLoopsAnswerAndFailAsTheLoopDoes() throws {
        // Gaps, staleness markers and resets, different for every series.
        let script = try PromQLScript.loaded((0..<24).map { s in "m{s=\"\(s)\", g=\"\(s % 3)\"} 0+\(s + 1)x200 _x\(s % 7) stale 5+0.\(s)x300 1e300 NaN -\(s)x100" })
        let queries = [
            "m", "sum by (g) (m)", "avg_over_time(m[7m])", "rate(m[5m])", "quantile_over_time(0.3, m[11m])",
            "sum_over_time(m[1h:2m])", "max by (g) (count_over_time(m[3m:30s]))", "holt_winters(m[10m], 0.5, 0.5)",
            "holt_winters(m[10m], 2, 0.5)", "timestamp(last_over_time(m[5m]))",
        ]
        let end: Int64 = 630 * 60_000
        for maxSamples in [50_000_000, 20_000, 3_000] {
            let loop = QueryEngine(options: { var o = QueryOptions(maxSamples: maxSamples); o.parallelWork = .max; return o }())
            let split = QueryEngine(options: { var o = QueryOptions(maxSamples: maxSamples); o.parallelWork = 0; return o }())
            for query in queries {
                for (start, step) in [(Int64(0), Int64(60_000)), (Int64(7_000), Int64(17_000)), (end, Int64(60_000))] {
                    let one = loop.rangeQuery(query, start: start, end: end, step: step, database: script.tenant)
                    let other = split.rangeQuery(query, start: start, end: end, step: step, database: script.tenant)
                    XCTAssertEqual(describeBits(other), describeBits(one), "\(query) from \(start) by \(step), max-samples \(maxSamples)")
                }
            }
        }
    }

    /// A subquery of tiny steps fails on the sample limit as soon as the points the workers hold
    /// pass it: each series' worker had no limit of its own, and `[2h:1ms]` over four series built
    /// 7.2 million points a series (115 MB each, more while arrays grow) before the limit was looked at.
    func testSplitLoopsHoldNoMorePointsThanTheLimitAllows() throws {
        let script = try PromQLScript.loaded((0..<4).map { s in "m{s=\"\(s)\"} 0+1x200" })
        let engine = QueryEngine(options: { var o = QueryOptions(maxSamples: 20_000); o.parallelWork = 0; return o }())
        let before = try Self.peakResidentBytes(resetting: true)
        let result = engine.instantQuery("sum_over_time(m[2h:1ms])", time: 200 * 60_000, database: script.tenant)
        let grown = try Self.peakResidentBytes(resetting: false) - before
        XCTAssertEqual(describeBits(result), "error execution: query processing would load too many samples into memory in query execution")
        XCTAssertLessThan(grown, 64 << 20, "peak resident set grew by \(grown >> 20) MiB")
    }

    /// The same for a range function's points, step by step (`changes`) and side by side
    /// (`sum_over_time`): a series' points were counted once its loop was done, so `[3h:1ms]` over a
    /// day's window held 10.8 million points a series (more than 170 MB each) before the limit was
    /// looked at. Every engine fails with the limit's error, whichever way it loops.
    func testRangeFunctionsHoldNoMorePointsThanTheLimitAllows() throws {
        let script = try PromQLScript.loaded((0..<4).map { s in "m{s=\"\(s)\"} 0+1x200" })
        for function in ["changes", "sum_over_time"] {
            for (parallelWork, sideBySide) in [(0, true), (Int.max, true), (Int.max, false)] {
                var options = QueryOptions(maxSamples: 20_000)
                options.parallelWork = parallelWork
                options.sideBySideWindows = sideBySide
                let before = try Self.peakResidentBytes(resetting: true)
                let result = QueryEngine(options: options).instantQuery("count_over_time((\(function)(m[1d]))[3h:1ms])", time: 200 * 60_000,
                                                                        database: script.tenant)
                let grown = try Self.peakResidentBytes(resetting: false) - before
                let how = "\(function), parallel work \(parallelWork), side by side \(sideBySide)"
                XCTAssertEqual(describeBits(result), "error execution: query processing would load too many samples into memory in query execution", how)
                XCTAssertLessThan(grown, 64 << 20, "\(how): peak resident set grew by \(grown >> 20) MiB")
            }
        }
    }

    /// The process's peak resident set (`VmHWM`), after setting it back to the current one when asked.
    static func peakResidentBytes(resetting: Bool) throws -> Int {
        if resetting { try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }
}
