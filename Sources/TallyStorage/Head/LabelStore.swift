/// The head's label sets as symbol ids, in two arrays rather than one array per series (each with a
/// 32-byte header and spare capacity). Label names come in sets that many series share (the series
/// of one metric mostly have the same names), so each distinct set is kept once in `names`: its
/// count, then its name ids, sorted. Each series keeps its value ids in `values`, in the order of
/// its names, back to back with the other series'. Name sets are never dropped (like symbols, see
/// "Known limits"); values are compacted when the head drops series (`compactValues`).
struct LabelStore {
    private(set) var names: [UInt32] = []
    private var nameSets = IndexMap(.hashed)
    private(set) var values: [UInt32] = []

    /// Stores a series' label ids (sorted by name); returns where its name set and its values start.
    mutating func add(names ids: UnsafeBufferPointer<UInt32>, values valueIds: UnsafeBufferPointer<UInt32>) -> (names: UInt32, values: UInt32) {
        precondition(names.count + ids.count < Int32.max && values.count + valueIds.count <= UInt32.max, "head label store full")
        let set = nameSet(ids)
        let start = values.count
        Head.reserve(&values, valueIds.count)
        values.append(contentsOf: valueIds)
        return (set, UInt32(start))
    }

    /// The start of the name set `ids` in `names`, added if new.
    private mutating func nameSet(_ ids: UnsafeBufferPointer<UInt32>) -> UInt32 {
        var hasher = LabelHasher()
        hasher.combine(UnsafeRawBufferPointer(ids))
        let found = nameSets.first(hasher.value) { start in
            Int(names[Int(start)]) == ids.count && names[Int(start) + 1..<Int(start) + 1 + ids.count].elementsEqual(ids)
        }
        if let found { return UInt32(found) }
        let start = names.count
        Head.reserve(&names, 1 + ids.count)
        names.append(UInt32(ids.count))
        names.append(contentsOf: ids)
        nameSets.add(hasher.value, Int32(start))
        return UInt32(start)
    }

    /// How many labels the name set at `set` has.
    @inline(__always)
    func count(_ set: UInt32) -> Int { Int(names[Int(set)]) }

    /// The range of `names` holding the name ids of the set at `set`.
    @inline(__always)
    func nameRange(_ set: UInt32) -> Range<Int> { Int(set) + 1..<Int(set) + 1 + count(set) }

    /// Keeps only the value runs `runs` gives (start, count), in that order, with no spare room;
    /// returns their new starts.
    mutating func compactValues(_ runs: [(start: UInt32, count: Int)]) -> [UInt32] {
        let old = values
        values = []
        values.reserveCapacity(runs.reduce(0) { $0 + $1.count })
        return runs.map { run in
            defer { values.append(contentsOf: old[Int(run.start)..<Int(run.start) + run.count]) }
            return UInt32(values.count)
        }
    }

    var nameSetCount: Int { nameSets.count }

    var heapBytes: Int { HeadMemory.array(names) + nameSets.heapBytes + HeadMemory.array(values) }
}
