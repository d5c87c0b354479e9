#if canImport(Glibc)
import Glibc
#endif

/// Interns label strings so each distinct name or value is stored once per tenant head.
///
/// The bytes of every symbol are also kept back to back in `arena`, so that matching a request's
/// raw label against a symbol is a length check and one memcmp, with no String retained or
/// released: series lookup on every appended sample compares about twenty of them.
struct SymbolTable {
    private(set) var strings: [String] = []
    private var ids: [String: UInt32] = [:]
    private var arena: [UInt8] = []
    /// Per symbol id: offset of its bytes in `arena` and their count.
    private var spans: [(offset: Int, count: Int)] = []

    mutating func intern(_ string: String) -> UInt32 {
        if let id = ids[string] { return id }
        let id = UInt32(strings.count)
        strings.append(string)
        ids[string] = id
        spans.append((arena.count, string.utf8.count))
        arena.append(contentsOf: string.utf8)
        return id
    }

    func id(of string: String) -> UInt32? { ids[string] }

    subscript(id: UInt32) -> String { strings[Int(id)] }

    /// Compares a symbol with raw bytes without creating a String.
    func equals(_ id: UInt32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let span = spans[Int(id)]
        guard span.count == bytes.count else { return false }
        return span.count == 0 || arena.withUnsafeBytes { memcmp($0.baseAddress! + span.offset, bytes.baseAddress!, span.count) == 0 }
    }
}

/// A 64-bit hash of a label set's bytes, the same whether computed from a request buffer or from
/// stored strings. Eight bytes per step; collisions are resolved by comparing the labels.
struct LabelHasher {
    private(set) var value: UInt64 = 0x9E37_79B9_7F4A_7C15

    mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        var h = value ^ UInt64(bytes.count) &* 0xFF51_AFD7_ED55_8CCD
        var i = 0
        while i + 8 <= bytes.count {
            h = Self.mix(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < bytes.count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < bytes.count {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = Self.mix(h ^ tail)
        }
        value = Self.mix(h ^ 0xFF)
    }

    mutating func combine(_ string: String) {
        var s = string
        s.withUTF8 { combine(UnsafeRawBufferPointer($0)) }
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        return z ^ (z >> 31)
    }
}
