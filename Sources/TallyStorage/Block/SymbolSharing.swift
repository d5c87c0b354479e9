#if canImport(Glibc)
import Glibc
#endif

/// Finds, for the bytes of a symbol, an equal `String` already held in a byte-sorted array, so a
/// block opened beside another holds one copy of the strings they share rather than two. A
/// tenant's blocks mostly hold the same series, so their symbol tables are mostly equal: opened
/// alone, twelve blocks of a million series kept twelve copies of about 250,000 pod, node and
/// namespace strings.
///
/// Lookups come in ascending byte order (a block's symbol table, or the values of one label name in
/// its postings offset table), so one forward walk over the array serves a whole table; `seek`
/// starts a new ascending run. An array that is not sorted (a corrupt neighbour) only finds less:
/// a string is reused only when its bytes are equal.
struct SymbolSharing {
    private let strings: [String]
    private let hashes: [UInt64]
    private var position = 0

    init(_ strings: [String], hashes: [UInt64]) {
        self.strings = strings
        self.hashes = hashes
    }

    /// The held string equal to `bytes` and its hash, if there is one at or after the walk's place.
    mutating func match(_ bytes: UnsafeRawBufferPointer) -> (string: String, hash: UInt64)? {
        while position < strings.count {
            let order = Self.compare(strings[position], bytes)
            if order == 0 { return (strings[position], hashes[position]) }
            if order > 0 { return nil }
            position += 1
        }
        return nil
    }

    /// Starts a new ascending run at the first string not below `bytes` (a binary search).
    mutating func seek(_ bytes: UnsafeRawBufferPointer) {
        var low = 0, high = strings.count
        while low < high {
            let middle = low + (high - low) / 2
            if Self.compare(strings[middle], bytes) < 0 { low = middle + 1 } else { high = middle }
        }
        position = low
    }

    /// Go's string order: bytewise, a prefix first.
    private static func compare(_ string: String, _ bytes: UnsafeRawBufferPointer) -> Int {
        var string = string
        return string.withUTF8 { utf8 in
            let common = min(utf8.count, bytes.count)
            if common > 0, let a = utf8.baseAddress, let b = bytes.baseAddress {
                let order = memcmp(a, b, common)
                if order != 0 { return Int(order) }
            }
            return utf8.count - bytes.count
        }
    }
}
