/// Numbers as Prometheus reads and prints them with Go's `strconv`: a number token is tried as an
/// integer first (`ParseInt(s, 0, 64)`: `0x` hex, leading-zero octal), then as a float; a literal
/// prints with `%v` (shortest digits; exponent form below 1e-4 and from 1e6 on).
enum GoNumbers {
    /// The value of a number token (`123`, `0x1F`, `0755`, `1.5e3`, `.5`, `Inf`, `NaN`).
    static func parse(_ text: String) -> Result<Double, PromQLParseMessage> {
        if let integer = parseInteger(text) { return .success(Double(integer)) }
        let syntaxError = PromQLParseMessage("error parsing number: strconv.ParseFloat: parsing \(GoQuoting.quote(text)): invalid syntax")
        switch text.lowercased() {
        case "inf": return .success(.infinity)
        case "nan": return .success(.nan)
        default: break
        }
        // Decimal only: the lexer gives no sign, and Go reads a hex mantissa only with a `p` exponent,
        // which no PromQL token has.
        let isDecimal = text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
        }
        guard isDecimal, let value = Double(text) else { return .failure(syntaxError) }
        guard value.isFinite else {
            return .failure(PromQLParseMessage("error parsing number: strconv.ParseFloat: parsing \(GoQuoting.quote(text)): value out of range"))
        }
        return .success(value)
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
    static func format(_ value: Double) -> String {
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
