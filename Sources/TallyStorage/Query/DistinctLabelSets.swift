#if canImport(Glibc)
import Glibc
#endif

/// The distinct label sets a series question finds in the head and in blocks, each string held once.
///
/// After compaction most series are in every block of a long range, so the same set arrives once
/// per block. A block's series come as ids into that block's symbol table; each id becomes an id of
/// this collection the first time the block uses it (`BlockTranslation`). Strings are compared byte
/// for byte once per block and symbol, and a set met again is recognised by comparing integers.
/// The sets come out sorted through ranks of the strings, which follow the strings' byte order.
struct DistinctLabelSets {
    private var strings: [String] = []
    private var stringIds = IndexMap(.hashed)
    /// Each set's string ids (name, value, name, value, ...), one set after another.
    private var setIds: [Int32] = []
    private var setStarts: [Int] = [0]
    private var setIndex = IndexMap(.hashed)
    private var scratch: [Int32] = []
    /// Strings `0..<n` and sets `0..<m` in order, as `keepOrder()` last found them: a copy kept
    /// for reuse (a series question's answer from blocks it covers) then orders only what is
    /// added to it. Strings and sets keep their numbers, and adding never changes the order of
    /// those already here.
    private var stringOrder: [Int32] = []
    private var setOrder: [Int] = []

    var count: Int { setStarts.count - 1 }

    /// About the bytes this holds: the strings, the sets' ids and starts, and the two maps' slots.
    var estimatedBytes: Int {
        strings.reduce(0) { $0 + $1.utf8.count + 16 } + setIds.count * 4 + setStarts.count * 8 + (strings.count + count) * 16
            + stringOrder.count * 4 + setOrder.count * 8
    }

    /// One block's symbol ids turned into this collection's string ids, filled as the block's
    /// series are added: in an array indexed by symbol id for blocks of up to 64 Ki symbols (at
    /// most 256 KiB, cleared once), else in a map from the id (its own tag, so lookups never collide).
    struct BlockTranslation {
        fileprivate var dense: [Int32]
        fileprivate var sparse = IndexMap(.sequential)
        fileprivate let symbols: [String]
        fileprivate let hashes: [UInt64]

        init(symbols: [String], hashes: [UInt64]) {
            self.symbols = symbols
            self.hashes = hashes
            dense = symbols.count <= 1 << 16 ? Array(repeating: -1, count: symbols.count) : []
        }

        fileprivate subscript(id: UInt32) -> Int32? {
            if !dense.isEmpty {
                let known = dense[Int(id)]
                return known < 0 ? nil : known
            }
            return sparse[UInt64(id)]
        }

        fileprivate mutating func add(_ id: UInt32, _ interned: Int32) {
            if dense.isEmpty { sparse.add(UInt64(id), interned) } else { dense[Int(id)] = interned }
        }
    }

    /// Adds a series of a block, as its label symbol ids (name, value, ...), unless it is here;
    /// gives the set's number (sets are numbered from 0 as they first arrive).
    @discardableResult
    mutating func add(blockSymbolIds ids: [UInt32], _ block: inout BlockTranslation) -> Int {
        // Written through a buffer: appending to a stored array checks its uniqueness each time.
        var translated = scratch
        scratch = []
        translated.removeAll(keepingCapacity: true)
        translated.append(contentsOf: repeatElement(0, count: ids.count))
        translated.withUnsafeMutableBufferPointer { out in
            for (i, id) in ids.enumerated() {
                if let known = block[id] {
                    out[i] = known
                } else {
                    let interned = intern(block.symbols[Int(id)], hash: block.hashes[Int(id)])
                    block.add(id, interned)
                    out[i] = interned
                }
            }
        }
        scratch = translated
        return addScratch()
    }

    /// Adds a head series unless it is here; gives the set's number.
    @discardableResult
    mutating func add(_ labels: Labels) -> Int {
        scratch.removeAll(keepingCapacity: true)
        for label in labels.pairs {
            scratch.append(intern(label.name, hash: LabelHasher.hash(of: label.name)))
            scratch.append(intern(label.value, hash: LabelHasher.hash(of: label.value)))
        }
        return addScratch()
    }

