/// Go's quoting (`strconv.Quote`, `QuoteRune`, `%#U`), because Prometheus prints strings, label values
/// and the characters in its error messages with it, and Tally's text must match Prometheus' byte for byte.
enum GoQuoting {
    /// `strconv.Quote(s)`, or `%q` of a string, with one difference: U+FFFD is written `\ufffd`.
    /// Go writes it as is, and Prometheus' lexer then refuses the printed query ("invalid UTF-8
    /// rune"); Tally's printed queries parse again. (Tally also holds bytes that are not UTF-8, which
    /// Prometheus prints as `\xff`, as U+FFFD.)
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            if scalar == replacementCharacter {
                out += "\\ufffd"
            } else {
                appendEscaped(scalar, quote: "\"", to: &out)
            }
        }
        return out + "\""
    }

    /// `%.Nq`: the first `runes` characters of `s`, quoted (Prometheus shortens long tokens so).
    static func quote(_ s: String, runes: Int) -> String {
        quote(String(String.UnicodeScalarView(s.unicodeScalars.prefix(runes))))
    }

    /// `strconv.QuoteRune(r)`, or `%q` of a rune; nil stands for Go's end-of-input rune (-1).
    static func quoteRune(_ scalar: Unicode.Scalar?) -> String {
        var out = "'"
        appendEscaped(scalar ?? replacementCharacter, quote: "'", to: &out)
        return out + "'"
    }

    /// `%#U`: `U+0071 'q'`, the quoted form only for printable characters.
    static func unicodeNotation(_ scalar: Unicode.Scalar?) -> String {
        let value = scalar?.value ?? replacementCharacter.value
        var hex = String(value, radix: 16, uppercase: true)
        if hex.count < 4 { hex = String(repeating: "0", count: 4 - hex.count) + hex }
        guard let scalar, isPrint(scalar) else { return "U+" + hex }
        return "U+\(hex) '\(Character(scalar))'"
    }

    static let replacementCharacter: Unicode.Scalar = "\u{FFFD}"

    private static func appendEscaped(_ scalar: Unicode.Scalar, quote: Unicode.Scalar, to out: inout String) {
        if scalar == quote || scalar == "\\" {
            out.unicodeScalars.append("\\")
            out.unicodeScalars.append(scalar)
            return
        }
        if isPrint(scalar) {
            out.unicodeScalars.append(scalar)
            return
        }
        switch scalar {
        case "\u{07}": out += "\\a"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{0B}": out += "\\v"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\x" + hexDigits(scalar.value, width: 2)
            } else if scalar.value < 0x10000 {
                out += "\\u" + hexDigits(scalar.value, width: 4)
            } else {
                out += "\\U" + hexDigits(scalar.value, width: 8)
            }
        }
    }

    private static func hexDigits(_ value: UInt32, width: Int) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - hex.count)) + hex
    }

    /// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
    static func isPrint(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark,
             .decimalNumber, .letterNumber, .otherNumber,
             .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation,
             .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return true
        default:
            return false
        }
    }
}
