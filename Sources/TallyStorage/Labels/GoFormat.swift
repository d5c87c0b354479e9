/// Go's text forms that `promtool tsdb dump` prints, so `tally dump` output compares byte for byte.
public enum GoFormat {
    /// `fmt.Sprintf("%g", v)`: shortest round-trip digits, exponent form when exp < -4 or exp >= 6 (strconv uses 6 as the precision for shortest %g).
    public static func float(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        if v == 0 { return v.sign == .minus ? "-0" : "0" }
        // Swift's description is also the shortest round-trip digit string; re-layout it.
        let text = String(describing: v.magnitude)
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...])!
        }
        var digits = ""
        var pointPosition = mantissa.count
        for (i, c) in mantissa.enumerated() {
            if c == "." { pointPosition = i } else { digits.append(c) }
        }
        // decimalExponent: value = 0.d1d2d3... x 10^decimalExponent
        var decimalExponent = pointPosition + exponent
        while digits.first == "0" {
            digits.removeFirst()
            decimalExponent -= 1
        }
        while digits.count > 1 && digits.last == "0" { digits.removeLast() }
        let sign = v < 0 ? "-" : ""
        let exp = decimalExponent - 1
        if exp < -4 || exp >= 6 {
            var out = sign + String(digits.first!)
            if digits.count > 1 { out += "." + digits.dropFirst() }
            let magnitude = abs(exp)
            out += (exp < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + String(magnitude)
            return out
        }
        if decimalExponent <= 0 {
            return sign + "0." + String(repeating: "0", count: -decimalExponent) + digits
        }
        if decimalExponent >= digits.count {
            return sign + digits + String(repeating: "0", count: decimalExponent - digits.count)
        }
        let split = digits.index(digits.startIndex, offsetBy: decimalExponent)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// `strconv.Quote`: printable runes kept, the usual escapes, others as \x, \u or \U.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars { appendEscaped(scalar, quote: "\"", to: &out) }
        return out + "\""
    }

    /// Go's `appendEscapedRune`: `scalar` as it stands between `quote`s in a Go-quoted string or rune.
    public static func appendEscaped(_ scalar: Unicode.Scalar, quote: Unicode.Scalar, to out: inout String) {
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
                out += "\\x" + hex(scalar.value, 2)
            } else if scalar.value < 0x10000 {
                out += "\\u" + hex(scalar.value, 4)
            } else {
                out += "\\U" + hex(scalar.value, 8)
            }
        }
    }

    /// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
    public static func isPrint(_ scalar: Unicode.Scalar) -> Bool {
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

    private static func hex(_ value: UInt32, _ width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
