/// Splits a PromQL query into tokens as Prometheus 2.42's lexer (`promql/parser/lex.go`) does, quirks
/// included, because which queries fail, and with what message, depends on them: inside `[...]` any
/// letter reads as the subquery colon, and the item right after `[` is always read as a duration.
/// Comments and whitespace are skipped. Works on the UTF-8 bytes, so positions are byte offsets.
struct Lexer {
    private let input: [UInt8]
    private var pos = 0
    /// Start of the item being read.
    private var start = 0
    /// Byte width of the last character read, for `backup()`; 0 at the end of input.
    private var width = 0

    private var parenDepth = 0
    private var braceOpen = false
    private var bracketOpen = false
    private var gotColon = false
    /// The item after `[` is read as a duration whatever it looks like.
    private var durationNext = false

    init(_ input: [UInt8]) {
        self.input = input
    }

    mutating func next() throws(PromQLParseError) -> Token {
        while true {
            if durationNext {
                durationNext = false
                return try lexDuration()
            }
            if let token = try (braceOpen ? lexInsideBraces() : lexStatement()) {
                return token
            }
        }
    }

    // MARK: states

    /// One item outside braces; nil when only whitespace or a comment was read.
    private mutating func lexStatement() throws(PromQLParseError) -> Token? {
        start = pos
        if pos < input.count, input[pos] == UInt8(ascii: "#") {
            skipComment()
            return nil
        }
        guard let r = nextRune() else {
            if parenDepth != 0 { throw error("unclosed left parenthesis") }
            if bracketOpen { throw error("unclosed left bracket") }
            return emit(.eof)
        }
        switch r {
        case ",": return emit(.comma)
        case " ", "\t", "\n", "\r":
            skipSpaces()
            return nil
        case "*": return emit(.binary(.mul))
        case "/": return emit(.binary(.div))
        case "%": return emit(.binary(.mod))
        case "+": return emit(.binary(.add))
        case "-": return emit(.binary(.sub))
        case "^": return emit(.binary(.pow))
        case "=":
            let following = peek()
            if following == "=" {
                _ = nextRune()
                return emit(.binary(.equal))
            }
            if following == "~" { throw error("unexpected character after '=': " + GoQuoting.quoteRune(following)) }
            return emit(.equal)
        case "!":
            let following = nextRune()
            guard following == "=" else { throw error("unexpected character after '!': " + GoQuoting.quoteRune(following)) }
            return emit(.binary(.notEqual))
        case "<":
            if peek() == "=" {
                _ = nextRune()
                return emit(.binary(.lessOrEqual))
            }
            return emit(.binary(.less))
        case ">":
            if peek() == "=" {
                _ = nextRune()
                return emit(.binary(.greaterOrEqual))
            }
            return emit(.binary(.greater))
        case "\"", "'": return try lexString(quote: r)
        case "`": return try lexRawString()
        case "(":
            parenDepth += 1
            return emit(.leftParen)
        case ")":
            parenDepth -= 1
            if parenDepth < 0 {
                // Prometheus reports this one after the parenthesis.
                start = pos
                throw error("unexpected right parenthesis ')'")
            }
            return emit(.rightParen)
        case "{":
            braceOpen = true
            return emit(.leftBrace)
        case "[":
            if bracketOpen { throw error("unexpected left bracket '['") }
            gotColon = false
            let token = emit(.leftBracket)
            while let next = peek(), Self.isSpace(next) { _ = nextRune() }
            bracketOpen = true
            durationNext = true
            return token
        case "]":
            if !bracketOpen { throw error("unexpected right bracket ']'") }
            bracketOpen = false
            return emit(.rightBracket)
        case "@": return emit(.at)
        default:
            if Self.isDigit(r) || (r == "." && peek().map(Self.isDigit) == true) {
                backup()
                return try lexNumberOrDuration()
            }
            if Self.isAlpha(r) || r == ":" {
                if !bracketOpen {
                    backup()
                    return lexKeywordOrIdentifier()
                }
                if gotColon { throw error("unexpected colon " + GoQuoting.quoteRune(r)) }
                gotColon = true
                return emit(.colon)
            }
            throw error("unexpected character: " + GoQuoting.quoteRune(r))
        }
    }

