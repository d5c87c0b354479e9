/// A PromQL label matcher. Regexes are fully anchored, as in Prometheus.
public struct LabelMatcher: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case equal = "=", notEqual = "!=", regex = "=~", notRegex = "!~" }

    public let name: String
    public let kind: Kind
    public let value: String
    /// A regex that is only an alternation of plain strings (`a|b|c`), as a set: matched without a
    /// regex engine, and looked up in postings value by value (Prometheus' set matches). Values are
    /// told apart by their bytes, as Go compares strings.
    private let literals: Set<ByteString>?
    /// Any other regex, matched in time linear in the value. No backtracking engine is ever used:
    /// a client's pattern runs against values other clients wrote, and `(a|a)*b` on forty `a`s
    /// would pin a thread for longer than anyone waits.
    private let linear: LinearRegex?

    public init(_ name: String, _ kind: Kind, _ value: String) throws(SelectorError) {
        self.name = name
        self.kind = kind
        self.value = value
        guard kind == .regex || kind == .notRegex else {
            literals = nil
            linear = nil
            return
        }
        // Bytes, not characters: a metacharacter followed by a combining mark is one Character.
        let metacharacters = Set("\\.+*?()[]{}^$".utf8)
        if value.utf8.contains(where: metacharacters.contains) {
            guard let regex = LinearRegex(value) else {
                throw .badRegex(value, "not RE2 syntax as Go 1.19 reads it, or larger than \(LinearRegex.maxInstructions) instructions once repetitions are expanded")
            }
            literals = nil
            linear = regex
        } else {
            literals = Set(value.utf8.split(separator: UInt8(ascii: "|"), omittingEmptySubsequences: false).map { ByteString(String(decoding: $0, as: UTF8.self)) })
            linear = nil
        }
    }

    /// The only values a matching series can have for the label, when that is a short list and
    /// excludes the empty value: `="x"` and `=~"a|b"`. Indexes look these up directly.
    public var exactValues: [String]? {
        switch kind {
        case .equal: value.isEmpty ? nil : [value]
        case .regex: literals.flatMap { $0.contains(ByteString("")) ? nil : $0.sorted().map(\.string) }
        case .notEqual, .notRegex: nil
        }
    }

    /// A predicate with the regex compiled once, for matching many series.
    public func predicate() -> (String) -> Bool {
        switch kind {
        case .equal: return { [value] in Labels.compareBytes($0, value) == 0 }
        case .notEqual: return { [value] in Labels.compareBytes($0, value) != 0 }
        case .regex, .notRegex:
            if let literals {
                return kind == .regex ? { literals.contains(ByteString($0)) } : { !literals.contains(ByteString($0)) }
            }
            let negate = kind == .notRegex, linear = linear!
            return { linear.matches($0) != negate }
        }
    }

    public static func == (a: LabelMatcher, b: LabelMatcher) -> Bool {
        Labels.compareBytes(a.name, b.name) == 0 && a.kind == b.kind && Labels.compareBytes(a.value, b.value) == 0
    }

    public var description: String { name + kind.rawValue + GoFormat.quote(value) }
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
        // PromQL's lexer skips these four only: a no-break space is not a separator.
        func skipSpace() { while i < chars.count && [" ", "\t", "\n", "\r"].contains(chars[i]) { i += 1 } }
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
                let nameAt = i
                let name = identifier(allowColon: false)
                if name.isEmpty { throw .syntax("expected a label name", at: i) }
                if name == "__name__" && !metric.isEmpty { throw .syntax("metric name must not be set twice", at: nameAt) }
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

    /// A quoted string with PromQL's (Go's) escapes: `\a \b \f \n \r \t \v \\`, the quote, three
    /// octal digits, `\xHH`, `\uHHHH` and `\UHHHHHHHH`. Octal and `\x` give bytes, which must add
    /// up to UTF-8. Any other escape is refused, as Prometheus refuses it, rather than read as the
    /// bare character: `"a\.b"` would silently become the regex `a.b`. These are also the escapes
    /// `LabelMatcher.description` prints, so a printed selector parses back to itself. Or a raw
    /// string in backquotes, as PromQL reads it: no escapes, up to the next backquote.
    private static func quoted(_ chars: [Unicode.Scalar], _ i: inout Int) throws(SelectorError) -> String {
        guard i < chars.count, chars[i] == "\"" || chars[i] == "'" || chars[i] == "`" else { throw .syntax("expected a quoted string", at: i) }
        let quote = chars[i]
        let start = i
        i += 1
        if quote == "`" {
            guard let end = chars[i...].firstIndex(of: quote) else { throw .syntax("unterminated raw string", at: chars.count) }
            defer { i = end + 1 }
            return String(String.UnicodeScalarView(chars[i..<end]))
        }
        var out: [UInt8] = []
        func append(_ scalar: Unicode.Scalar) { out.append(contentsOf: String(scalar).utf8) }
        /// The next `count` characters as one number in `radix`.
        func digits(_ count: Int, radix: UInt32) throws(SelectorError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<count {
                guard i < chars.count, chars[i].isASCII, let digit = Character(chars[i]).hexDigitValue, digit < radix else {
                    throw .syntax("expected \(count) base-\(radix) digits in an escape", at: i)
                }
                value = value * radix + UInt32(digit)
                i += 1
            }
            return value
        }
        while i < chars.count && chars[i] != quote {
            // As in PromQL, only a raw string may span lines.
            if chars[i] == "\n" { throw .syntax("newline in a quoted string", at: i) }
            guard chars[i] == "\\" else {
                append(chars[i])
                i += 1
                continue
            }
            let escape = i
            i += 1
            guard i < chars.count else { break }
            let c = chars[i]
            i += 1
            switch c {
            case "a": out.append(0x07)
            case "b": out.append(0x08)
            case "f": out.append(0x0C)
            case "n": out.append(0x0A)
            case "r": out.append(0x0D)
            case "t": out.append(0x09)
            case "v": out.append(0x0B)
            case "\\", quote: append(c)
            case "0"..."7":
                i -= 1
                let byte = try digits(3, radix: 8)
                guard byte <= 0xFF else { throw .syntax("octal escape above \\377", at: escape) }
                out.append(UInt8(byte))
            case "x": out.append(UInt8(try digits(2, radix: 16)))
            case "u", "U":
                guard let scalar = Unicode.Scalar(try digits(c == "u" ? 4 : 8, radix: 16)) else {
                    throw .syntax("escape is not a Unicode scalar", at: escape)
                }
                append(scalar)
            default: throw .syntax("unknown escape \\\(c)", at: escape)
            }
        }
        guard i < chars.count else { throw .syntax("unterminated string", at: i) }
        i += 1
        guard let text = String(validating: out, as: UTF8.self) else { throw .syntax("string is not UTF-8", at: start) }
        return text
    }
}
