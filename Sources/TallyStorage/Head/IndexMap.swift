/// A map from a 64-bit key (a series ref, or a label hash) to a series index, with open addressing
/// and linear probing. The head looks keys up once per appended or replayed sample; `Dictionary`
/// spent most of that time in SipHash. Entries are only added or replaced: the head rebuilds its
/// maps instead of removing from them.
struct IndexMap {
    enum Keys {
        /// Refs the head hands out in order: slots follow the key's low bits, so a WAL record's
        /// run of neighbouring refs reads neighbouring slots.
        case sequential
        /// Hashes of labels that senders choose: scrambled with a per-process seed, so a sender
        /// cannot pick label sets whose hashes pile into one run of slots.
        case hashed
    }

    private static let seed = UInt64.random(in: .min ... .max) | 1

    private struct Slot {
        var key: UInt64
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
        slots = Array(repeating: Slot(key: 0, value: -1), count: size)
        mask = size - 1
    }

    /// The slot table's heap bytes.
    var heapBytes: Int { HeadMemory.array(slots) }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        guard scramble != 0 else { return Int(truncatingIfNeeded: key) & mask }
        return Int(truncatingIfNeeded: ((key ^ scramble) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    subscript(key: UInt64) -> Int32? {
        slots.withUnsafeBufferPointer { table in
            var i = home(key)
            while true {
                let slot = table[i]
                if slot.value < 0 { return nil }
                if slot.key == key { return slot.value }
                i = (i + 1) & mask
            }
        }
    }

    /// Sets `key` to `value` (>= 0), replacing an earlier value.
    mutating func set(_ key: UInt64, _ value: Int32) {
        precondition(value >= 0, "index map values are series indexes")
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let mask = self.mask
        let start = home(key)
        let added: Bool = slots.withUnsafeMutableBufferPointer { table in
            var i = start
            while table[i].value >= 0 {
                if table[i].key == key {
                    table[i].value = value
                    return false
                }
                i = (i + 1) & mask
            }
            table[i] = Slot(key: key, value: value)
            return true
        }
        if added { count += 1 }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(key: 0, value: -1), count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for slot in old where slot.value >= 0 { set(slot.key, slot.value) }
    }
}