    /// One item inside `{...}`; nil when only whitespace or a comment was read.
    private mutating func lexInsideBraces() throws(PromQLParseError) -> Token? {
        start = pos
        if pos < input.count, input[pos] == UInt8(ascii: "#") {
            skipComment()
            return nil
        }
        guard let r = nextRune() else { throw error("unexpected end of input inside braces") }
        switch r {
        case " ", "\t", "\n", "\r":
            skipSpaces()
            return nil
        case ",": return emit(.comma)
        case "\"", "'": return try lexString(quote: r)
        case "`": return try lexRawString()
        case "=":
            if nextRune() == "~" { return emit(.equalRegex) }
            backup()
            return emit(.equal)
        case "!":
            let following = nextRune()
            if following == "~" { return emit(.notEqualRegex) }
            if following == "=" { return emit(.binary(.notEqual)) }
            throw error("unexpected character after '!' inside braces: " + GoQuoting.quoteRune(following))
        case "{": throw error("unexpected left brace '{'")
        case "}":
            braceOpen = false
            return emit(.rightBrace)
        default:
            guard Self.isAlpha(r) else { throw error("unexpected character inside braces: " + GoQuoting.quoteRune(r)) }
            while let next = peek(), Self.isAlphaNumeric(next) { _ = nextRune() }
            return emit(.identifier)
        }
    }

    private mutating func lexKeywordOrIdentifier() -> Token {
        while let next = peek(), Self.isAlphaNumeric(next) || next == ":" { _ = nextRune() }
        let word = String(decoding: input[start..<pos], as: UTF8.self)
        if let kind = Token.words[word.lowercased()] { return emit(kind) }
        return emit(word.contains(":") ? .metricIdentifier : .identifier)
    }

    private mutating func lexString(quote: Unicode.Scalar) throws(PromQLParseError) -> Token {
        while true {
            switch nextRune() {
            case "\\": try lexEscape(quote: quote)
            case GoQuoting.replacementCharacter: throw error("invalid UTF-8 rune")
            case nil, "\n": throw error("unterminated quoted string")
            case quote: return emit(.string)
            default: continue
            }
        }
    }

    /// Checks one escape sequence the way Go's scanner does; `StringLiteralDecoding` gives its value.
    private mutating func lexEscape(quote: Unicode.Scalar) throws(PromQLParseError) {
        var ch = nextRune()
        let digits: Int, base: UInt32, max: UInt32
        switch ch {
        case "a", "b", "f", "n", "r", "t", "v", "\\", quote:
            return
        case "0", "1", "2", "3", "4", "5", "6", "7":
            (digits, base, max) = (3, 8, 255)
        case "x":
            ch = nextRune()
            (digits, base, max) = (2, 16, 255)
        case "u":
            ch = nextRune()
            (digits, base, max) = (4, 16, 0x10FFFF)
        case "U":
            ch = nextRune()
            (digits, base, max) = (8, 16, 0x10FFFF)
        case nil:
            throw error("escape sequence not terminated")
        default:
            throw error("unknown escape sequence " + GoQuoting.unicodeNotation(ch))
        }
        var value: UInt32 = 0
        for index in 0..<digits {
            if index > 0 { ch = nextRune() }
            guard let digit = ch.flatMap(Self.hexValue), digit < base else {
                if ch == nil { throw error("escape sequence not terminated") }
                throw error("illegal character \(GoQuoting.unicodeNotation(ch)) in escape sequence")
            }
            value = value * base + digit
        }
        if value > max || (0xD800..<0xE000).contains(value) {
            throw error("escape sequence is an invalid Unicode code point")
        }
    }

    private mutating func lexRawString() throws(PromQLParseError) -> Token {
        while true {
            switch nextRune() {
            case GoQuoting.replacementCharacter: throw error("invalid UTF-8 rune")
            case nil: throw error("unterminated raw string")
            case "`": return emit(.string)
            default: continue
            }
        }
    }

    private mutating func lexDuration() throws(PromQLParseError) -> Token {
        start = pos
        if scanNumber() { throw error("missing unit character in duration") }
        guard acceptRemainingDuration() else { throw error("bad duration syntax: " + GoQuoting.quote(currentText)) }
        backup()
        return emit(.duration)
    }

    private mutating func lexNumberOrDuration() throws(PromQLParseError) -> Token {
        if scanNumber() { return emit(.number) }
        if acceptRemainingDuration() {
            backup()
            return emit(.duration)
        }
        throw error("bad number or duration syntax: " + GoQuoting.quote(currentText))
    }

