/// The value of a quoted PromQL string (`"..."`, `'...'`, or raw `` `...` ``), by Go's escape rules as
/// Prometheus' `strutil.Unquote` applies them. The lexer has already refused malformed escapes.
enum StringLiteralDecoding {
    struct Malformed: Error {}

    /// The value, and whether its bytes were UTF-8 (Prometheus refuses others in a regular
    /// expression, but takes them elsewhere). `token` includes its quotes.
    static func value(of token: String) throws(Malformed) -> (value: String, isUTF8: Bool) {
        let bytes = Array(token.utf8)
        guard bytes.count >= 2, let quote = bytes.first, bytes.last == quote else { throw Malformed() }
        let body = bytes[1..<(bytes.count - 1)]
        if quote == UInt8(ascii: "`") {
            guard !body.contains(quote) else { throw Malformed() }
            return (String(decoding: body, as: UTF8.self), true)
        }
        guard quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'"), !body.contains(UInt8(ascii: "\n")) else {
            throw Malformed()
        }
        // Octal and \x escapes give single bytes; a value that is not UTF-8 then reads with U+FFFD,
        // since Swift strings (and every label Tally stores) are valid UTF-8.
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var index = body.startIndex
        while index < body.endIndex {
            let byte = body[index]
            if byte == quote { throw Malformed() }
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < body.endIndex else { throw Malformed() }
            let escape = body[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "\\"): out.append(escape)
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                guard escape == quote else { throw Malformed() }
                out.append(escape)
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                let count = escape == UInt8(ascii: "x") ? 2 : escape == UInt8(ascii: "u") ? 4 : 8
                let value = try number(body, at: &index, digits: count, radix: 16)
                if escape == UInt8(ascii: "x") {
                    out.append(UInt8(value))
                } else {
                    guard let scalar = Unicode.Scalar(value) else { throw Malformed() }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                }
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                index -= 1
                let value = try number(body, at: &index, digits: 3, radix: 8)
                guard value <= 255 else { throw Malformed() }
                out.append(UInt8(value))
            default:
                throw Malformed()
            }
        }
        let value = String(decoding: out, as: UTF8.self)
        return (value, value.utf8.elementsEqual(out))
    }

    private static func number(_ body: ArraySlice<UInt8>, at index: inout Int, digits: Int, radix: UInt32) throws(Malformed) -> UInt32 {
        guard index + digits <= body.endIndex else { throw Malformed() }
        var value: UInt32 = 0
        for byte in body[index..<(index + digits)] {
            guard let digit = UInt32(String(UnicodeScalar(byte)), radix: Int(radix)) else { throw Malformed() }
            value = value * radix + digit
        }
        index += digits
        return value
    }
}
