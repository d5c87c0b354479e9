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

/// `GoNumbers.parseFloat` is Go's `strconv.ParseFloat(s, 64)`, which Prometheus applies to API times,
/// steps and bucket bounds. `QueryParameterOracleTests` checks it against a real Prometheus; this
/// checks it alone, rule by rule, with Go's own verdicts.
final class GoParseFloatTests: XCTestCase {
    func testGoVerdicts() {
        let values: [(String, Double)] = [
            ("0", 0), ("-0", -0.0), ("+1", 1), (".5", 0.5), ("5.", 5), ("1e3", 1000), ("1E+3", 1000), ("-.5e-2", -0.005),
            ("1_000", 1000), ("1_0.5", 10.5), ("1e1_0", 1e10), ("0x1p-2", 0.25), ("0x1.8p1", 3), ("0x.8p1", 1), ("0x1.p1", 2),
            ("0X1P3", 8), ("0x_1p0", 1), ("0x1_0p0", 16), ("1e-400", 0), ("0x1p-1074", .leastNonzeroMagnitude),
            ("179769313486231570" + String(repeating: "0", count: 291), 1.7976931348623157e308),
            ("0." + String(repeating: "1", count: 5000), 0.1111111111111111),
        ]
        for (text, value) in values {
            guard case let .value(parsed) = GoNumbers.parseFloat(text) else { return XCTFail("\(text): \(GoNumbers.parseFloat(text))") }
            XCTAssertEqual(parsed, value, text)
            XCTAssertEqual(parsed.sign, value.sign, text)
        }
        for (text, value) in [("inf", Double.infinity), ("+Inf", .infinity), ("-INFINITY", -.infinity), ("Infinity", .infinity)] {
            XCTAssertEqual(GoNumbers.parseFloat(text), .value(value), text)
        }
        guard case let .value(nan) = GoNumbers.parseFloat("NaN"), nan.isNaN else { return XCTFail("NaN") }
        for text in ["1e400", "-1e400", "0x1p1024", String(repeating: "9", count: 400)] {
            XCTAssertEqual(GoNumbers.parseFloat(text), .outOfRange, text)
        }
        for text in ["", ".", "+", "-", "e1", "1e", "1e+", "1.2.3", " 1", "1 ", "1__0", "_10", "10_", "1._5", "1_.5", "1e_1", "0_x1p0",
                     "0x10", "0x1.8", "0xp1", "0x", "-nan", "+nan", "nan1", "infin", "infinityy", "１", "1\u{0}", "1f", "0b101", "0o17", "1p3"] {
            XCTAssertEqual(GoNumbers.parseFloat(text), .invalidSyntax, text.debugDescription)
        }
    }
}
