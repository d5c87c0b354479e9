import TallyStorage

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
                GoFormat.appendEscaped(scalar, quote: "\"", to: &out)
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
        GoFormat.appendEscaped(scalar ?? replacementCharacter, quote: "'", to: &out)
        return out + "'"
    }

    /// `%#U`: `U+0071 'q'`, the quoted form only for printable characters.
    static func unicodeNotation(_ scalar: Unicode.Scalar?) -> String {
        let value = scalar?.value ?? replacementCharacter.value
        var hex = String(value, radix: 16, uppercase: true)
        if hex.count < 4 { hex = String(repeating: "0", count: 4 - hex.count) + hex }
        guard let scalar, GoFormat.isPrint(scalar) else { return "U+" + hex }
        return "U+\(hex) '\(Character(scalar))'"
    }

    static let replacementCharacter: Unicode.Scalar = "\u{FFFD}"
}
