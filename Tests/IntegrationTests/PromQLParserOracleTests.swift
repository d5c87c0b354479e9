import Foundation
import TallyQuery
import TallyTestSupport
import XCTest

/// promtool 2.42 as the oracle for which queries parse and with what error: `promtool check rules`
/// parses each rule's `expr` with Prometheus' own parser and prints its error offline. Queries are
/// well-formed ones with random edits (characters and PromQL fragments inserted, deleted, swapped,
/// two queries spliced), so most fail, in many different places.
final class PromQLParserOracleTests: XCTestCase {
    private var promtool = ""

    override func setUpWithError() throws {
        promtool = try Binaries.debian("promtool")
    }

    func testParseErrorsOfEditedQueriesMatchPromtool() throws {
        var random = SeededGenerator(test: "PromQLParserOracleTests", fixedSeed: 15)
        var queries = Self.seeds
        while queries.count < 600 {
            var query = Self.seeds.randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...3, using: &random) { query = Self.edit(query, using: &random) }
            if !query.isEmpty { queries.append(query) }
        }
        let prometheus = try promtoolErrors(queries)
        var mismatches: [String] = []
        var invalid = 0
        for (index, query) in queries.enumerated() {
            let tally: String?
            do {
                _ = try PromQL.parse(query)
                tally = nil
            } catch {
                tally = error.description
                invalid += 1
            }
            if !Self.agree(tally, prometheus[index]) {
                mismatches.append("\(query.debugDescription): promtool \(prometheus[index] ?? "valid"), Tally \(tally ?? "valid")")
            }
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) of \(queries.count) differ")
        XCTAssertGreaterThan(invalid, 200, "the edits should break most queries")
    }

    /// Equal, except where RE2 refuses a pattern: Tally refuses it at the same position, in its own
    /// words after `error parsing regexp: ` (see `RegexSyntax`).
    private static func agree(_ tally: String?, _ prometheus: String?) -> Bool {
        guard let prometheus, prometheus.contains("error parsing regexp: ") else { return tally == prometheus }
        guard let tally, tally.contains("error parsing regexp: ") else { return false }
        return tally.prefix(while: { $0 != " " }) == prometheus.prefix(while: { $0 != " " })
    }

    /// promtool's parse error for each query (nil where it parses), from one rules file.
    private func promtoolErrors(_ queries: [String]) throws -> [String?] {
        let directory = try makeTemporaryDirectory("promql-oracle")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        var rules = "groups:\n- name: g\n  rules:\n"
        for query in queries {
            // A JSON string is a YAML double-quoted scalar.
            rules += "  - record: r\n    expr: \(String(decoding: try encoder.encode(query), as: UTF8.self))\n"
        }
        let path = directory + "/rules.yml"
        try rules.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try runCommand(promtool, ["check", "rules", path])
        var errors = [String?](repeating: nil, count: queries.count)
        let marker = "could not parse expression: "
        for line in (result.stdout + result.stderr).split(separator: "\n") {
            guard let ruleRange = line.range(of: ", rule "), let markerRange = line.range(of: marker),
                  let number = Int(line[ruleRange.upperBound...].prefix(while: \.isNumber)), (1...queries.count).contains(number) else { continue }
            errors[number - 1] = String(line[markerRange.upperBound...])
        }
        XCTAssertEqual(result.status == 0, errors.allSatisfy { $0 == nil }, "promtool: \(result.stdout.prefix(2000))")
        return errors
    }

    /// Valid queries over the whole grammar.
    private static let seeds = [
        #"sum by (namespace) (rate(container_cpu_usage_seconds_total{namespace!="", container=~"app-.*"}[5m]))"#,
        #"histogram_quantile(0.99, sum without (instance) (rate(http_request_duration_seconds_bucket[5m] offset 1h)))"#,
        #"node_cpu_hourly_cost * on (node) group_left (instance_type) kube_node_labels{label_team='a'} > bool 0.5"#,
        #"max_over_time(deriv(rate(foo[5m])[30m:1m] @ end())[1h:] offset -5m)"#,
        #"topk(5, avg(node_memory_bytes) by (node)) or bottomk(2, count_values("v", up)) unless absent(up)"#,
        #"-2 ^ -3 ^ 2 * 4 % 3 atan2 (1 + +time()) - scalar(vector(1e3))"#,
        #"label_replace(up{job="a", instance=~`.+:9090`}, "host", "$1", "instance", "(.*):.*")"#,
        #"quantile_over_time(0.9, foo[1h30m] @ 1603774568.5) / ignoring (job) group_right () bar"#,
        #"clamp(round(foo, 0.1), -Inf, +Inf) == bool on () group_left bar"#,
        #"{__name__=~"kube_.*", namespace="kube-system"} # comment"#,
        #"sum(increase(kubecost_cluster_management_cost[1d])) by (cluster_id)"#,
        #"(a + b)[5m:30s] @ start()"#,
        #"days_in_month() + year(foo) - day_of_week(vector(time()))"#,
        #"count(stdvar(stddev(group(max(min(foo))))))"#,
        #"0x1F + 0755 - .5e-3 * NaN"#,
        #"predict_linear(foo[1w], 3600 * 24) < 0"#,
    ]

    private static let fragments = [
        "(", ")", "{", "}", "[", "]", ",", ":", "=", "!", "~", "<", ">", "+", "-", "*", "/", "%", "^", "@", "\"", "'", "`", "#",
        " ", "\n", "0", "5", ".", "e", "m", "s", "x", "_", "a", "é", " offset ", " by ", " without ", " bool ", " on(a) ",
        " ignoring(b) ", " group_left ", " group_right(c) ", "[5m]", "[5m:1m]", " @ 1", " @ start()", "sum(", "rate(",
        "topk(", " and ", " or ", " unless ", " atan2 ", "Inf", "{a=\"b\"}", "\\", "\\x", "1h30m", "0s", "-5m",
    ]

    private static func edit(_ query: String, using random: inout SeededGenerator) -> String {
        var characters = Array(query)
        guard !characters.isEmpty else { return fragments.randomElement(using: &random)! }
        let at = Int.random(in: 0..<characters.count, using: &random)
        switch Int.random(in: 0..<5, using: &random) {
        case 0:
            characters.remove(at: at)
        case 1:
            characters.insert(contentsOf: fragments.randomElement(using: &random)!, at: at)
        case 2:
            if at + 1 < characters.count { characters.swapAt(at, at + 1) }
        case 3:
            let other = Array(seeds.randomElement(using: &random)!)
            characters = Array(characters[..<at]) + other[Int.random(in: 0..<other.count, using: &random)...]
        default:
            characters.replaceSubrange(at..<min(characters.count, at + Int.random(in: 1...4, using: &random)),
                                       with: fragments.randomElement(using: &random)!)
        }
        return String(characters)
    }
}
