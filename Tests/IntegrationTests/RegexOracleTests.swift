import Foundation
import TallyTestSupport
import XCTest

/// Regexes read, matched and captured as a real Prometheus 2.42 does (Go 1.19's RE2): generated
/// patterns over RE2's syntax (groups named and not, lazy and `(?U)` repetitions, counted ones, flags,
/// classes, Unicode categories and scripts, anchors, and syntax Go refuses) against generated values,
/// asked of both servers through `label_replace` on literal vectors, so no data is needed: whether
/// the pattern compiles, whether the whole value matches, and what each group took. Selectors with
/// the same patterns check the parser's verdict and its empty-value rule.
final class RegexOracleTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("prometheus")
    }

    func testPatternsMatchAndCaptureAsPrometheus() throws {
        let (root, prometheus, tally) = try QueryParameterOracleTests.emptyServers("regex-oracle")
        defer { try? FileManager.default.removeItem(atPath: root) }

        var random = SeededGenerator(test: "RegexOracleTests")
        var patterns = Self.edges
        var examples: [String: String] = [:]
        for _ in 0..<1_200 {
            let (pattern, example) = Self.randomPattern(&random)
            patterns.append(pattern)
            examples[pattern] = example
        }
        var queries: [String] = []
        for pattern in patterns {
            queries.append("{v=~`\(pattern)`}")
            for value in [examples[pattern] ?? Self.randomValue(&random), Self.randomValue(&random)] {
                queries.append(#"label_replace(label_replace(vector(1), "v", "\#(Self.quote(value))", "", ""), "x", "<$0|$1|$2|$3|${n1}|$n2>", "v", `\#(pattern)`)"#)
            }
        }

        var differences: [String] = []
        var outcomes: [String: Int] = [:]
        var selectorRefused = false
        for query in queries {
            let path = "/api/v1/query?time=0&query=" + QueryParameterOracleTests.escape(query)
            let ours = try tally.client.request("GET", path), theirs = try prometheus.client().request("GET", path)
            var expected = try QueryParameterOracleTests.answer(theirs)
            if query.hasPrefix("{") {
                selectorRefused = theirs.status == 400 && theirs.body.contains("error parsing regexp")
            } else if selectorRefused && theirs.status == 200 {
                // Prometheus' label_replace compiles `^(?:regex)$` alone, which balances a regex such
                // as `a)|(b` that its selectors refuse; Tally refuses it everywhere (docs/promql.md).
                expected = #"422 execution null"#
                outcomes["left out", default: 0] += 1
            }
            if try QueryParameterOracleTests.answer(ours) != expected {
                differences.append("\(query)\n  Tally:      \(ours.status) \(ours.body.prefix(300))\n  Prometheus: \(theirs.status) \(theirs.body.prefix(300))")
            }
            let kind = expected.hasPrefix("200") ? (expected.contains(#"\"x\":"#) ? "matched" : "answered") : String(expected.prefix(15))
            outcomes[kind, default: 0] += 1
        }
        XCTAssertEqual(differences, [], "\(differences.count) of \(queries.count) queries differ")
        print("RegexOracleTests: \(queries.count) queries, Prometheus' outcomes \(outcomes.sorted { $0.key < $1.key })")
        // The generated patterns reach every verdict often enough to mean something.
        XCTAssertGreaterThan(outcomes["matched", default: 0], queries.count / 10)
        XCTAssertGreaterThan(outcomes["200 ", default: 0] + outcomes["answered", default: 0], queries.count / 10)
        XCTAssertGreaterThan(queries.count - outcomes["matched", default: 0] - outcomes["answered", default: 0], queries.count / 20)
    }

    /// Hand-picked: backtracking bombs (answered at once), Go 1.19's refusals, and readings where
    /// engines differ.
    static let edges = [
        "(a|a)*c|.*", "(a|aa)*b|a*", "(\\p{Greek}|\\p{Greek})*b", "(?<n1>a)", "(?P<n1>a)(?P<n1>b)", "(?P<1a>a)", "(?P<n1>a", "(?P<>a)",
        "(?-)", "(?i-)", "(?i-s:a)", "(?U)(a+)(a*)", "(?U)(a+?)(a*)", "(a*)*", "(a*)+", "(a|b)*?", "(a?){2,}", "()*", "(|a)+",
        "a{1001}", "a{2,1}", "a**", "a{,2}", "x{2}{3}", "\\Qa.b", "\\Q(\\E", "[[:word:]]+", "[[:^digit:]]", "\\pN", "\\p{^Lu}",
        "\\P{^Lu}", "\\p{Any}+", "\\P{Any}", "\\p{Greek}+", "\\p{Old_Italic}", "\\p{Vithkuqi}", "\\p{Cc}", "\\p{Zl}", "\\p{C}", "\\p{Xx}",
        "(?i)σ", "(?i)K", "(?i)s", "(?i)[k-l]", "\\x{3B1}", "\\x{110000}", "\\8", "\\b", "a\\Bb", "^$", "(?m)^a$", "(?s).", ".",
        "[^\\n]", "[a-]", "[]a]", "[^]a]", "[a-\\d]", "\\z", "\\Z", "(?:a|ab)(c|bcd)(d*)", "((a)|b)+", "(a|ab)(c|bcd)",
        "\\0", "a\\012b", "\\1", "\\18", "\\101", "[\\0-\\101]+", "x{\\0,2}", "(?i)ſ", "(?i)[a-z]+", "(?i)[^k]", "(?i)ß", "(?i)Σ",
    ]

    /// Pieces of patterns, each with a text it matches (where one exists without context).
    private static let atoms: [(String, String)] = [
        ("a", "a"), ("b", "b"), ("A", "A"), ("1", "1"), ("-", "-"), (".", "k"), ("α", "α"), ("Ω", "Ω"), ("ä", "ä"), ("ſ", "ſ"), ("k", "k"),
        ("\\d", "1"), ("\\w", "_"), ("\\s", " "), ("\\W", "-"), ("[a-c]", "b"), ("[^a]", "ä"), ("[αβ]", "β"), ("\\pL", "Ω"),
        ("\\p{Lu}", "A"), ("\\p{Greek}", "α"), ("\\P{Greek}", "a"), ("\\p{Latin}", "ä"), ("\\PN", "-"), ("[[:alpha:]]", "b"),
        ("\\x{3b1}", "α"), ("\\.", "."), ("^", ""), ("$", ""), ("\\b", ""), ("\\B", ""), ("\\A", ""), ("\\z", ""), ("(?i)", ""),
        ("(?s)", ""), ("(?U)", ""), ("(?m)", ""), ("(?-i)", ""), ("\\n", "\n"), ("[^\\d]", "S"),
    ]
    /// Repetitions, each with how many times its example repeats the piece's.
    private static let quantifiers: [(String, Int)] = [("*", 2), ("+", 1), ("?", 0), ("{2}", 2), ("{1,}", 3), ("{0,2}", 1), ("{1,3}", 2),
                                                       ("*?", 0), ("+?", 2), ("??", 1), ("{1,2}?", 2), ("{0}", 0)]

    /// A pattern of nested groups, alternations, atoms and quantifiers, now and then with one
    /// character cut or added so that Go's refusals are reached too, and a text it likely matches.
    static func randomPattern(_ random: inout SeededGenerator, depth: Int = 0) -> (String, String) {
        var out = "", example = ""
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            var piece: (String, String)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<2 where depth < 3:
                var inner = randomPattern(&random, depth: depth + 1)
                if Bool.random(using: &random) {
                    let other = randomPattern(&random, depth: depth + 1)
                    inner = (inner.0 + "|" + other.0, Bool.random(using: &random) ? inner.1 : other.1)
                }
                let opener = ["(", "(", "(?:", "(?P<n1>", "(?P<n2>", "(?i:"].randomElement(using: &random)!
                piece = (opener + inner.0 + ")", inner.1)
            default:
                piece = atoms.randomElement(using: &random)!
            }
            if Int.random(in: 0..<3, using: &random) == 0 {
                let (quantifier, times) = quantifiers.randomElement(using: &random)!
                piece = (piece.0 + quantifier, String(repeating: piece.1, count: times))
            }
            out += piece.0
            example += piece.1
        }
        if Int.random(in: 0..<12, using: &random) == 0 {
            var scalars = Array(out.unicodeScalars)
            let at = Int.random(in: 0...scalars.count, using: &random)
            if Bool.random(using: &random), at < scalars.count { scalars.remove(at: at) } else { scalars.insert(["(", ")", "[", "{", "\\", "|", "*"].randomElement(using: &random)!, at: at) }
            out = String(String.UnicodeScalarView(scalars))
        }
        return (out, example)
    }

    /// A short value over letters the atoms name (and cases they fold to).
    static func randomValue(_ random: inout SeededGenerator) -> String {
        let alphabet: [Character] = ["a", "a", "b", "A", "B", "1", "-", ".", "α", "Α", "Ω", "ω", "ä", "Ä", "s", "S", "ſ", "k", "K", "\u{212A}", " ", "\n", "_"]
        return String((0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
    }

    /// A PromQL double-quoted string's content; `$` doubled, since `label_replace` expands it.
    private static func quote(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "$", with: "$$")
    }
}
