/// A PromQL label matcher. Regexes are fully anchored, as in Prometheus.
public struct LabelMatcher: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case equal = "=", notEqual = "!=", regex = "=~", notRegex = "!~" }

    public let name: String
    public let kind: Kind
    public let value: String
    private let pattern: AnchoredPattern?
    /// A regex that is only an alternation of plain strings (`a|b|c`), as a set: matched without a
    /// regex engine, and looked up in postings value by value (Prometheus' set matches).
    private let literals: Set<String>?

    public init(_ name: String, _ kind: Kind, _ value: String) throws(SelectorError) {
        self.name = name
        self.kind = kind
        self.value = value
        if kind == .regex || kind == .notRegex {
            pattern = try AnchoredPattern(value)
            let metacharacters = Set("\\.+*?()[]{}^$")
            literals = value.contains(where: metacharacters.contains) ? nil : Set(value.split(separator: "|", omittingEmptySubsequences: false).map(String.init))
        } else {
            pattern = nil
            literals = nil
        }
    }

    /// The only values a matching series can have for the label, when that is a short list and
    /// excludes the empty value: `="x"` and `=~"a|b"`. Indexes look these up directly.
    public var exactValues: [String]? {
        switch kind {
        case .equal: value.isEmpty ? nil : [value]
        case .regex: literals.flatMap { $0.contains("") ? nil : $0.sorted() }
        case .notEqual, .notRegex: nil
        }
    }

    /// A predicate with the regex compiled once, for matching many series.
    public func predicate() -> (String) -> Bool {
        switch kind {
        case .equal: return { [value] in $0 == value }
        case .notEqual: return { [value] in $0 != value }
        case .regex, .notRegex:
            if let literals {
                return kind == .regex ? { literals.contains($0) } : { !literals.contains($0) }
            }
            let regex = pattern!.compile()
            let negate = kind == .notRegex
            return { ((try? regex.wholeMatch(in: $0)) != nil) != negate }
        }
    }

    public static func == (a: LabelMatcher, b: LabelMatcher) -> Bool {
        a.name == b.name && a.kind == b.kind && a.value == b.value
    }

    public var description: String { name + kind.rawValue + GoFormat.quote(value) }
}

/// The source of a `^(?:pattern)$` regex, checked when the matcher is made. Regex values are not
/// Sendable, so matchers carry the source and compile where they match.
struct AnchoredPattern: Sendable {
    let source: String

    init(_ source: String) throws(SelectorError) {
        self.source = source
        do { _ = try Regex("^(?:" + source + ")$") } catch { throw .badRegex(source, "\(error)") }
    }

    func compile() -> Regex<AnyRegexOutput> {
        // Checked in init, so compiling again cannot fail.
        try! Regex("^(?:" + source + ")$")
    }
}

public enum SelectorError: Error, Equatable, CustomStringConvertible {
    case syntax(String, at: Int)
    case badRegex(String, String)

    public var description: String {
        switch self {
        case let .syntax(what, at): "selector: \(what) at offset \(at)"
        case let .badRegex(pattern, why): "selector: invalid regex \(GoFormat.quote(pattern)): \(why)"
        }
    }
}

/// Parses a series selector: `metric`, `{a="b", c=~"d"}` or `metric{...}`.
public enum SelectorParser {
    public static func parse(_ text: String) throws(SelectorError) -> [LabelMatcher] {
        let chars = Array(text.unicodeScalars)
        var i = 0
        var matchers: [LabelMatcher] = []
        func skipSpace() { while i < chars.count && chars[i].properties.isWhitespace { i += 1 } }
        func identifier(allowColon: Bool) -> String {
            var out = ""
            while i < chars.count {
                let c = chars[i]
                let ok = c == "_" || (c.isASCII && (c.properties.isAlphabetic || (!out.isEmpty && ("0"..."9").contains(c)))) || (allowColon && c == ":")
                if !ok { break }
                out.unicodeScalars.append(c)
                i += 1
            }
            return out
        }
        skipSpace()
        let metric = identifier(allowColon: true)
        if !metric.isEmpty { matchers.append(try LabelMatcher("__name__", .equal, metric)) }
        skipSpace()
        if i < chars.count && chars[i] == "{" {
            i += 1
            while true {
                skipSpace()
                if i < chars.count && chars[i] == "}" { i += 1; break }
                let name = identifier(allowColon: false)
                if name.isEmpty { throw .syntax("expected a label name", at: i) }
                skipSpace()
                var op = ""
                while i < chars.count && "=!~".unicodeScalars.contains(chars[i]) && op.count < 2 {
                    op.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard let kind = LabelMatcher.Kind(rawValue: op) else { throw .syntax("expected =, !=, =~ or !~", at: i) }
                skipSpace()
                let value = try quoted(chars, &i)
                matchers.append(try LabelMatcher(name, kind, value))
                skipSpace()
                if i < chars.count && chars[i] == "," { i += 1; continue }
                if i < chars.count && chars[i] == "}" { i += 1; break }
                throw .syntax("expected , or }", at: i)
            }
        }
        skipSpace()
        if i != chars.count { throw .syntax("unexpected text", at: i) }
        if matchers.isEmpty { throw .syntax("empty selector", at: 0) }
        return matchers
    }

    private static func quoted(_ chars: [Unicode.Scalar], _ i: inout Int) throws(SelectorError) -> String {
        guard i < chars.count, chars[i] == "\"" || chars[i] == "'" else { throw .syntax("expected a quoted string", at: i) }
        let quote = chars[i]
        i += 1
        var out = ""
        while i < chars.count && chars[i] != quote {
            if chars[i] == "\\" && i + 1 < chars.count {
                i += 1
                switch chars[i] {
                case "n": out += "\n"
                case "t": out += "\t"
                case "r": out += "\r"
                default: out.unicodeScalars.append(chars[i])
                }
            } else {
                out.unicodeScalars.append(chars[i])
            }
            i += 1
        }
        guard i < chars.count else { throw .syntax("unterminated string", at: i) }
        i += 1
        return out
    }
}
