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
