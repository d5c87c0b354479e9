import TallyQuery
import TallyStorage
import XCTest

/// `match[]` as Prometheus 2.42's `parser.ParseMetricSelector` reads it: its own grammar (a metric
/// name, label matchers or both, then the end), not a whole query. The messages are what a running
/// Prometheus 2.42 answers to `/federate?match[]=...` for each text.
final class MetricSelectorTests: XCTestCase {
    func testWordsThatNameAMetricThereAreSelectors() throws {
        for word in ["sum", "start", "offset", "by", "and", "count_values", "rate"] {
            XCTAssertEqual(try PromQL.parseMetricSelector(word), [try LabelMatcher("__name__", .equal, word)], word)
        }
        XCTAssertEqual(try PromQL.parseMetricSelector(#"offset{job="a",}"#),
                       [try LabelMatcher("job", .equal, "a"), try LabelMatcher("__name__", .equal, "offset")])
        XCTAssertEqual(try PromQL.parseMetricSelector("{}"), [])
    }

    func testAnythingElseIsRefusedWithPrometheusMessage() {
        let cases = [
            ("", "1:1: parse error: unexpected end of input"),
            ("bool", "1:1: parse error: unexpected <bool>"),
            ("on", "1:1: parse error: unexpected <on>"),
            ("group_left", "1:1: parse error: unexpected <group_left>"),
            ("atan2", "1:1: parse error: unexpected <op:atan2>"),
            ("1 + x", #"1:1: parse error: unexpected number "1""#),
            (#""str""#, #"1:1: parse error: unexpected string "\"str\"""#),
            ("fed offset 5m", "1:5: parse error: unexpected <offset>"),
            ("rate(x[5m])", #"1:5: parse error: unexpected "(""#),
            (#"x{a="b"}[5m]"#, #"1:9: parse error: unexpected "[""#),
            ("x{} y", #"1:5: parse error: unexpected identifier "y""#),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try PromQL.parseMetricSelector(text), text) { error in
                XCTAssertEqual("\(error)", message, text)
            }
        }
    }
}
