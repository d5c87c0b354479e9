/// A map from a 64-bit key (a series ref, or a hash) to a series index, with open addressing and
/// linear probing. The head looks keys up once per appended or replayed sample; `Dictionary` spent
/// most of that time in SipHash. Entries are only added or replaced: the head rebuilds its maps
/// instead of removing from them.
///
/// A slot is 8 bytes: the value and 32 bits of the key (its tag), not the key itself. Keys with the
/// same tag are told apart by the caller, who can see what a value stands for: a ref by the series'
/// own ref (`first(_:where:)`), a label hash by comparing the labels along the series' hash chain.
struct IndexMap {
    enum Keys {
        /// Refs the head hands out in order: the tag is the key's low bits and slots follow it, so a
        /// WAL record's run of neighbouring refs reads neighbouring slots.
        case sequential
        /// Hashes of labels that senders choose: scrambled with a per-process seed, so a sender
        /// cannot pick label sets whose hashes pile into one run of slots.
        case hashed
    }

    private static let seed = UInt64.random(in: .min ... .max) | 1

    private struct Slot {
        var tag: UInt32
        /// -1 marks an empty slot.
        var value: Int32
    }

    private var slots: [Slot]
    private var mask: Int
    private let scramble: UInt64
    private(set) var count = 0

    init(_ keys: Keys, capacity: Int = 0) {
        scramble = keys == .hashed ? Self.seed : 0
        var size = 16
        while size * 3 < capacity * 4 { size <<= 1 }
        slots = Array(repeating: Slot(tag: 0, value: -1), count: size)
        mask = size - 1
    }

    /// The slot table's heap bytes.
    var heapBytes: Int { HeadMemory.array(slots) }

    @inline(__always)
    private func tag(_ key: UInt64) -> UInt32 {
        guard scramble != 0 else { return UInt32(truncatingIfNeeded: key) }
        return UInt32(truncatingIfNeeded: ((key ^ scramble) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    /// The value of the first slot whose tag is `key`'s.
    subscript(key: UInt64) -> Int32? { first(key) { _ in true } }

    /// The value of the first slot whose tag is `key`'s and which `matches` accepts.
    @inline(__always)
    func first(_ key: UInt64, where matches: (Int32) -> Bool) -> Int32? {
        let tag = tag(key)
        return slots.withUnsafeBufferPointer { table in
            var i = Int(tag) & mask
            while true {
                let slot = table[i]
                if slot.value < 0 { return nil }
                if slot.tag == tag && matches(slot.value) { return slot.value }
                i = (i + 1) & mask
            }
        }
    }

    /// Sets `key` to `value` (>= 0), replacing the value of a key with the same tag.
    mutating func set(_ key: UInt64, _ value: Int32) { put(tag(key), value, replacing: true) }

    /// Adds `value` (>= 0) under `key`, which the caller knows is not in the map (though its tag may be).
    mutating func add(_ key: UInt64, _ value: Int32) { put(tag(key), value, replacing: false) }

    private mutating func put(_ tag: UInt32, _ value: Int32, replacing: Bool) {
        precondition(value >= 0, "index map values are series indexes")
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let mask = self.mask
        let added: Bool = slots.withUnsafeMutableBufferPointer { table in
            var i = Int(tag) & mask
            while table[i].value >= 0 {
                if replacing && table[i].tag == tag {
                    table[i].value = value
                    return false
                }
                i = (i + 1) & mask
            }
            table[i] = Slot(tag: tag, value: value)
            return true
        }
        if added { count += 1 }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(tag: 0, value: -1), count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for slot in old where slot.value >= 0 { put(slot.tag, slot.value, replacing: false) }
    }
}