    private mutating func addScratch() -> Int {
        var hasher = LabelHasher()
        var i = 0
        while i + 1 < scratch.count {
            hasher.combine(hash: UInt64(UInt32(bitPattern: scratch[i])) << 32 | UInt64(UInt32(bitPattern: scratch[i + 1])))
            i += 2
        }
        if i < scratch.count { hasher.combine(hash: UInt64(UInt32(bitPattern: scratch[i]))) }
        let hash = hasher.value
        let known = scratch.withUnsafeBufferPointer { wanted in
            setIds.withUnsafeBufferPointer { all in
                setIndex.first(hash) { set in
                    let start = setStarts[Int(set)], end = setStarts[Int(set) + 1]
                    return end - start == wanted.count && (wanted.isEmpty || memcmp(all.baseAddress! + start, wanted.baseAddress!, wanted.count * 4) == 0)
                }
            }
        }
        if let known { return Int(known) }
        let set = count
        setIndex.add(hash, Int32(set))
        setIds += scratch
        setStarts.append(setIds.count)
        return set
    }

    private mutating func intern(_ string: String, hash: UInt64) -> Int32 {
        if let id = stringIds.first(hash, where: { Self.same(strings[Int($0)], string) }) { return id }
        let id = Int32(strings.count)
        strings.append(string)
        stringIds.add(hash, id)
        return id
    }

    /// The same bytes (Swift's `==` on strings compares canonical equivalence, not bytes).
    private static func same(_ a: String, _ b: String) -> Bool { a.utf8.count == b.utf8.count && Labels.compareBytes(a, b) == 0 }

    /// The sets in label order (`Labels`' `<`): the strings are sorted once, and sets are compared
    /// by their strings' ranks, name, value, name, ..., a set that is a prefix of another first.
    func sorted() -> [Labels] { sortedWithNumbers().map(\.labels) }

    /// `sorted()`, each set with its number.
    func sortedWithNumbers() -> [(number: Int, labels: Labels)] {
        let (rank, order) = ranksAndOrder()
        return order.map { set in
            let ids = setIds[setStarts[set]..<setStarts[set + 1]]
            let pairs = stride(from: ids.startIndex, to: ids.endIndex, by: 2).map { Label(strings[Int(ids[$0])], strings[Int(ids[$0 + 1])]) }
            // Names come sorted from an index or from `Labels`; a damaged index's are sorted here.
            let byName = stride(from: ids.startIndex + 2, to: ids.endIndex, by: 2).allSatisfy { rank[Int(ids[$0 - 2])] < rank[Int(ids[$0])] }
            return (set, byName ? Labels(sortedByName: pairs) : Labels(pairs))
        }
    }

    /// Keeps the order of the strings and sets here, for copies to start from.
    mutating func keepOrder() {
        let (rank, order) = ranksAndOrder()
        stringOrder = Array(repeating: 0, count: rank.count)
        for (id, position) in rank.enumerated() { stringOrder[Int(position)] = Int32(id) }
        setOrder = order
    }

    /// Each string's rank in byte order, and the sets in label order: what `keepOrder()` kept,
    /// with the strings and sets added since merged in.
    private func ranksAndOrder() -> (rank: [Int32], order: [Int]) {
        let before = { (a: Int32, b: Int32) in Labels.compareBytes(strings[Int(a)], strings[Int(b)]) < 0 }
        let added = (Int32(stringOrder.count)..<Int32(strings.count)).sorted(by: before)
        var rank = [Int32](repeating: 0, count: strings.count)
        for (position, id) in Self.merge(stringOrder, added, by: before).enumerated() { rank[Int(id)] = Int32(position) }
        let precedes = { (a: Int, b: Int) in
            let x = setIds[setStarts[a]..<setStarts[a + 1]], y = setIds[setStarts[b]..<setStarts[b + 1]]
            return x.lexicographicallyPrecedes(y) { rank[Int($0)] < rank[Int($1)] }
        }
        return (rank, Self.merge(setOrder, (setOrder.count..<count).sorted(by: precedes), by: precedes))
    }

    /// Two sorted lists as one, `a`'s first where they tie.
    private static func merge<T>(_ a: [T], _ b: [T], by precedes: (T, T) -> Bool) -> [T] {
        guard !b.isEmpty else { return a }
        var out: [T] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if precedes(b[j], a[i]) { out.append(b[j]); j += 1 } else { out.append(a[i]); i += 1 }
        }
        out += a[i...]
        out += b[j...]
        return out
    }
}
