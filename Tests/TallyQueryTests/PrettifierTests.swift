import TallyQuery
import XCTest

/// `format_query`'s layout (`Expr.prettified`) against what Prometheus 2.42 answers for the same
/// queries (`prometheusFormattedCases`), and the layout read back as the same query.
final class PrettifierTests: XCTestCase {
    func testEveryCaseIsLaidOutAsPrometheusLaysItOut() throws {
        var mismatches: [String] = []
        for (query, formatted) in prometheusFormattedCases {
            let answer = try PromQL.parse(query).prettified
            if answer != formatted { mismatches.append("\(query)\nPrometheus:\n\(formatted)\nTally:\n\(answer)") }
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) of \(prometheusFormattedCases.count) cases differ")
        // The table reaches what the layout distinguishes.
        let all = prometheusFormattedCases.map(\.formatted).joined(separator: "\n")
        for feature in ["\n  ", "\n    ", "\n/\n", "\n* on (", "(\n", ",\n", "\n)", "-(\n", ":1m]", "\n  max_over_time(", "0.99,\nrate("] {
            XCTAssertTrue(all.contains(feature), "no case shows \(feature.debugDescription)")
        }
        XCTAssertTrue(prometheusFormattedCases.contains { !$0.formatted.contains("\n") }, "no case that stays on one line")
    }

    /// Splitting changes only whitespace: the text parses back to the query it came from (the same
    /// canonical one-line form, which prints every node).
    func testTheLayoutParsesBackToTheSameQuery() throws {
        for (query, _) in prometheusFormattedCases {
            let expr = try PromQL.parse(query)
            XCTAssertEqual(try PromQL.parse(expr.prettified).description, expr.description, query)
        }
    }
}
