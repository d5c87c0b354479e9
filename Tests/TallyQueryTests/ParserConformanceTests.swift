import TallyQuery
import XCTest

/// The parser answers every query of `prometheusParserCases` as Prometheus 2.42 does: the same
/// printed form for a valid query, the same message and position for an invalid one.
final class ParserConformanceTests: XCTestCase {
    /// Queries Tally answers otherwise, and why. Each is checked to still differ, so that closing a
    /// difference shows here and the entry goes.
    static let knownDifferences: [String: String] = [
        #""\a\b\f\n\r\t\v\\\" - \xFF\377\u1234\U00010111\U0001011111☺""#: notUTF8,
        #"'\a\b\f\n\r\t\v\\\' - \xFF\377\u1234\U00010111\U0001011111☺'"#: notUTF8,
        #"foo{a="\xff"}"#: notUTF8,
        #"{a="\xac"}"#: notUTF8,
        #"foo{a="\ufffd"}"#: replacementCharacter,
        #""\ufffd""#: replacementCharacter,
    ]

    static let replacementCharacter = "U+FFFD is printed \\ufffd, where Prometheus prints it as is (and then refuses its own output)"
    static let notUTF8 = "bytes that are not UTF-8 (\\xFF, \\377) are held as U+FFFD and printed \\ufffd, where Prometheus prints \\xff"

    func testEveryCaseAnswersAsPrometheus() {
        var mismatches: [String] = []
        for testCase in prometheusParserCases where Self.knownDifferences[testCase.input] == nil {
            let answer = Self.answer(testCase.input)
            if !Self.agrees(answer, testCase.answer) {
                mismatches.append("\(testCase.input.debugDescription): Prometheus \(testCase.answer), Tally \(answer)")
            }
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) of \(prometheusParserCases.count) cases differ")
    }

    func testKnownDifferencesStillDiffer() {
        for (input, reason) in Self.knownDifferences {
            guard let testCase = prometheusParserCases.first(where: { $0.input == input }) else {
                XCTFail("\(input.debugDescription) is listed as a difference but is not a case")
                continue
            }
            XCTAssertFalse(Self.agrees(Self.answer(input), testCase.answer), "\(input.debugDescription) now agrees (\(reason)): drop it from knownDifferences")
        }
    }

    /// Printing a parsed query and parsing the text again gives the same text and the same type.
    func testPrintedFormsParseBackToThemselves() throws {
        var checked = 0
        for testCase in prometheusParserCases {
            guard let expr = try? PromQL.parse(testCase.input) else { continue }
            let printed = expr.description
            let again = try PromQL.parse(printed)
            XCTAssertEqual(again.description, printed, "input \(testCase.input.debugDescription)")
            XCTAssertEqual(again.type, expr.type, "input \(testCase.input.debugDescription)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 400)
    }

    static func answer(_ input: String) -> ParserCase.Answer {
        do {
            return .printed(try PromQL.parse(input).description)
        } catch {
            return .error(error.description)
        }
    }

    /// Equal answers, except that a regular expression's compile error is worded by Swift's `Regex`
    /// rather than Go's RE2 (see `RegexSyntax`): there only the position and the prefix must agree.
    static func agrees(_ answer: ParserCase.Answer, _ expected: ParserCase.Answer) -> Bool {
        let regexError = "error parsing regexp: "
        guard case .error(let tally) = answer, case .error(let prometheus) = expected, let cut = prometheus.range(of: regexError) else {
            return answer == expected
        }
        return tally.hasPrefix(String(prometheus[..<cut.upperBound]))
    }
}
