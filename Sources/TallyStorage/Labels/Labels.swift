#if canImport(Glibc)
import Glibc
#endif

/// A label pair with owned strings: what the query side hands out. Equal and hashed by bytes, as
/// Prometheus compares labels: Swift's own `==` on strings calls canonically equivalent ones equal
/// (`"\u{E9}"` and `"e\u{301}"`), which would merge two series or two groups that differ.
public struct Label: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public static func == (a: Label, b: Label) -> Bool {
        Labels.compareBytes(a.name, b.name) == 0 && Labels.compareBytes(a.value, b.value) == 0
    }

    public func hash(into hasher: inout Hasher) {
        ByteString.hash(name, into: &hasher)
        ByteString.hash(value, into: &hasher)
    }
}

/// A string equal, hashed and ordered by its UTF-8 bytes, for sets and dictionary keys holding label
/// names and values (see `Label`).
public struct ByteString: Sendable, Hashable, Comparable, ExpressibleByStringLiteral {
    public let string: String
    public init(_ string: String) { self.string = string }
    public init(stringLiteral string: String) { self.string = string }

    public static func == (a: ByteString, b: ByteString) -> Bool { Labels.compareBytes(a.string, b.string) == 0 }
    public static func < (a: ByteString, b: ByteString) -> Bool { Labels.compareBytes(a.string, b.string) < 0 }
    public func hash(into hasher: inout Hasher) { Self.hash(string, into: &hasher) }

    /// Feeds the bytes and their count, so that ("ab", "c") and ("a", "bc") differ.
    static func hash(_ string: String, into hasher: inout Hasher) {
        var string = string
        string.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(string.utf8.count)
    }
}

/// A label set sorted by name, compared like Prometheus' `labels.Compare`.
public struct Labels: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var pairs: [Label]

    /// Sorts by name; the caller guarantees names are unique. Pairs that come sorted (from an
    /// index, the head or another `Labels`) are checked in one pass and kept as they are.
    public init(_ pairs: [Label]) {
        let sorted = pairs.indices.dropFirst().allSatisfy { Self.compareBytes(pairs[$0 - 1].name, pairs[$0].name) < 0 }
        self.pairs = sorted ? pairs : pairs.sorted { Self.compareBytes($0.name, $1.name) < 0 }
    }

    /// Pairs the caller has found sorted by name, kept as they are.
    init(sortedByName pairs: [Label]) { self.pairs = pairs }

    public init(_ dictionary: KeyValuePairs<String, String>) {
        self.init(dictionary.map { Label($0.key, $0.value) })
    }

    public subscript(name: String) -> String? { pairs.first { Self.compareBytes($0.name, name) == 0 }?.value }

    /// Pairwise by name then value in byte order; a prefix sorts first.
    public static func < (a: Labels, b: Labels) -> Bool {
        for (x, y) in zip(a.pairs, b.pairs) {
            let name = compareBytes(x.name, y.name)
            if name != 0 { return name < 0 }
            let value = compareBytes(x.value, y.value)
            if value != 0 { return value < 0 }
        }
        return a.pairs.count < b.pairs.count
    }

    /// Negative, zero or positive as `a`'s UTF-8 bytes sort before, equal or after `b`'s: what
    /// comparing their `utf8` views gives, with one `memcmp`.
    static func compareBytes(_ a: String, _ b: String) -> Int {
        var (a, b) = (a, b)
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let common = min(x.count, y.count)
                let order = common == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, common)
                return order != 0 ? Int(order) : x.count - y.count
            }
        }
    }

    /// `labels.Compare` over sorted (name, value) pairs.
    /// Byte order, as Prometheus compares labels (Swift's `==` on strings would call two different
    /// byte sequences equal when they are canonically equivalent).
    static func pairsPrecede(_ a: [(String, String)], _ b: [(String, String)]) -> Bool {
        for (x, y) in zip(a, b) {
            let name = compareBytes(x.0, y.0)
            if name != 0 { return name < 0 }
            let value = compareBytes(x.1, y.1)
            if value != 0 { return value < 0 }
        }
        return a.count < b.count
    }

    /// The same labels, byte for byte.
    static func pairsEqual(_ a: [(String, String)], _ b: [(String, String)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { compareBytes($0.0, $1.0) == 0 && compareBytes($0.1, $1.1) == 0 }
    }

    /// The form Prometheus prints: `{a="1", b="2"}` with Go-quoted values.
    public var description: String {
        var out = "{"
        for (i, label) in pairs.enumerated() {
            if i > 0 { out += ", " }
            out += label.name
            out += "="
            out += GoFormat.quote(label.value)
        }
        return out + "}"
    }
}

/// A label pair as raw bytes borrowed from a request buffer; valid only during the call it is passed to.
public struct RawLabel {
    public var name: UnsafeRawBufferPointer
    public var value: UnsafeRawBufferPointer
    public init(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        self.name = name
        self.value = value
    }
}
