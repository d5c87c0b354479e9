@testable import TallyStorage
import TallyTestSupport
import XCTest

/// The label matchers' regex engine: the same answers as a backtracking engine on the syntax both
/// read alike, RE2's reading where Swift's differs, and no exponential time on patterns that make
/// backtracking engines explode.
final class LinearRegexTests: XCTestCase {
    /// Patterns both engines read alike, against random values over a small alphabet (so that
    /// matches are common), compared with Swift's `Regex` anchored as Prometheus anchors.
    func testAnswersAsABacktrackingEngineOnCommonSyntax() throws {
        let patterns = ["", "a", "a.*b", "(foo|bar)+", "[a-c]{2,3}x?", #"\d+\.\d*"#, "(?i)ab", "(?i:A)b", "a|", "[^a-c]+", #"\w+-\d"#, "x{0}",
                        "(a|b)*c", ".*", "a?b?c?", "(ab){1,2}", "[[:alpha:]]+", "[[:^alpha:]x]+", #"[\d_]+"#, #"\Qa.b\E"#, "a+?b", #"\bab"#, "(?s)a.b",
                        "a.b", "(a|ab)(c|bcd)", "[a-]+", #"\x61+"#, #"\x{62}"#, "(?:a|b|)+", "^ab$", "a$", "((a)|b)+", "[ab][^ab]"]
        var random = SeededGenerator(test: "LinearRegexTests", fixedSeed: 7)
        let alphabet = Array("abcx-_1.\n A")
        var compared = 0
        for pattern in patterns {
            let linear = try XCTUnwrap(LinearRegex(pattern), pattern)
            let swift = try Regex("^(?:" + pattern + ")$")
            for _ in 0..<300 {
                let value = String((0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
                let expected = (try? swift.wholeMatch(in: value)) != nil
                XCTAssertEqual(linear.matches(value), expected, "\(pattern) on \(value.debugDescription)")
                compared += 1
            }
        }
        XCTAssertEqual(compared, patterns.count * 300)
    }

    /// Where Swift's `Regex` reads a pattern otherwise than RE2 (and so than Prometheus).
    func testRE2ReadingsWhereSwiftDiffers() throws {
        let braces = try XCTUnwrap(LinearRegex("a{,2}"))
        XCTAssertTrue(braces.matches("a{,2}"), "RE2 reads a{,2} as text")
        XCTAssertFalse(braces.matches("aa"))
        let letters = try XCTUnwrap(LinearRegex(#"\pL+"#))
        XCTAssertTrue(letters.matches("aÄж"))
        XCTAssertFalse(letters.matches("a1"))
        let upper = try XCTUnwrap(LinearRegex(#"\p{Lu}\P{Lu}"#))
        XCTAssertTrue(upper.matches("Ab"))
        XCTAssertFalse(upper.matches("AB"))
        // `.` is any scalar but "\n", even "\r", and a combining mark is a scalar of its own.
        XCTAssertTrue(try XCTUnwrap(LinearRegex("a.b")).matches("a\rb"))
        XCTAssertTrue(try XCTUnwrap(LinearRegex("e..")).matches("e\u{301}x"))
        // Syntax RE2 refuses is left to the caller.
        XCTAssertNil(LinearRegex("(?=a)"))
        XCTAssertNil(LinearRegex(#"(a)\1"#))
        XCTAssertNil(LinearRegex("a{1001}"))
    }

    /// Patterns that take a backtracking engine exponential time on a long non-matching value:
    /// here each answers after one pass over the value (the test would not end otherwise).
    func testNoPatternTakesExponentialTime() throws {
        let value = String(repeating: "a", count: 20_000)
        for pattern in ["(a|a)*b", "(a*)*b", "(a+a+)+b", "(a|aa)+$x", "(.*a){20}b"] {
            XCTAssertFalse(try XCTUnwrap(LinearRegex(pattern), pattern).matches(value), pattern)
            let matcher = try LabelMatcher("pod", .regex, pattern)
            XCTAssertFalse(matcher.predicate()(value), pattern)
        }
        XCTAssertTrue(try LabelMatcher("pod", .notRegex, "(a|a)*b").predicate()(value))
    }

    /// No regex a client sends reaches a backtracking engine. The linear-time matcher reads all of
    /// RE2's syntax as Go 1.19 does, Unicode scripts included (`\p{Greek}` once went to Swift's
    /// `Regex`, where `(\p{Greek}|\p{Greek})*b` on forty `α` never ended); the rest is refused as RE2
    /// refuses it: `(a|aa){1001}` once went there and took exponential time on a long run of `a`.
    func testEverythingRE2ReadsIsReadAndTheRestIsRefused() throws {
        for pattern in ["(?P<pod>a+)", "(?:a)", "(?m)^a$", "(?U)a+", "[[:^alpha:]]", #"\pN+"#, #"\Aa\z"#, #"a\Bb"#, "[a-z&&[^x]]?",
                        #"[\p{Lu}\d]"#, "(a){1000}", "x{2,}", "(?i)ÄB", #"\p{Greek}+"#, #"\P{Han}"#, #"[\p{Old_Italic}a]"#, #"\p{^Latin}"#,
                        #"\p{Any}"#, #"\p{Zl}"#, "(?P<a>x)(?P<a>y)", "a(?i)*", #"\Qa.b\E+"#] {
            XCTAssertNotNil(LinearRegex(pattern), pattern)
        }
        let greek = try LabelMatcher("pod", .regex, #"(\p{Greek}|\p{Greek})*b"#).predicate()
        XCTAssertFalse(greek(String(repeating: "α", count: 20_000)))
        XCTAssertTrue(try LabelMatcher("pod", .regex, #"\p{Greek}+"#).predicate()("αβγ"))
        XCTAssertFalse(try LabelMatcher("pod", .regex, #"\p{Greek}+"#).predicate()("αβc"))
        // Go 1.19's tables are Unicode 13.0: Vithkuqi (14.0) is no script there, and a letter
        // Unicode 14.0 added to Latin (U+A7C0) is neither Latin nor a letter.
        XCTAssertNil(LinearRegex(#"\p{Vithkuqi}"#))
        XCTAssertFalse(try XCTUnwrap(LinearRegex(#"\p{Latin}"#)).matches("\u{A7C0}"))
        XCTAssertFalse(try XCTUnwrap(LinearRegex(#"\pL"#)).matches("\u{A7C0}"))
        for pattern in ["(a|aa){1001}b", "((a|aa){100}){100}b", "(a|aa)++b", "(?=a)(a|aa)*b", #"(a|aa)*\1"#, "(?<n>a)", #"\Qab"#, "{2}", "(?i)*", "(?-)"] {
            XCTAssertThrowsError(try LabelMatcher("pod", .regex, pattern), pattern) { error in
                XCTAssertTrue("\(error)".contains("invalid regex"), "\(error)")
            }
            XCTAssertThrowsError(try LabelMatcher("pod", .notRegex, pattern), pattern)
        }
    }

    /// What each group takes, as Go's `regexp` reports it: the match a backtracking engine finds
    /// first (leftmost-first), lazy and `(?U)` repetitions, a group repeated keeps its last turn,
    /// `x*` over an x that can match empty text as `(x+)?`; and no exponential time on a value that
    /// matches only after a pattern's first branch fails every way (`(a|a)*c|.*`).
    func testCapturesAreGoLeftmostFirstGroups() throws {
        let cases: [(String, String, [String?]?)] = [
            ("(a|ab)(c|bcd)(d*)", "abcd", ["abcd", "a", "bcd", ""]),
            ("(a*)(a*)", "aaa", ["aaa", "aaa", ""]),
            ("(a*?)(a*)", "aaa", ["aaa", "", "aaa"]),
            ("(?U)(a*)(a*)", "aaa", ["aaa", "", "aaa"]),
            ("(?U)(a*?)(a*)", "aaa", ["aaa", "aaa", ""]),
            ("(?:(a)|b)+", "ab", ["ab", "a"]),
            ("(a|b)*", "ab", ["ab", "b"]),
            ("(a*)*", "", ["", ""]),
            ("(a*)+", "b", nil),
            ("(x)?y", "y", ["y", nil]),
            ("(?P<n>\\w+)-(\\d)", "ab-1", ["ab-1", "ab", "1"]),
            ("(a{2,3}?)(a*)", "aaaa", ["aaaa", "aa", "aa"]),
            ("(a|a)*c|(.*)", String(repeating: "a", count: 2_000), [String(repeating: "a", count: 2_000), nil, String(repeating: "a", count: 2_000)]),
        ]
        for (pattern, value, expected) in cases {
            let regex = try XCTUnwrap(LinearRegex(pattern), pattern)
            XCTAssertEqual(regex.captures(value), expected, "\(pattern) on \(value.prefix(10))")
            XCTAssertEqual(regex.matches(value), expected != nil, pattern)
        }
        XCTAssertEqual(try XCTUnwrap(LinearRegex("(?P<n>a)(b)(?P<m>c)")).groupNames, ["n", nil, "m"])
    }

    /// `(?i)` as Go reads it: a scalar matches when any scalar simple case folding makes equal to it
    /// is in the class (`s`, `S` and `ſ`; `k`, `K` and the Kelvin sign; `σ`, `Σ` and `ς`), negated
    /// classes after folding, and nothing that folds only in full (`ß` is not `ss`).
    func testCaseInsensitiveMatchingFollowsSimpleCaseFolding() throws {
        let cases: [(String, String, Bool)] = [
            ("(?i)s", "ſ", true), ("(?i)ſ", "s", true), ("(?i)ſ", "S", true), ("(?i)k", "\u{212A}", true), ("(?i)\u{212A}", "k", true),
            ("(?i)σ", "ς", true), ("(?i)Σ", "ς", true), ("(?i)[a-z]+", "ſK\u{212A}", true), ("(?i)[^k]", "\u{212A}", false),
            ("(?i)ß", "ss", false), ("(?i)ß", "ẞ", true), ("(?i)i", "İ", false), ("(?i)ǆ", "ǅ", true), ("s", "ſ", false),
        ]
        for (pattern, value, expected) in cases {
            XCTAssertEqual(try XCTUnwrap(LinearRegex(pattern), pattern).matches(value), expected, "\(pattern) on \(value)")
        }
    }
}
