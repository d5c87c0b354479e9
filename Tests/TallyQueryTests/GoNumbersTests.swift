@testable import TallyQuery
import XCTest

/// `GoNumbers.fixed` is how every sample value is printed: Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
final class GoNumbersTests: XCTestCase {
    /// What Go 1.19 prints for each (`fmt.Println(strconv.FormatFloat(v, 'f', -1, 64))`).
    func testKnownOutputsOfGo() {
        let cases: [(Double, String)] = [
            (0, "0"), (-0.0, "-0"), (1, "1"), (-2.5, "-2.5"), (0.1, "0.1"), (100, "100"),
            (0.30000000000000004, "0.30000000000000004"), (123.456, "123.456"), (1_234_567, "1234567"),
            (0.0001, "0.0001"), (0.00001, "0.00001"), (1e-7, "0.0000001"), (1.5e-10, "0.00000000015"),
            (9_007_199_254_740_992, "9007199254740992"), (1e16, "10000000000000000"), (1e21, "1000000000000000000000"),
            (1.7976931348623157e308, "17976931348623157" + String(repeating: "0", count: 292)),
            (Double.leastNonzeroMagnitude, "0." + String(repeating: "0", count: 323) + "5"),
            (.nan, "NaN"), (.infinity, "+Inf"), (-.infinity, "-Inf"),
        ]
        for (value, go) in cases { XCTAssertEqual(GoNumbers.fixed(value), go, "\(value)") }
    }

    /// Over random bit patterns (every exponent, so both Swift's plain and exponent forms): the text
    /// reads back as the same value, has no exponent, no zero ending a fraction, and as many
    /// significant digits as Swift's shortest form.
    func testRandomValuesAreShortestPlainAndExact() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<50_000 {
            let value = Double(bitPattern: random.next())
            guard value.isFinite else { continue }
            let text = GoNumbers.fixed(value)
            XCTAssertEqual(Double(text), value, text)
            XCTAssertFalse(text.contains("e"), text)
            if text.contains(".") { XCTAssertFalse(text.hasSuffix("0") || text.hasSuffix("."), text) }
            XCTAssertEqual(Self.significantDigits(text), Self.significantDigits(abs(value).description), "\(value)")
        }
    }

    private static func significantDigits(_ text: String) -> Int {
        let mantissa = text.split(separator: "e")[0].filter(\.isNumber)
        return mantissa.drop { $0 == "0" }.reversed().drop { $0 == "0" }.count
    }
}
