#if canImport(Glibc)
import Glibc
#endif

/// An encoded chunk that no longer takes appends.
struct ClosedChunk {
    var minTime: Int64
    var maxTime: Int64
    var bytes: [UInt8]
}

/// One series in memory. A struct in one contiguous array: no per-series or per-sample objects
/// beyond its label and chunk buffers.
struct MemSeries {
    let ref: UInt64
    /// Symbol ids, name then value, sorted by name.
    let labels: [UInt32]
    /// Next series with the same label hash (index into `Head.series`), or -1.
    var hashNext: Int32 = -1
    var closed: [ClosedChunk] = []
    var open = XORChunk()
    var openMinTime: Int64 = 0
    var nextCutAt: Int64 = .max
    var lastTimestamp: Int64 = .min
    var lastValueBits: UInt64 = 0
    /// Whether the WAL holds this series' Series record.
    var logged = false
    /// Latest sample accepted by the batch `pendingEpoch`, not yet applied.
    var pendingEpoch: UInt32 = 0
    var pendingTimestamp: Int64 = .min
    var pendingValueBits: UInt64 = 0
    /// Late samples, sorted, not yet sealed into `outOfOrderChunks` (see OutOfOrder.swift).
    var outOfOrderBuffer: [Sample] = []
    var outOfOrderChunks: [ClosedChunk] = []

    var isEmpty: Bool { lastTimestamp == .min }

    /// Cuts chunks like Prometheus 2.42 (`memSeries.appendPreprocessor`): at the block range end,
    /// at an end predicted after 30 samples so chunks come out even, or at 240 samples.
    mutating func append(timestamp t: Int64, valueBits v: UInt64, chunkRange: Int64) {
        precondition(t > lastTimestamp, "head appends must be in order")
        if isEmpty {
            cut(at: t, chunkRange: chunkRange)
        } else {
            let n = open.count
            if n == Head.samplesPerChunk / 4 {
                nextCutAt = Self.chunkEnd(start: openMinTime, current: lastTimestamp, max: nextCutAt)
            }
            if t >= nextCutAt || n >= Head.samplesPerChunk * 2 {
                cut(at: t, chunkRange: chunkRange)
            }
        }
        open.append(timestamp: t, valueBits: v)
        lastTimestamp = t
        lastValueBits = v
    }

    private mutating func cut(at t: Int64, chunkRange: Int64) {
        if open.count > 0 {
            closed.append(ClosedChunk(minTime: openMinTime, maxTime: lastTimestamp, bytes: open.bytes))
            open = XORChunk()
        }
        openMinTime = t
        nextCutAt = (t / chunkRange) * chunkRange + chunkRange
    }

    /// Prometheus' `computeChunkEndTime`: spreads the rest of the range evenly over future chunks.
    static func chunkEnd(start: Int64, current: Int64, max: Int64) -> Int64 {
        let n = (max - start) / ((current - start + 1) * 4)
        if n <= 1 { return max }
        return start + (max - start) / n
    }
}

/// The in-memory part of a tenant: series index, postings and chunks. Guarded by its tenant's lock.
final class Head {
    static let samplesPerChunk = 120
    /// Chunks never cross a block range boundary (2h), like Prometheus' head.
    let chunkRange: Int64

    private(set) var symbols = SymbolTable()
    /// The series themselves. Only the `Head/` files reach into them (Swift has no access level per
    /// folder): the tenant's code outside goes through Head's methods.
    var series: [MemSeries] = []
    private(set) var byHash = IndexMap(.hashed)
    private(set) var byRef = IndexMap(.sequential)
    /// Series indexes per (name, value) symbol pair, ascending.
    private(set) var postings: [UInt64: [Int32]] = [:]
    private(set) var nextRef: UInt64 = 1
    /// Memory held by out-of-order samples, all series together.
    var outOfOrderBytes = 0
    var minTime: Int64 = .max
    private(set) var maxTime: Int64 = .min

    init(chunkRange: Int64 = 2 * 3600 * 1000) { self.chunkRange = chunkRange }

    var seriesCount: Int { series.count }

    // MARK: series

    static func hash(_ labels: UnsafeBufferPointer<RawLabel>) -> UInt64 {
        var hasher = LabelHasher()
        for label in labels {
            hasher.combine(label.name)
            hasher.combine(label.value)
        }
        return hasher.value
    }

    private static func hash(_ labels: [(String, String)]) -> UInt64 {
        var hasher = LabelHasher()
        for (name, value) in labels {
            hasher.combine(name)
            hasher.combine(value)
        }
        return hasher.value
    }

    /// Finds the series with exactly these (sorted) labels, comparing bytes, without allocating.
    func find(_ labels: UnsafeBufferPointer<RawLabel>, hash: UInt64) -> Int32? {
        var candidate = byHash[hash] ?? -1
        while candidate >= 0 {
            // Field by field: copying the whole MemSeries would retain and release each of its arrays.
            let i = Int(candidate)
            if series[i].labels.count == labels.count * 2 && matches(series[i].labels, labels) { return candidate }
            candidate = series[i].hashNext
        }
        return nil
    }

