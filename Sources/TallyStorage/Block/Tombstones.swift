/// A deleted time range of one series, both ends inclusive (Prometheus' `tombstones.Interval`).
public struct DeletedInterval: Sendable, Equatable {
    public var minTime: Int64
    public var maxTime: Int64

    public init(minTime: Int64, maxTime: Int64) {
        self.minTime = minTime
        self.maxTime = maxTime
    }

    func covers(_ t: Int64) -> Bool { minTime <= t && t <= maxTime }
}

/// A block's `tombstones` file (Prometheus `tsdb/tombstones`): magic `01 30 BA 30`, version 1, then
/// (`seriesRef:uvarint`, `mint:varint`, `maxt:varint`) per interval, then CRC32C of the records.
/// Deleted samples stay in the chunks and every read skips them, until a compaction rewrites the
/// block without them.
public struct Tombstones: Sendable, Equatable {
    /// Per series ref (offset/16 in the block's index): sorted, non-overlapping intervals.
    public private(set) var intervals: [UInt32: [DeletedInterval]] = [:]

    public init() {}

    public var isEmpty: Bool { intervals.isEmpty }

    /// How many intervals are stored: what Prometheus writes as `meta.json` `stats.numTombstones`.
    public var count: Int { intervals.values.reduce(0) { $0 + $1.count } }

    /// Adds an interval, merging it with those it overlaps or touches.
    public mutating func add(_ ref: UInt32, _ interval: DeletedInterval) {
        intervals[ref, default: []].insertMerging(interval)
    }

    /// Whether the sample of series `ref` at `t` is deleted: a binary search, since every read asks
    /// it of every sample of a series with tombstones.
    func deletes(_ ref: UInt32, _ t: Int64) -> Bool {
        guard let list = intervals[ref] else { return false }
        // The last interval starting at or before t is the only one that can cover it.
        let after = list.firstIndex(from: 0) { $0.minTime > t }
        return after > 0 && list[after - 1].covers(t)
    }

    /// A hash of the encoded intervals, nil when there are none.
    var digest: UInt64? {
        guard !isEmpty else { return nil }
        var hasher = LabelHasher()
        encoded().withUnsafeBytes { hasher.combine($0) }
        return hasher.value
    }

    public func encoded() -> [UInt8] {
        var records: [UInt8] = []
        for ref in intervals.keys.sorted() {
            for interval in intervals[ref]! {
                records.appendUvarint(UInt64(ref))
                records.appendVarint(interval.minTime)
                records.appendVarint(interval.maxTime)
            }
        }
        var out = BlockWriter.tombstonesMagic + [1] + records
        out.appendBigEndian(CRC32C.checksum(records))
        return out
    }

    /// Parses a tombstones file; `block` names the block in errors.
    public static func decode(_ bytes: [UInt8], block: String) throws -> Tombstones {
        func fail(_ problem: String) -> BlockError { BlockError(block: block, section: "tombstones", problem: problem) }
        guard bytes.count >= 9, Array(bytes[0..<4]) == BlockWriter.tombstonesMagic else { throw fail("bad magic or too short") }
        guard bytes[4] == 1 else { throw fail("version \(bytes[4]), want 1") }
        let records = Array(bytes[5..<bytes.count - 4])
        let stored = bytes[bytes.count - 4..<bytes.count].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard CRC32C.checksum(records) == stored else { throw fail("checksum mismatch") }
        var read: [UInt32: [DeletedInterval]] = [:]
        try records.withUnsafeBytes { raw in
            var c = ByteCursor(raw, from: 0)
            while c.position < c.end {
                guard let ref = c.uvarint(), ref <= UInt64(UInt32.max), let minTime = c.varint(), let maxTime = c.varint() else {
                    throw fail("malformed record at offset \(5 + c.position)")
                }
                guard minTime <= maxTime else { throw fail("interval [\(minTime), \(maxTime)] of series \(ref) is reversed") }
                read[UInt32(ref), default: []].append(DeletedInterval(minTime: minTime, maxTime: maxTime))
            }
        }
        // Sorted once, then merged in order: each merge touches only the list's end, so a file of
        // many intervals, in any order, loads in n log n.
        var tombstones = Tombstones()
        for (ref, list) in read {
            for interval in list.sorted(by: { $0.minTime < $1.minTime }) { tombstones.add(ref, interval) }
        }
        return tombstones
    }

    /// The tombstones of the block at `directory`; none when the file is missing (Prometheus 2.42
    /// reads a missing file as empty, and Thanos never uploads one).
    static func read(directory: String, block: String) throws -> Tombstones {
        let path = directory + "/tombstones"
        return FileSystem.exists(path) ? try decode(try FileSystem.readFile(path), block: block) : Tombstones()
    }
}

extension [DeletedInterval] {
    /// Inserts `interval` into this sorted list of disjoint, non-touching intervals, merged with the
    /// run of those it overlaps or touches (found by binary search), keeping the list so.
    mutating func insertMerging(_ interval: DeletedInterval) {
        // The first interval ending at or after the one before `interval` starts.
        let start = firstIndex(from: 0) { $0.maxTime == .max || $0.maxTime + 1 >= interval.minTime }
        var end = start
        var merged = interval
        while end < count, self[end].minTime <= (merged.maxTime == .max ? .max : merged.maxTime + 1) {
            merged = DeletedInterval(minTime: Swift.min(merged.minTime, self[end].minTime), maxTime: Swift.max(merged.maxTime, self[end].maxTime))
            end += 1
        }
        replaceSubrange(start..<end, with: CollectionOfOne(merged))
    }

    /// The first index at or after `low` where `isPast` holds, for a predicate false then true
    /// along the list (a binary search); `count` when it never holds.
    func firstIndex(from low: Int, where isPast: (DeletedInterval) -> Bool) -> Int {
        var low = low, high = count
        while low < high {
            let middle = low + (high - low) / 2
            if isPast(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
