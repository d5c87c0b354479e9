import Foundation
import TallyQuery
import XCTest

/// Queries are hostile input: no query may exhaust a stack, trap, or take time out of proportion to
/// its length.
final class ParserLimitsTests: XCTestCase {
    static let depth = PromQL.maxNestingDepth

    /// Ways to nest, each as a query `levels` deep (as the parser counts: every node is one level).
    static let nestings: [(name: String, query: @Sendable (Int) -> String)] = [
        ("parentheses", { String(repeating: "(", count: $0 - 1) + "1" + String(repeating: ")", count: $0 - 1) }),
        ("unary minus", { String(repeating: "-", count: $0 - 1) + "foo" }),
        ("left-associative chain", { "foo" + String(repeating: " + foo", count: $0 - 1) }),
        ("right-associative power", { "foo" + String(repeating: " ^ foo", count: $0 - 1) }),
        ("function calls", { String(repeating: "abs(", count: $0 - 1) + "foo" + String(repeating: ")", count: $0 - 1) }),
        ("aggregations", { String(repeating: "sum(", count: $0 - 1) + "foo" + String(repeating: ")", count: $0 - 1) }),
        ("subqueries", { "foo" + String(repeating: "[5m:]", count: $0 - 1) }),
    ]

    /// At the bound every shape parses (or fails on its types, after a full-depth check); one level
    /// more is refused with the bound's message. All on a thread with a 4 MiB stack, half of Linux's
    /// default, printing the trees too: every recursion over the tree fits, even in a debug build
    /// (about 10 KiB of stack per level; it fails at 2 MiB).
    func testNestingIsBoundedAndFitsASmallStack() throws {
        let outcome = onSmallStack {
            var failures: [String] = []
            for nesting in Self.nestings {
                let deepest = nesting.query(Self.depth)
                switch Result(catching: { () throws(PromQLParseError) in try PromQL.parse(deepest) }) {
                case .success(let expr):
                    let again = try? PromQL.parse(expr.description)
                    if again?.description != expr.description { failures.append("\(nesting.name): printed form is not stable") }
                case .failure(let error):
                    if error.message.contains("nests too deeply") { failures.append("\(nesting.name) at the bound: \(error)") }
                }
                let tooDeep = "expression nests too deeply: more than \(Self.depth) levels"
                if (try? PromQL.parse(nesting.query(Self.depth + 1))) != nil {
                    failures.append("\(nesting.name) past the bound parsed")
                } else if case .failure(let error) = Result(catching: { () throws(PromQLParseError) in try PromQL.parse(nesting.query(Self.depth + 1)) }),
                          error.message != tooDeep {
                    failures.append("\(nesting.name) past the bound: \(error)")
                }
            }
            return failures
        }
        XCTAssertEqual(outcome, [])
    }

    /// A million levels is refused as soon as the bound is passed, without reading the rest.
    func testVeryDeepQueriesAreRefusedQuickly() {
        for nesting in Self.nestings {
            let query = nesting.query(1_000_000)
            let started = Date()
            XCTAssertThrowsError(try PromQL.parse(query), nesting.name)
            XCTAssertLessThan(Date().timeIntervalSince(started), 5, nesting.name)
        }
    }

    /// Wide queries (many arguments, matchers, grouping labels; long literals) cost time in
    /// proportion to their length: eight times the length takes well under 64 times as long.
    func testWideQueriesTakeLinearTime() throws {
        let wide: [(name: String, query: (Int) -> String)] = [
            ("arguments", { "label_join(foo, \"a\", \",\"" + String(repeating: ", \"b\"", count: $0) + ")" }),
            ("matchers", { "foo{" + (0..<$0).map { "l\($0)=\"v\"" }.joined(separator: ",") + "}" }),
            ("grouping labels", { "sum by (" + (0..<$0).map { "l\($0)" }.joined(separator: ",") + ") (foo)" }),
            ("matching labels", { n in
                let labels = (0..<n).map { "l\($0)" }.joined(separator: ",")
                return "a * on (\(labels)) group_left (\(labels.replacingOccurrences(of: "l", with: "k"))) b"
            }),
            ("number literal", { "0." + String(repeating: "7", count: $0 * 8) }),
            ("string literal", { "\"" + String(repeating: "\\u00e9x", count: $0) + "\"" }),
            ("comment", { "foo # " + String(repeating: "x", count: $0 * 8) }),
        ]
        for shape in wide {
            let small = try fastest { _ = try PromQL.parse(shape.query(5_000)) }
            let large = try fastest { _ = try PromQL.parse(shape.query(40_000)) }
            print("prettify", small, large); XCTAssertLessThan(large, max(small, 0.005) * 24, "\(shape.name): \(small)s for 5,000, \(large)s for 40,000")
        }
    }

    /// `format_query`'s layout prints each node once. Laying out 250 levels costs about ten times what
    /// printing them on one line costs (the indented lines are built again at each level). Printing
    /// each level's subtree again to measure it, as Prometheus' printer does, costs some 300 times.
    func testDeepQueriesAreLaidOutAtTheCostOfPrintingThemOnce() throws {
        let leaf = "m{a=\"" + String(repeating: "x", count: 10_000) + "\"}"
        let deep = try PromQL.parse(String(repeating: "sum(", count: 250) + leaf + String(repeating: ")", count: 250))
        let printed = try fastest { _ = deep.description }
        let laidOut = try fastest { _ = deep.prettified }
        XCTAssertLessThan(laidOut, max(printed, 0.001) * 60, "one line in \(printed)s, laid out in \(laidOut)s")
        XCTAssertEqual(deep.prettified.split(separator: "\n").count, 2 * 250 + 1, "every level split")
    }

    /// Durations past Go's `time.Duration` (about 292 years) and timestamps past int64 milliseconds
    /// are errors or saturate as in Prometheus; nothing traps.
    func testOverflowingValuesAreErrorsNotTraps() {
        for query in ["foo offset 99999999999999999999999y", "foo[9223372036854775807ms]", "foo[293y]",
                      "foo offset 106751d23h47m16s855ms", "foo @ 1e300", "foo @ -1e300", "1e999999"] {
            XCTAssertThrowsError(try PromQL.parse(query), query)
        }
        XCTAssertEqual(try PromQL.parse("foo offset 106751d23h47m16s854ms").description, "foo offset 106751d23h47m16s854ms")
        XCTAssertEqual(try PromQL.parse("foo @ 1e17").description, "foo @ -9223372036854776.000")
    }

    /// Runs `work` on a thread whose stack is 4 MiB.
    private func onSmallStack(_ work: @escaping @Sendable () -> [String]) -> [String] {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let thread = Thread {
            result.value = work()
            done.signal()
        }
        thread.stackSize = 4 << 20
        thread.start()
        done.wait()
        return result.value
    }

    private final class ResultBox: @unchecked Sendable {
        // Written by the thread before it signals, read after the wait.
        var value: [String] = []
    }

    private func fastest(_ work: () throws -> Void) throws -> TimeInterval {
        var best = TimeInterval.infinity
        for _ in 0..<3 {
            let started = Date()
            try work()
            best = min(best, Date().timeIntervalSince(started))
        }
        return best
    }
}
