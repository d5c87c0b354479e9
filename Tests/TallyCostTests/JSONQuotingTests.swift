import Foundation
@testable import TallyCost
import XCTest

/// Every JSON answer quotes its strings with `CostReport.quoted`: a JSON parser must read each
/// back as it was, whatever it holds.
final class JSONQuotingTests: XCTestCase {
    func testEveryStringReadsBackThroughAJSONParser() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar($0)! }))
        var strings = ["", "plain", "a\"b\\c", controls, "\u{7f}é€😀\u{2028}", "\u{FFFD}", "line\nbreak\ttab\rreturn"]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let scalars = (0..<Int.random(in: 0...12, using: &random)).map { _ in
                Unicode.Scalar(UInt32.random(in: 0...0x7f, using: &random)) ?? "x"
            }
            strings.append(String(String.UnicodeScalarView(scalars)))
        }
        for s in strings {
            let quoted = CostReport.quoted(s)
            let parsed = try JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed) as? String
            XCTAssertEqual(parsed, s, quoted)
            var bytes: [UInt8] = [0x5b]
            CostReport.appendQuoted(s, to: &bytes)
            XCTAssertEqual(bytes, [0x5b] + Array(quoted.utf8))
        }
    }

    /// A table row stays one line whatever its names hold: control characters are escapes.
    func testTableCellsWriteControlCharactersAsEscapes() {
        let table = CostReport.table(["cluster", "total"], [["a\nb\tc\u{1b}[31m", "1"], ["plain", "2"]], textColumns: 1)
        XCTAssertEqual(table.split(separator: "\n", omittingEmptySubsequences: false).count, 4, table)
        XCTAssertTrue(table.contains("\na\\nb\\tc\\u{1b}[31m      1\n"), table)
        XCTAssertEqual(CostReport.printable("é€😀 plain"), "é€😀 plain")
    }
}
