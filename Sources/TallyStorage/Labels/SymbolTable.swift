#if canImport(Glibc)
import Glibc
#endif

/// Interns label strings so each distinct name or value is stored once per tenant head.
///
/// The bytes of every symbol are also kept back to back in `arena`, so that matching a request's
/// raw label against a symbol is a length check and one byte comparison, with no String retained or
/// released: series lookup on every appended sample compares about twenty of them. Symbols are
/// told apart by their bytes alone, never by Swift's `==` on strings, which calls canonically
/// equivalent strings equal and would store one series' label bytes for another's.
struct SymbolTable {
    private(set) var strings: [String] = []
    private var arena: [UInt8] = []
    /// Per symbol id: offset of its bytes in `arena` and their count.
    private var spans: [(offset: Int, count: Int)] = []
    /// Symbol ids by the hash of their bytes.
    private var byBytes = IndexMap(.hashed)

    mutating func intern(_ string: String) -> UInt32 {
        var string = string
        return string.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    /// The id of the symbol with these bytes, made from them if there is none.
    mutating func intern(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let hash = Self.hash(bytes)
        if let id = byBytes.first(hash, where: { equals(UInt32($0), bytes) }) { return UInt32(id) }
        var string = String(decoding: bytes, as: UTF8.self)
        // Invalid UTF-8 (only a damaged or foreign WAL holds any) is kept as the string repairs it.
        guard string.utf8.elementsEqual(bytes) else { return string.withUTF8 { intern(UnsafeRawBufferPointer($0)) } }
        let id = UInt32(strings.count)
        strings.append(string)
        spans.append((arena.count, bytes.count))
        arena.append(contentsOf: bytes)
        byBytes.add(hash, Int32(id))
        return id
    }

    func id(of string: String) -> UInt32? {
        var string = string
        return string.withUTF8 { id(of: UnsafeRawBufferPointer($0)) }
    }

    /// The id of the symbol with these bytes, found without creating a String.
    func id(of bytes: UnsafeRawBufferPointer) -> UInt32? {
        byBytes.first(Self.hash(bytes)) { equals(UInt32($0), bytes) }.map(UInt32.init)
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = LabelHasher()
        hasher.combine(bytes)
        return hasher.value
    }

    var count: Int { strings.count }

    /// Heap bytes of the strings, the lookup dictionary, the arena and the spans.
    var heapBytes: Int {
        HeadMemory.array(strings) + strings.reduce(0) { $0 + HeadMemory.string($1) } + HeadMemory.array(arena) + HeadMemory.array(spans) + byBytes.heapBytes
    }

    subscript(id: UInt32) -> String { strings[Int(id)] }

    /// Calls `body` with a symbol's bytes.
    func withBytes<R>(_ id: UInt32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let span = spans[Int(id)]
        return arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[span.offset..<span.offset + span.count])) }
    }

    /// Compares a symbol with raw bytes without creating a String.
    func equals(_ id: UInt32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let span = spans[Int(id)]
        guard span.count == bytes.count else { return false }
        return span.count == 0 || arena.withUnsafeBytes { Self.sameBytes($0.baseAddress! + span.offset, bytes.baseAddress!, span.count) }
    }

    /// Whether `count` bytes at `a` and `b` are equal: eight at a time, inline. Symbols are mostly
    /// under 40 bytes, and a lookup by labels compares about twenty a series, where a call to
    /// `memcmp` each cost more than the comparing.
    @inline(__always)
    private static func sameBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
        var i = 0
        while i + 8 <= count {
            guard a.loadUnaligned(fromByteOffset: i, as: UInt64.self) == b.loadUnaligned(fromByteOffset: i, as: UInt64.self) else { return false }
            i += 8
        }
        // The last 1-7 bytes as the word that ends at `count` (overlapping bytes already equal),
        // or byte by byte when the whole is shorter than a word.
        if i < count {
            if count >= 8 {
                return a.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            }
            while i < count {
                guard a.load(fromByteOffset: i, as: UInt8.self) == b.load(fromByteOffset: i, as: UInt8.self) else { return false }
                i += 1
            }
        }
        return true
    }
}

/// A 64-bit hash of a label set's bytes, the same whether computed from a request buffer or from
/// stored strings; collisions are resolved by comparing the labels. Sixteen bytes per step with one
/// 64x64->128-bit multiply folded to 64 bits (the `wyhash` construction): the known-series lookup
/// hashes every series' encoded labels (about 225 bytes here) once per request.
struct LabelHasher {
    private(set) var value: UInt64 = 0x9E37_79B9_7F4A_7C15

    private static let p0: UInt64 = 0xA076_1D64_78BD_642F
    private static let p1: UInt64 = 0xE703_7ED1_A0B4_28DB

    @inline(__always)
    private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        // The length goes in first, so that ("ab", "c") and ("a", "bc") differ.
        var h = Self.fold(value ^ Self.p0, UInt64(n) ^ Self.p1)
        var i = 0
        while i + 16 <= n {
            h = Self.fold(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ Self.p1,
                          bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self) ^ h)
            i += 16
        }
        // The last 0-15 bytes, read as two words that may overlap (their length is in h already).
        let rest = n - i
        var a: UInt64 = 0, b: UInt64 = 0
        if rest >= 8 {
            a = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            b = bytes.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        } else if rest >= 4 {
            a = UInt64(bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            b = UInt64(bytes.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
        } else if rest > 0 {
            a = UInt64(bytes[i]) << 16 | UInt64(bytes[i + rest / 2]) << 8 | UInt64(bytes[n - 1])
        }
        value = Self.fold(a ^ Self.p1 ^ h, b ^ Self.p0)
    }

    /// Adds a hash made by `hash(of:)`, as a label set is hashed from its strings' hashes.
    mutating func combine(hash: UInt64) {
        value = Self.fold(value ^ Self.p0, hash ^ Self.p1)
    }

    /// The hash of one string alone.
    static func hash(of string: String) -> UInt64 {
        var hasher = LabelHasher()
        hasher.combine(string)
        return hasher.value
    }

    mutating func combine(_ string: String) {
        var s = string
        s.withUTF8 { combine(UnsafeRawBufferPointer($0)) }
    }
}
