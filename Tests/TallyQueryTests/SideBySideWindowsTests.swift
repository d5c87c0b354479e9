import XCTest
@testable import TallyQuery
import TallyStorage
import TallyTestSupport

/// The range functions that run several steps' windows side by side (`RangeFunctions.sideBySide`:
/// `avg_over_time`, `sum_over_time`, `stddev_over_time`, `stdvar_over_time`) answer what the
/// one-window function answers, bit for bit, and hold the samples the step-by-step loop holds, so
/// that they fail on the sample limit exactly where that loop fails.
final class SideBySideWindowsTests: XCTestCase {
    static let functions = ["avg_over_time", "sum_over_time", "stddev_over_time", "stdvar_over_time"]

    /// Windows of every length up to 70 in groups of one to four, some empty, over values that
    /// cancel, overflow to infinity part way, are infinite or NaN from the start, or are plain.
    func testSideBySideAnswersAreTheOneWindowAnswersBitForBit() throws {
        var random = SeededGenerator(test: "side-by-side windows", fixedSeed: 20261204)
        let kinds: [(inout SeededGenerator) -> Double] = [
            { r in Double(r.next() % 4_000_000_000) },
            { r in Double(r.next() % 60) - 29.5 },
            { r in (r.next() % 2 == 0 ? 1 : -1) * 1.5e308 },
            { r in [Double.infinity, -.infinity, .nan, 1][Int(r.next() % 4)] },
            { r in Double(bitPattern: r.next()) },
        ]
        let context = RangeContext(ts: 0, range: 0, offset: 0, scalars: [:])
        for name in Self.functions {
            let oneWindow = try RangeFunctions.function(name)
            let sideBySide = try XCTUnwrap(RangeFunctions.sideBySide(name), name)
            var compared = 0
            for round in 0..<3000 {
                let kind = kinds[round % kinds.count]
                let points = (0..<300).map { i in Point(timestamp: Int64(i), value: kind(&random)) }
                let windows = (0..<Int(random.next() % 4 + 1)).map { _ in
                    let start = Int(random.next() % 200)
                    return start..<(start + Int(random.next() % 71))
                }
                var values: [Double] = []
                points.withUnsafeBufferPointer { samples in sideBySide(samples, windows, &values) }
                XCTAssertEqual(values.count, windows.count)
                for (window, value) in zip(windows, values) where !window.isEmpty {
                    let expected = try points.withUnsafeBufferPointer { samples in try oneWindow(UnsafeBufferPointer(rebasing: samples[window]), context) }
                    XCTAssertEqual(bits(value), expected.map(bits), "\(name), round \(round), window \(window)")
                    compared += 1
                }
            }
            XCTAssertGreaterThan(compared, 5000, name)
        }
    }

    /// Steps closer than the range, further apart than it, unaligned, offset and pinned with `@`,
    /// over gaps and staleness markers: the same points as step by step, and the same smallest
    /// sample limit that lets the query through.
    func testStepsSideBySideAnswerAndFailAsStepByStep() throws {
        let script = try PromQLScript.loaded((0..<3).map { s in
            "m{s=\"\(s)\"} 0+\(s + 1)x90 _x\(s * 4 + 3) stale 7+0.\(s)x40 1e308 1e308 -Inf 5 NaN 3 -\(s)x30"
        })
        let queries = ["avg_over_time(m[5m])", "avg_over_time(m[1h])", "sum_over_time(m[10m] offset 7m)", "stddev_over_time(m[20m] @ 100)",
                       "sum(stdvar_over_time(m[3m]))", "avg_over_time(m[2m:30s])"]
        let end: Int64 = 190 * 60_000
        func engine(_ sideBySide: Bool, maxSamples: Int) -> QueryEngine {
            var options = QueryOptions(maxSamples: maxSamples)
            options.sideBySideWindows = sideBySide
            options.parallelWork = .max
            return QueryEngine(options: options)
        }
        for query in queries {
            for (start, step) in [(Int64(0), Int64(60_000)), (Int64(7_000), Int64(17_000)), (Int64(0), Int64(660_000)), (end, Int64(60_000))] {
                func run(_ sideBySide: Bool, _ maxSamples: Int) -> String {
                    describeBits(engine(sideBySide, maxSamples: maxSamples).rangeQuery(query, start: start, end: end, step: step, database: script.tenant))
                }
                let answer = run(false, 50_000_000)
                XCTAssertFalse(answer.hasPrefix("error"), "\(query): \(answer)")
                XCTAssertEqual(run(true, 50_000_000), answer, "\(query) from \(start) by \(step)")
                // The smallest limit step by step lets through, found by halving.
                var low = 1, high = 50_000_000
                while low < high {
                    let middle = (low + high) / 2
                    if run(false, middle).hasPrefix("error") { low = middle + 1 } else { high = middle }
                }
                XCTAssertEqual(run(true, low), answer, "\(query) from \(start) by \(step) at max-samples \(low)")
                if low > 1 {
                    XCTAssertEqual(run(true, low - 1), run(false, low - 1), "\(query) from \(start) by \(step) at max-samples \(low - 1)")
                }
            }
        }
    }
}