    private func matches(_ ids: [UInt32], _ labels: UnsafeBufferPointer<RawLabel>) -> Bool {
        for (i, label) in labels.enumerated() {
            if !symbols.equals(ids[2 * i], label.name) || !symbols.equals(ids[2 * i + 1], label.value) { return false }
        }
        return true
    }

    func create(_ labels: UnsafeBufferPointer<RawLabel>, hash: UInt64) -> Int32 {
        let pairs = labels.map { (String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }
        return insert(ref: nextRef, pairs, hash: hash)
    }

    /// Re-creates a series from a WAL Series record; a ref seen before keeps its first labels.
    func restore(ref: UInt64, labels: [(String, String)]) {
        guard byRef[ref] == nil else { return }
        let index = insert(ref: ref, labels, hash: Self.hash(labels))
        series[Int(index)].logged = true
    }

    private func insert(ref: UInt64, _ pairs: [(String, String)], hash: UInt64) -> Int32 {
        let index = Int32(series.count)
        var ids: [UInt32] = []
        ids.reserveCapacity(pairs.count * 2)
        for (name, value) in pairs {
            let n = symbols.intern(name)
            let v = symbols.intern(value)
            ids.append(n)
            ids.append(v)
            postings[UInt64(n) << 32 | UInt64(v), default: []].append(index)
        }
        var s = MemSeries(ref: ref, labels: ids)
        s.hashNext = byHash[hash] ?? -1
        byHash.set(hash, index)
        byRef.set(ref, index)
        series.append(s)
        nextRef = max(nextRef, ref + 1)
        return index
    }

    func index(ofRef ref: UInt64) -> Int32? { byRef[ref] }

    /// Head series with the same `__name__` as `labels` (0 without one): the per-metric series limit,
    /// checked only when a series is about to be created.
    func seriesCount(sameMetricAs labels: UnsafeBufferPointer<RawLabel>) -> Int {
        let metricName = "__name__"
        guard let label = labels.first(where: { $0.name.elementsEqual(metricName.utf8) }),
              let n = symbols.id(of: metricName), let v = symbols.id(of: String(decoding: label.value, as: UTF8.self)) else { return 0 }
        return postings[UInt64(n) << 32 | UInt64(v)]?.count ?? 0
    }

    // MARK: known encoded label sets

    /// Series by the exact bytes their labels arrived as in a request (see `AppendBatch`): a known
    /// series is found with one hash over the bytes and one memcmp, without decoding, checking or
    /// comparing its labels one by one. Emptied whenever series indexes change (`rebuild`).
    private(set) var encodedLabelIndex = IndexMap(.hashed)
    private(set) var encodedLabelEntries: [(bytes: [UInt8], series: Int32, next: Int32)] = []

    static func hash(encodedLabels bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = LabelHasher()
        hasher.combine(bytes)
        return hasher.value
    }

    func series(encodedLabels bytes: UnsafeRawBufferPointer, hash: UInt64) -> Int32? {
        var entry = encodedLabelIndex[hash] ?? -1
        while entry >= 0 {
            let e = Int(entry)
            let matches = encodedLabelEntries[e].bytes.withUnsafeBytes { $0.count == bytes.count && memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }
            if matches { return encodedLabelEntries[e].series }
            entry = encodedLabelEntries[e].next
        }
        return nil
    }

    func remember(encodedLabels bytes: UnsafeRawBufferPointer, hash: UInt64, series index: Int32) {
        guard !bytes.isEmpty else { return }
        // A sender that orders labels differently each time would add an entry per sample: past two
        // entries a series (on average), start over, so memory stays bounded whatever senders do.
        if encodedLabelEntries.count >= max(1024, 2 * series.count) {
            encodedLabelIndex = IndexMap(.hashed)
            encodedLabelEntries = []
        }
        encodedLabelEntries.append((Array(bytes), index, encodedLabelIndex[hash] ?? -1))
        encodedLabelIndex.set(hash, Int32(encodedLabelEntries.count - 1))
    }

    /// Rebuilds the lookup structures over the series `keep` accepts, so dropped series cost nothing.
    func rebuild(keeping keep: (MemSeries) -> Bool) {
        let kept = series.filter(keep)
        guard kept.count != series.count else { return }
        encodedLabelIndex = IndexMap(.hashed)
        encodedLabelEntries = []
        series = []
        series.reserveCapacity(kept.count)
        byHash = IndexMap(.hashed, capacity: kept.count)
        byRef = IndexMap(.sequential, capacity: kept.count)
        postings = [:]
        for var s in kept {
            let index = Int32(series.count)
            var hasher = LabelHasher()
            for i in stride(from: 0, to: s.labels.count, by: 2) {
                hasher.combine(symbols[s.labels[i]])
                hasher.combine(symbols[s.labels[i + 1]])
                postings[UInt64(s.labels[i]) << 32 | UInt64(s.labels[i + 1]), default: []].append(index)
            }
            s.hashNext = byHash[hasher.value] ?? -1
            byHash.set(hasher.value, index)
            byRef.set(s.ref, index)
            series.append(s)
        }
    }

    func labelPairs(_ index: Int32) -> [(String, String)] {
        let ids = series[Int(index)].labels
        return stride(from: 0, to: ids.count, by: 2).map { (symbols[ids[$0]], symbols[ids[$0 + 1]]) }
    }

    func labels(_ index: Int32) -> Labels {
        Labels(labelPairs(index).map { Label($0.0, $0.1) })
    }

    /// The series' WAL ref (Series records name it, Samples and Tombstones records refer to it).
    func ref(_ index: Int32) -> UInt64 { series[Int(index)].ref }

    /// Whether the WAL holds the series' Series record.
    func isLogged(_ index: Int32) -> Bool { series[Int(index)].logged }

    func markLogged(_ index: Int32) { series[Int(index)].logged = true }

    // MARK: samples

    /// Appends a sample newer than the series' last one.
    func append(_ index: Int32, timestamp t: Int64, valueBits v: UInt64) {
        series[Int(index)].append(timestamp: t, valueBits: v, chunkRange: chunkRange)
        if t < minTime { minTime = t }
        if t > maxTime { maxTime = t }
    }

    /// The value bits stored at exactly `t`, if any: used to tell a resent sample from a conflicting one.
    /// Closed chunks are in time order, so one is found by binary search; only the chunk that can
    /// hold `t` is decoded.
    func valueBits(_ index: Int32, at t: Int64) -> UInt64? {
        let i = Int(index)
        if let s = series[i].outOfOrderBuffer.first(where: { $0.timestamp == t }) { return s.valueBits }
        let closed = series[i].closed
        var low = 0, high = closed.count
        while low < high {
            let middle = low + (high - low) / 2
            if closed[middle].maxTime < t { low = middle + 1 } else { high = middle }
        }
        if low < closed.count, closed[low].minTime <= t, let v = Self.valueBits(in: closed[low].bytes, at: t) { return v }
        if series[i].open.count > 0, series[i].openMinTime <= t, t <= series[i].lastTimestamp,
           let v = Self.valueBits(in: series[i].open.bytes, at: t) { return v }
        // Late chunks may overlap and come in arrival order: a scan, through a pointer so that
        // skipping a chunk costs two comparisons and no reference counting.
        return series[i].outOfOrderChunks.withUnsafeBufferPointer { chunks in
            for c in chunks.indices where chunks[c].minTime <= t && t <= chunks[c].maxTime {
                if let v = Self.valueBits(in: chunks[c].bytes, at: t) { return v }
            }
            return nil
        }
    }

    private static func valueBits(in chunk: [UInt8], at t: Int64) -> UInt64? {
        chunk.withUnsafeBufferPointer { bytes in
            var it = XORIterator(bytes)
            while let (ts, v) = it.next() {
                if ts == t { return v }
                if ts > t { return nil }
            }
            return nil
        }
    }

    /// Visits each chunk (closed, open, then out-of-order ones if asked) with its bytes pinned for
    /// the duration of the call. In-order chunks come in time order; out-of-order ones may overlap.
    func forEachChunk(_ index: Int32, includingOutOfOrder: Bool = false, _ body: (Int64, Int64, UnsafeBufferPointer<UInt8>) -> Void) {
        let s = series[Int(index)]
        for c in s.closed { c.bytes.withUnsafeBufferPointer { body(c.minTime, c.maxTime, $0) } }
        if s.open.count > 0 {
            s.open.bytes.withUnsafeBufferPointer { body(s.openMinTime, s.lastTimestamp, $0) }
        }
        if includingOutOfOrder {
            for c in s.outOfOrderChunks { c.bytes.withUnsafeBufferPointer { body(c.minTime, c.maxTime, $0) } }
        }
    }

    // MARK: selection

    /// Series indexes matching all `matchers`, using postings for the first matcher with exact values.
    func select(_ matchers: [LabelMatcher]) -> [Int32] {
        var candidates: [Int32]
        if let indexed = matchers.first(where: { $0.exactValues != nil }), let values = indexed.exactValues {
            guard let n = symbols.id(of: indexed.name) else { return [] }
            candidates = values.flatMap { value in symbols.id(of: value).map { postings[UInt64(n) << 32 | UInt64($0)] ?? [] } ?? [] }
            if values.count > 1 { candidates.sort() }
        } else {
            candidates = Array(0..<Int32(series.count))
        }
        let predicates = matchers.map { ($0.name, $0.predicate()) }
        return candidates.filter { index in
            let ids = series[Int(index)].labels
            return predicates.allSatisfy { name, matches in
                var value = ""
                for i in stride(from: 0, to: ids.count, by: 2) where symbols[ids[i]] == name {
                    value = symbols[ids[i + 1]]
                }
                return matches(value)
            }
        }
    }
}
