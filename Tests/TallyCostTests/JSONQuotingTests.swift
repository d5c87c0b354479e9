import Foundation
import TallyCost
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
}
