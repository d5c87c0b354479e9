import XCTest
import TallyStorage

/// Selector strings read as Prometheus reads them. The first test is fuzz-selector's finding
/// (docs/fuzzing.md): a value holding NUL printed as `"\x00"`, which the parser read back as `x00`.
final class SelectorParserTests: XCTestCase {
    func testPrintedSelectorParsesBackToTheSameMatchers() throws {
        let crash: [UInt8] = Array(#"container_cpu_usage_seconds_total{namespace="kube-system",pod=~"coreuf"#.utf8) + [0] + Array(#"p.*"}"#.utf8)
        let matchers = try SelectorParser.parse(String(decoding: crash, as: UTF8.self))
        XCTAssertEqual(matchers.last?.value, "coreuf\u{0}p.*")
        let printed = "{" + matchers.map(\.description).joined(separator: ",") + "}"
        XCTAssertEqual(printed, #"{__name__="container_cpu_usage_seconds_total",namespace="kube-system",pod=~"coreuf\x00p.*"}"#)
        XCTAssertEqual(try SelectorParser.parse(printed), matchers)
    }

    func testGoEscapes() throws {
        func value(_ text: String) throws -> String? { try SelectorParser.parse(text).first?.value }
        XCTAssertEqual(try value(#"{a="\a\b\f\n\r\t\v\\\""}"#), "\u{07}\u{08}\u{0C}\n\r\t\u{0B}\\\"")
        XCTAssertEqual(try value(#"{a="\101\x41\u00e9\U0001F600"}"#), "AAé😀")
        XCTAssertEqual(try value(#"{a="\xc3\xa9"}"#), "é", "octal and \\x escapes are bytes of UTF-8")
        XCTAssertEqual(try value(#"{a='it\'s'}"#), "it's")
    }

    func testEscapesPrometheusRefusesAreRefused() {
        for text in [#"{a=~"a\.b"}"#, #"{a="\'"}"#, #"{a="\x4"}"#, #"{a="\400"}"#, #"{a="\uD800"}"#, #"{a="\xff"}"#,
                     #"{a="\x４１"}"#, #"{a="\"#] {
            XCTAssertThrowsError(try SelectorParser.parse(text), text)
        }
    }
}

/// Table tests of `SelectorParser.parse`: selectors Prometheus accepts, with the matchers they give,
/// and selectors it refuses, each with a fragment of the error; hostile inputs end in an answer (an
/// error, or matchers for a valid one), never a trap or a hang.
final class SelectorParserTableTests: XCTestCase {
    /// A matcher as the rows write it: name, operator, value unquoted.
    private static func plain(_ matchers: [LabelMatcher]) -> [String] { matchers.map { $0.name + $0.kind.rawValue + $0.value } }

    func testValidSelectors() throws {
        let rows: [(text: String, expected: [String])] = [
            ("m", ["__name__=m"]),
            ("  m\t\n", ["__name__=m"]),
            ("m{}", ["__name__=m"]),
            ("m { }", ["__name__=m"]),
            (#"{a="b"}"#, ["a=b"]),
            (#"{a!="b"}"#, ["a!=b"]),
            (#"{a=~"b.*"}"#, ["a=~b.*"]),
            (#"{a!~"b|c"}"#, ["a!~b|c"]),
            (#"m{a="1",b!="2",c=~"3",d!~"4"}"#, ["__name__=m", "a=1", "b!=2", "c=~3", "d!~4"]),
            (#"{__name__="m"}"#, ["__name__=m"]),
            (#"{__name__=~"m|n", job="x"}"#, ["__name__=~m|n", "job=x"]),
            (#"{job="x", __name__!="m"}"#, ["job=x", "__name__!=m"]),
            (#"ns:rule:rate5m{job="x"}"#, ["__name__=ns:rule:rate5m", "job=x"]),
            (":m", ["__name__=:m"]),
            ("_m9", ["__name__=_m9"]),
            (#"{_="v", a1_B="w", __x__="y"}"#, ["_=v", "a1_B=w", "__x__=y"]),
            ("{a='b'}", ["a=b"]),
            (#"{a=~`b\.c\d`, b=`it's "x" \n`}"#, [#"a=~b\.c\d"#, #"b=it's "x" \n"#]),
            ("{a=`line\nbreak`, b=``}", ["a=line\nbreak", "b="]),
            (#"{a='say "hi"', b="it's"}"#, [#"a=say "hi""#, "b=it's"]),
            (#"{a="\u00e9\x41\101", b="日本"}"#, ["a=éAA", "b=日本"]),
            (#"{a="", b=~"", c!="", d!~""}"#, ["a=", "b=~", "c!=", "d!~"]),
            (#"{a="}{,=~\"'"}"#, [#"a=}{,=~"'"#]),
            ("m  {  a  =  \"b\"  ,  c  =~  \"d\"  }  ", ["__name__=m", "a=b", "c=~d"]),
            ("m{\n\ta=\"b\",\n\tc!~\"d\"\n}", ["__name__=m", "a=b", "c!~d"]),
            (#"{a="b",}"#, ["a=b"]),
            (#"m{a="b", c="d" , }"#, ["__name__=m", "a=b", "c=d"]),
            (#"{a="b", a="c"}"#, ["a=b", "a=c"]),
        ]
        for row in rows {
            XCTAssertEqual(Self.plain(try SelectorParser.parse(row.text)), row.expected, row.text)
        }
    }

    func testInvalidSelectors() {
        let rows: [(text: String, error: String)] = [
            ("", "empty selector"),
            ("   ", "empty selector"),
            ("{}", "empty selector"),
            (" { } ", "empty selector"),
            ("{,}", "expected a label name at offset 1"),
            (#"{a="b",,}"#, "expected a label name at offset 7"),
            (#"{="b"}"#, "expected a label name"),
            (#"{1a="b"}"#, "expected a label name"),
            (#"{"a"="b"}"#, "expected a label name"),
            (#"{a:b="c"}"#, "expected =, !=, =~ or !~ at offset 2"),
            (#"{a=="b"}"#, "expected =, !=, =~ or !~"),
            (#"{a~"b"}"#, "expected =, !=, =~ or !~"),
            (#"{a!"b"}"#, "expected =, !=, =~ or !~"),
            (#"{a~="b"}"#, "expected =, !=, =~ or !~"),
            ("{a}", "expected =, !=, =~ or !~"),
            (#"{a=~~"b"}"#, "expected a quoted string"),
            ("{a=b}", "expected a quoted string"),
            ("{a=}", "expected a quoted string"),
            (#"{a="b""#, "expected , or } at offset 6"),
            (#"{a="b" c="d"}"#, "expected , or }"),
            (#"{a="b";c="d"}"#, "expected , or }"),
            (#"{a="b"#, "unterminated string"),
            (#"{a='b"}"#, "unterminated string"),
            (#"{a="b\"}"#, "unterminated string"),
            ("{a=`b}", "unterminated raw string at offset 6"),
            ("{a=`b\\`c`}", "expected , or }"),
            (#"m{a="b"}x"#, "unexpected text at offset 8"),
            (#"m{a="b"}}"#, "unexpected text"),
            ("m n", "unexpected text at offset 2"),
            ("9m", "unexpected text at offset 0"),
            ("m-n", "unexpected text"),
            ("{a=\"b\"}{c=\"d\"}", "unexpected text"),
            (#"{a="\q"}"#, #"unknown escape \q at offset 4"#),
            (#"{a="\'"}"#, #"unknown escape \'"#),
            (#"{a='\"'}"#, #"unknown escape \""#),
            (#"{a="\400"}"#, "octal escape above \\377"),
            (#"{a="\12"}"#, "expected 3 base-8 digits"),
            (#"{a="\8"}"#, #"unknown escape \8"#),
            (#"{a="\x4"}"#, "expected 2 base-16 digits"),
            (#"{a="\xg0"}"#, "expected 2 base-16 digits"),
            (#"{a="\u12"}"#, "expected 4 base-16 digits"),
            (#"{a="\U0011FFFF"}"#, "not a Unicode scalar"),
            (#"{a="\uD800"}"#, "not a Unicode scalar"),
            (#"{a="\xff"}"#, "string is not UTF-8 at offset 3"),
            (#"{a="\xc3"}"#, "string is not UTF-8"),
            (#"{a="\xc3\x28"}"#, "string is not UTF-8"),
            (#"{a="\xc0\xaf"}"#, "string is not UTF-8"),
            (#"{a="\xed\xa0\x80"}"#, "string is not UTF-8"),
            (#"{a="\360\237\230"}"#, "string is not UTF-8"),
            (#"{a=~"("}"#, "invalid regex"),
            (#"{a!~"a)"}"#, "invalid regex"),
            (#"{a=~"[z-a]"}"#, "invalid regex"),
            // As Prometheus 2.42 refuses them: only space, tab, CR and LF separate; a quoted string
            // stays on one line; the metric name is given once.
            ("m\u{A0}{a=\"b\"}", "unexpected text at offset 1"),
            ("{\u{2003}a=\"b\"}", "expected a label name at offset 1"),
            ("{a=\"b\nc\"}", "newline in a quoted string at offset 5"),
            ("{a='b\nc'}", "newline in a quoted string"),
            (#"m{__name__="m"}"#, "metric name must not be set twice at offset 2"),
            (#"m{a="b",__name__=~"m|n"}"#, "metric name must not be set twice at offset 8"),
        ]
        for row in rows {
            XCTAssertThrowsError(try SelectorParser.parse(row.text), row.text) { error in
                XCTAssertTrue("\(error)".contains(row.error), "\(row.text): \(error), expected \(row.error)")
            }
        }
    }

    /// Each hostile input gives an error or, when it is valid, matchers that answer on a long value,
    /// within a few seconds (each well under one in a debug build), and no trap ends the test process.
    func testHostileInputsEndInAnAnswer() {
        let long = String(repeating: "x", count: 1_000_000)
        let value = String(repeating: "a", count: 10_000) + "b"
        let rows: [(name: String, text: String, error: String?)] = [
            ("a value of a million characters", #"{a=""# + long + #""}"#, nil),
            ("a metric name of a million characters", long, nil),
            ("a label name of a million characters", "{" + long + #"="b"}"#, nil),
            ("an unterminated value of a million characters", #"{a=""# + long, "unterminated string"),
            ("an unterminated raw string of a million characters", "{a=`" + long, "unterminated raw string"),
            ("a million backslashes, unterminated", #"{a=""# + String(repeating: "\\", count: 1_000_001), "unterminated string"),
            ("ten thousand matchers", "{" + String(repeating: #"a="b","#, count: 10_000) + "}", nil),
            ("a hundred thousand opening braces", String(repeating: "{", count: 100_000), "expected a label name"),
            ("a hundred thousand commas", "{" + String(repeating: ",", count: 100_000) + "}", "expected a label name"),
            ("a hundred thousand bad UTF-8 escapes", #"{a=""# + String(repeating: #"\xff"#, count: 100_000) + #""}"#, "not UTF-8"),
            ("a hundred thousand lone surrogate escapes", #"{a=""# + String(repeating: #"\ud800"#, count: 100_000) + #""}"#, "not a Unicode scalar"),
            ("a NUL in a value", "{a=\"\u{0}\"}", nil),
            ("regex nesting 100,000 deep", #"{a=~""# + String(repeating: "(", count: 100_000) + "a" + String(repeating: ")", count: 100_000) + #""}"#,
             "invalid regex"),
            ("regex nesting 100,000 deep, unbalanced", #"{a=~""# + String(repeating: "(", count: 100_000) + #""}"#, "invalid regex"),
            // RE2 refuses counts over 1000, and Go's parser patterns that expand past its size limit.
            ("a repeat count over 1000", #"{a=~"a{1001}"}"#, "invalid regex"),
            ("nested repeat counts", #"{a=~"((a{1000}){1000}){1000}"}"#, "invalid regex"),
            ("a repeat count past Int", #"{a=~"a{99999999999999999999}"}"#, "invalid regex"),
            ("a repetition of a repetition", #"{a!~"a**"}"#, "invalid regex"),
            ("ten thousand alternatives", #"{a=~""# + (0..<10_000).map { "v\($0)" }.joined(separator: "|") + #""}"#, nil),
        ]
        for row in rows {
            let start = ContinuousClock.now
            do {
                let matchers = try SelectorParser.parse(row.text)
                XCTAssertNil(row.error, "\(row.name): parsed as \(matchers.count) matchers, expected an error")
                XCTAssertFalse(matchers.allSatisfy { $0.predicate()(value) }, row.name)
            } catch {
                XCTAssertNotNil(row.error, "\(row.name): \(String("\(error)".prefix(200)))")
                if let fragment = row.error { XCTAssertTrue("\(error)".contains(fragment), "\(row.name): \(String("\(error)".prefix(200)))") }
            }
            XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), row.name)
        }
    }
}