    /// Reads a number's characters; true if what follows cannot continue it (so it is a number).
    private mutating func scanNumber() -> Bool {
        var isDigit: (Unicode.Scalar) -> Bool = Self.isDigit
        if accept({ $0 == "0" }), accept({ $0 == "x" || $0 == "X" }) {
            isDigit = { Self.hexValue($0) != nil }
        }
        acceptRun(isDigit)
        if accept({ $0 == "." }) { acceptRun(isDigit) }
        if accept({ $0 == "e" || $0 == "E" }) {
            _ = accept({ $0 == "+" || $0 == "-" })
            acceptRun(Self.isDigit)
        }
        return !(peek().map(Self.isAlphaNumeric) ?? false)
    }

    /// Reads duration units after the leading digits: `5m`, `1h30m`, `100ms`. Leaves one character
    /// too many read on success, as Prometheus' lexer does (callers back up).
    private mutating func acceptRemainingDuration() -> Bool {
        guard accept({ "smhdwy".unicodeScalars.contains($0) }) else { return false }
        _ = accept({ $0 == "s" })
        while accept(Self.isDigit) {
            acceptRun(Self.isDigit)
            guard accept({ "smhdw".unicodeScalars.contains($0) }) else { return false }
            _ = accept({ $0 == "s" })
        }
        return !(nextRune().map(Self.isAlphaNumeric) ?? false)
    }

    // MARK: characters

    private mutating func nextRune() -> Unicode.Scalar? {
        guard pos < input.count else {
            width = 0
            return nil
        }
        let lead = input[pos]
        let count = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        guard pos + count <= input.count else {
            width = input.count - pos
            pos = input.count
            return GoQuoting.replacementCharacter
        }
        var value = count == 1 ? UInt32(lead) : UInt32(lead) & (0xFF >> (count + 1))
        for index in 1..<count {
            value = value << 6 | UInt32(input[pos + index] & 0x3F)
        }
        width = count
        pos += count
        return Unicode.Scalar(value) ?? GoQuoting.replacementCharacter
    }

    private mutating func peek() -> Unicode.Scalar? {
        let scalar = nextRune()
        backup()
        return scalar
    }

    private mutating func backup() {
        pos -= width
    }

    private mutating func accept(_ valid: (Unicode.Scalar) -> Bool) -> Bool {
        if let r = nextRune(), valid(r) { return true }
        backup()
        return false
    }

    private mutating func acceptRun(_ valid: (Unicode.Scalar) -> Bool) {
        while accept(valid) {}
    }

    private mutating func skipSpaces() {
        while let next = peek(), Self.isSpace(next) { _ = nextRune() }
    }

    private mutating func skipComment() {
        pos += 1
        while pos < input.count, input[pos] != UInt8(ascii: "\n"), input[pos] != UInt8(ascii: "\r") { pos += 1 }
    }

    private var currentText: String { String(decoding: input[start..<pos], as: UTF8.self) }

    private mutating func emit(_ kind: Token.Kind) -> Token {
        let token = Token(kind: kind, start: start, end: pos, text: currentText)
        start = pos
        return token
    }

    private func error(_ message: String) -> PromQLParseError {
        PromQLParseError(message, at: PositionRange(start: start, end: input.count), in: input)
    }

    // Prometheus' character classes are ASCII only.
    static func isSpace(_ r: Unicode.Scalar) -> Bool { r == " " || r == "\t" || r == "\n" || r == "\r" }
    static func isDigit(_ r: Unicode.Scalar) -> Bool { r.value >= 0x30 && r.value <= 0x39 }
    static func isAlpha(_ r: Unicode.Scalar) -> Bool {
        r == "_" || (r.value >= 0x61 && r.value <= 0x7A) || (r.value >= 0x41 && r.value <= 0x5A)
    }
    static func isAlphaNumeric(_ r: Unicode.Scalar) -> Bool { isAlpha(r) || isDigit(r) }

    private static func hexValue(_ r: Unicode.Scalar) -> UInt32? {
        switch r.value {
        case 0x30...0x39: r.value - 0x30
        case 0x61...0x66: r.value - 0x61 + 10
        case 0x41...0x46: r.value - 0x41 + 10
        default: nil
        }
    }
}
