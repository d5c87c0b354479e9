/// A ULID: 48-bit millisecond time and 80 random bits in 26 Crockford base32 characters, the name
/// of a Prometheus block directory. Sorting names sorts by creation time.
public struct ULID: Sendable, Hashable, Comparable, CustomStringConvertible {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    public let description: String

    public init(milliseconds: UInt64, random: (UInt64, UInt16)) {
        // 128 bits as (high 64, low 64): time in the top 48, randomness in the rest.
        let high = milliseconds << 16 | UInt64(random.1)
        let low = random.0
        var chars = [UInt8](repeating: 0, count: 26)
        for i in 0..<26 {
            let shift = 125 - 5 * i        // bit offset of this character's lowest bit
            let value: UInt64
            if shift >= 64 {
                value = high >> UInt64(shift - 64)
            } else if shift > 59 {
                value = (high << UInt64(64 - shift)) | (low >> UInt64(shift))
            } else {
                value = low >> UInt64(shift)
            }
            chars[i] = Self.alphabet[Int(value & 31)]
        }
        description = String(decoding: chars, as: UTF8.self)
    }

    public init(milliseconds: UInt64) {
        var rng = SystemRandomNumberGenerator()
        self.init(milliseconds: milliseconds, random: (rng.next(), rng.next()))
    }

    /// Parses strictly, as Prometheus' `ulid.ParseStrict` does for block directory names.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 26, bytes[0] <= UInt8(ascii: "7"), bytes.allSatisfy({ Self.alphabet.contains($0) }) else { return nil }
        description = text
    }

    public static func < (a: ULID, b: ULID) -> Bool { a.description < b.description }
}
