/// Numbers as Prometheus reads and prints them with Go's `strconv`: a number token is tried as an
/// integer first (`ParseInt(s, 0, 64)`: `0x` hex, leading-zero octal), then as a float; a literal
/// prints with `%v` (shortest digits; exponent form below 1e-4 and from 1e6 on).
public enum GoNumbers {
    /// What Go's `strconv.ParseFloat(s, 64)` makes of a text.
    public enum ParsedFloat: Equatable, Sendable {
        case value(Double)
        /// `invalid syntax`.
        case invalidSyntax
        /// `value out of range`: a finite literal past the largest float64 (Go returns ±Inf with it).
        case outOfRange
    }

    /// Go's `strconv.ParseFloat(text, 64)` (`readFloat`, `special` and `underscoreOK` in Go's
    /// `strconv`), which Prometheus applies to API times and durations and to bucket bounds: a sign,
    /// then decimal digits with an optional `.` and `e` exponent, or `0x` hex digits with a required
    /// `p` exponent; `_` only between digits (or after the `0x`); or `inf`, `infinity` (signed) or
    /// `nan` in any case. Nothing else, and the whole text.
    public static func parseFloat(_ text: String) -> ParsedFloat {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return .invalidSyntax }
        switch text.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .value(.infinity)
        case "-inf", "-infinity": return .value(-.infinity)
        case "nan": return .value(.nan)
        default: break
        }
        let bytes = Array(text.utf8)
        guard isFloatLiteral(bytes) else { return .invalidSyntax }
        // The grammar checked, the C library's conversion (correctly rounded, hex included) gives the value.
        guard let value = Double(String(decoding: bytes.lazy.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)) else {
            return .invalidSyntax
        }
        return value.isInfinite ? .outOfRange : .value(value)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isHexLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "f") }

    /// Go's `readFloat` consuming all of `s`, and `underscoreOK` where it saw an underscore.
    private static func isFloatLiteral(_ s: [UInt8]) -> Bool {
        var i = 0
        if i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { i += 1 }
        var hex = false
        if i + 1 < s.count, s[i] == UInt8(ascii: "0"), s[i + 1] | 0x20 == UInt8(ascii: "x") {
            hex = true
            i += 2
        }
        var sawDot = false, sawDigits = false, underscores = false
        mantissa: while i < s.count {
            let byte = s[i]
            if byte == UInt8(ascii: "_") {
                underscores = true
            } else if byte == UInt8(ascii: ".") {
                if sawDot { break mantissa }
                sawDot = true
            } else if isDigit(byte) || (hex && isHexLetter(byte)) {
                sawDigits = true
            } else {
                break mantissa
            }
            i += 1
        }
        guard sawDigits else { return false }
        if i < s.count, s[i] | 0x20 == (hex ? UInt8(ascii: "p") : UInt8(ascii: "e")) {
            i += 1
            if i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { i += 1 }
            guard i < s.count, isDigit(s[i]) else { return false }
            while i < s.count, isDigit(s[i]) || s[i] == UInt8(ascii: "_") {
                if s[i] == UInt8(ascii: "_") { underscores = true }
                i += 1
            }
        } else if hex {
            // A hex mantissa needs its exponent.
            return false
        }
        return i == s.count && (!underscores || underscoresSeparateDigits(s))
    }

    /// Go's `underscoreOK`: every `_` follows a digit (or the base prefix) and is followed by one.
    private static func underscoresSeparateDigits(_ text: [UInt8]) -> Bool {
        var s = text[...]
        if let first = s.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") { s = s.dropFirst() }
        enum Saw { case start, digit, underscore, other }
        var saw = Saw.start
        var hex = false
        if s.count >= 2, s.first == UInt8(ascii: "0"), [UInt8(ascii: "b"), UInt8(ascii: "o"), UInt8(ascii: "x")].contains(s[s.startIndex + 1] | 0x20) {
            hex = s[s.startIndex + 1] | 0x20 == UInt8(ascii: "x")
            s = s.dropFirst(2)
            saw = .digit
        }
        for byte in s {
            if isDigit(byte) || (hex && isHexLetter(byte)) {
                saw = .digit
            } else if byte == UInt8(ascii: "_") {
                guard saw == .digit else { return false }
                saw = .underscore
            } else {
                guard saw != .underscore else { return false }
                saw = .other
            }
        }
        return saw != .underscore
    }

    /// The value of a number token (`123`, `0x1F`, `0755`, `1.5e3`, `.5`, `Inf`, `NaN`).
    static func parse(_ text: String) -> Result<Double, PromQLParseMessage> {
        if let integer = parseInteger(text) { return .success(Double(integer)) }
        switch parseFloat(text) {
        case let .value(value): return .success(value)
        case .outOfRange:
            return .failure(PromQLParseMessage("error parsing number: strconv.ParseFloat: parsing \(GoQuoting.quote(text)): value out of range"))
        case .invalidSyntax:
            return .failure(PromQLParseMessage("error parsing number: strconv.ParseFloat: parsing \(GoQuoting.quote(text)): invalid syntax"))
        }
    }

    /// `strconv.ParseInt(text, 0, 64)`, nil where it fails.
    private static func parseInteger(_ text: String) -> Int64? {
        let lower = text.lowercased()
        if lower.hasPrefix("0x") { return Int64(lower.dropFirst(2), radix: 16) }
        if lower.hasPrefix("0"), lower.count > 1 { return Int64(lower.dropFirst(), radix: 8) }
        guard lower.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(lower, radix: 10)
    }

    /// Go's `%v` of a float64: `1`, `0.5`, `1e+06`, `1.5e-05`, `+Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        let sign = value.sign == .minus ? "-" : ""
        let (digits, decimalPoint) = shortestDigits(abs(value))
        let exponent = decimalPoint - 1
        if exponent < -4 || exponent >= 6 {
            return sign + exponential(digits, exponent: exponent)
        }
        if decimalPoint <= 0 {
            return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits
        }
        if decimalPoint >= digits.count {
            return sign + digits + String(repeating: "0", count: decimalPoint - digits.count)
        }
        let split = digits.index(digits.startIndex, offsetBy: decimalPoint)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent
    /// (`100000000`, `0.000001`, `NaN`, `+Inf`): how Prometheus prints sample values.
    static func fixed(_ value: Double) -> String {
        var text: [UInt8] = []
        appendFixed(value, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// `fixed(value)` appended as UTF-8: an answer prints one a point, so this makes no string of
    /// its own for most values.
    static func appendFixed(_ value: Double, to out: inout [UInt8]) {
        if value.isNaN { return out.append(contentsOf: "NaN".utf8) }
        if value.isInfinite { return out.append(contentsOf: (value > 0 ? "+Inf" : "-Inf").utf8) }
        if value.sign == .minus { out.append(UInt8(ascii: "-")) }
        // Swift writes most values (1e-4 <= |v| < 2^53) without an exponent, with the same shortest
        // digits and a ".0" or trailing zeros of the fraction to drop; those skip taking the digits
        // apart.
        var plain = abs(value).description
        let appended = plain.withUTF8 { text in
            guard !text.contains(UInt8(ascii: "e")) else { return false }
            var end = text.count
            if text.contains(UInt8(ascii: ".")) {
                while text[end - 1] == UInt8(ascii: "0") { end -= 1 }
                if text[end - 1] == UInt8(ascii: ".") { end -= 1 }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[..<end]))
            return true
        }
        if appended { return }
        let (digits, decimalPoint) = shortestDigits(abs(value))
        if digits == "0" { return out.append(UInt8(ascii: "0")) }
        if decimalPoint <= 0 {
            out.append(contentsOf: "0.".utf8)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -decimalPoint))
            out.append(contentsOf: digits.utf8)
        } else if decimalPoint >= digits.utf8.count {
            out.append(contentsOf: digits.utf8)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: decimalPoint - digits.utf8.count))
        } else {
            out.append(contentsOf: digits.utf8.prefix(decimalPoint))
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: digits.utf8.dropFirst(decimalPoint))
        }
    }

    private static func exponential(_ digits: String, exponent: Int) -> String {
        var mantissa = String(digits.prefix(1))
        if digits.count > 1 { mantissa += "." + digits.dropFirst() }
        let magnitude = abs(exponent)
        return mantissa + (exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + String(magnitude)
    }

    /// The shortest decimal digits that read back as `value` (positive, finite), without leading or
    /// trailing zeros, and where the decimal point goes: value = 0.digits × 10^decimalPoint.
    /// Swift's `description` already holds the shortest round-trip digits; this only takes them apart.
    private static func shortestDigits(_ value: Double) -> (digits: String, decimalPoint: Int) {
        if value == 0 { return ("0", 1) }
        let text = value.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let mantissa = parts[0]
        let exponent = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = pieces[0]
        let fractionPart = pieces.count > 1 ? pieces[1] : ""
        var digits = String(integerPart + fractionPart)
        var decimalPoint = integerPart.count + exponent
        while digits.hasPrefix("0") {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.hasSuffix("0") { digits.removeLast() }
        return (digits, decimalPoint)
    }
}
