#if canImport(Glibc)
import Glibc
#endif

/// An encoded chunk that no longer takes appends.
struct ClosedChunk {
    var minTime: Int64
    var maxTime: Int64
    var bytes: [UInt8]
}

/// One series in memory. A struct in one contiguous array, 80 bytes: no per-series or per-sample
/// objects beyond its chunk buffers. Its label ids are in `Head.labelStore`, its late samples (which
/// most series never have) in `Head.late`, and a sample a batch accepted but has not applied yet in
/// the batch (`pendingSlot`).
struct MemSeries {
    let ref: UInt64
    var lastTimestamp: Int64 = .min
    var lastValueBits: UInt64 = 0
    var nextCutAt: Int64 = .max
    var closed: [ClosedChunk] = []
    /// The open chunk: its bytes and encoder state; its previous sample is the series' last one.
    var open = XOREncoder()
    /// Whether the WAL holds this series' Series record.
    var logged = false
    /// Where the series' label name set and its value ids start in `Head.labelStore`.
    let names: UInt32
    var values: UInt32
    /// Next series with the same label hash tag (index into `Head.series`), or -1.
    var hashNext: Int32 = -1
    /// Where the last batch that accepted an in-order sample for this series put the newest one
    /// in its pending samples (see `AppendBatch.newest`).
    var pendingSlot: UInt32 = 0

    init(ref: UInt64, names: UInt32, values: UInt32) {
        self.ref = ref
        self.names = names
        self.values = values
    }

    var isEmpty: Bool { lastTimestamp == .min }

    /// The first timestamp of the open chunk (which must hold a sample), read from its bytes.
    var openMinTime: Int64 {
        open.stream.bytes.withUnsafeBufferPointer { bytes in
            var raw: UInt64 = 0, shift: UInt64 = 0, i = 2
            while i < bytes.count {
                raw |= UInt64(bytes[i] & 0x7f) << shift
                if bytes[i] < 0x80 { break }
                shift += 7
                i += 1
            }
            return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
        }
    }

    /// Cuts chunks like Prometheus 2.42 (`memSeries.appendPreprocessor`): at the block range end,
    /// at an end predicted after 30 samples so chunks come out even, or at 240 samples. Returns
    /// whether a chunk was closed (the last of `closed`).
    @discardableResult
    mutating func append(timestamp t: Int64, valueBits v: UInt64, chunkRange: Int64) -> Bool {
        precondition(t > lastTimestamp, "head appends must be in order")
        var closedOne = false
        if isEmpty {
            closedOne = cut(at: t, chunkRange: chunkRange)
        } else {
            let n = open.count
            if n == Head.samplesPerChunk / 4 {
                nextCutAt = Self.chunkEnd(start: openMinTime, current: lastTimestamp, max: nextCutAt)
            }
            if t >= nextCutAt || n >= Head.samplesPerChunk * 2 {
                closedOne = cut(at: t, chunkRange: chunkRange)
            } else if open.stream.bytes.capacity - open.stream.bytes.count < XOREncoder.maxSampleBytes {
                growOpenChunk(samples: n)
            }
        }
        open.append(timestamp: t, valueBits: v, previousTimestamp: lastTimestamp, previousValueBits: lastValueBits)
        lastTimestamp = t
        lastValueBits = v
        return closedOne
    }

    private mutating func cut(at t: Int64, chunkRange: Int64) -> Bool {
        let closing = open.count > 0
        if closing {
            // The closed chunk gets an exact copy, and the open chunk keeps its buffer: a chunk in
            // a fresh range likely needs about what the last one did. One allocation, as a new
            // buffer would be.
            closed.append(ClosedChunk(minTime: openMinTime, maxTime: lastTimestamp, bytes: Self.trimmed(open.stream.bytes, spare: 0)))
            open.clear()
        } else {
            open = XOREncoder(capacity: 128)
        }
        nextCutAt = (t / chunkRange) * chunkRange + chunkRange
        return closing
    }

    /// Room for the samples the open chunk is expected to take before its cut (at its predicted end,
    /// at the rate so far, with their bytes so far), so a chunk grows about once and ends with
    /// little spare room, rather than doubling to up to twice its size.
    private mutating func growOpenChunk(samples n: Int) {
        let count = open.stream.bytes.count
        var expected = Double(Head.samplesPerChunk * 2)
        let span = lastTimestamp - openMinTime
        if n >= 2 && span > 0 && nextCutAt != .max {
            expected = min(expected, Double(n) + (Double(nextCutAt) - Double(lastTimestamp)) * Double(n - 1) / Double(span))
        }
        // Bytes a sample after the first, which takes about 20 with the chunk's 2-byte header.
        let perSample = n >= 2 ? Double(max(count - XOREncoder.maxSampleBytes, n - 1)) / Double(n - 1) : 8
        let more = Int(max(0, expected - Double(n)) * perSample * 33 / 32)
        open.stream.bytes.reserveCapacity(count + max(64, more + XOREncoder.maxSampleBytes))
    }

    /// A closed chunk's bytes with no more than `spare` bytes of spare capacity (a copy costs an
    /// allocation).
    static func trimmed(_ bytes: [UInt8], spare: Int = 64) -> [UInt8] {
        guard bytes.capacity - bytes.count > spare else { return bytes }
        return [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, count in
            count = buffer.initialize(fromContentsOf: bytes)
        }
    }

    /// Prometheus' `computeChunkEndTime`: spreads the rest of the range evenly over future chunks.
    static func chunkEnd(start: Int64, current: Int64, max: Int64) -> Int64 {
        let n = (max - start) / ((current - start + 1) * 4)
        if n <= 1 { return max }
        return start + (max - start) / n
    }

    /// Closes the open chunk so later samples start a new one.
    mutating func seal() {
        closed.append(ClosedChunk(minTime: openMinTime, maxTime: lastTimestamp, bytes: Self.trimmed(open.stream.bytes)))
        open = XOREncoder()
        nextCutAt = .min
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
    var series = SeriesPages()
    /// Every series' label symbol ids.
    private(set) var labelStore = LabelStore()
    /// Late samples by series index, for the few series that have any (see OutOfOrder.swift).
    var late: [Int32: LateSamples] = [:]
    /// Native histograms by series index, for the series that have any (see HeadHistograms.swift).
    var histograms: [Int32: HistogramSeries] = [:]
    private(set) var byHash = IndexMap(.hashed)
    private(set) var byRef = IndexMap(.sequential)
    /// Series by the hash of their label symbol ids (`hash(labelIds:)`): found from a request that
    /// names its labels by symbols (Remote-Write 2.0) once each symbol is resolved, with no byte
    /// of a label read per series.
    private(set) var byLabelIds = IndexMap(.hashed)
    /// Series indexes per (name, value) symbol pair, ascending.
    private(set) var postings: [UInt64: [Int32]] = [:]
    private(set) var nextRef: UInt64 = 1
    /// Where closed float chunks are written for the next start (HeadChunkMapping.swift); nil for
    /// a read-only head.
    var chunkWriter: HeadChunkWriter?
    /// Whether the WAL holds a Tombstones record for the head, logged or replayed since the last
    /// checkpoint; the checkpoint that drops it also removes the chunk files (see `TenantBlockCut`).
    var walHasTombstones = false
    /// Memory held by out-of-order samples, all series together.
    var outOfOrderBytes = 0
    /// See `warmOpenChunks`.
    private var warmedBytes: UInt8 = 0
    var minTime: Int64 = .max
    private(set) var maxTime: Int64 = .min

    init(chunkRange: Int64 = 2 * 3600 * 1000) { self.chunkRange = chunkRange }

    var seriesCount: Int { series.count }

    /// Room for `more` elements, growing by a quarter rather than doubling once past 64 elements:
    /// these arrays hold something of every series, and doubling would leave up to half of them spare.
    static func reserve<T>(_ array: inout [T], _ more: Int) {
        guard array.capacity - array.count < more else { return }
        let count = array.count
        array.reserveCapacity(max(count + more, count < 64 ? 2 * count : count + count / 4))
    }

    // MARK: series

    static func hash(_ labels: UnsafeBufferPointer<RawLabel>) -> UInt64 {
        var hasher = LabelHasher()
        for label in labels {
            hasher.combine(label.name)
            hasher.combine(label.value)
        }
        return hasher.value
    }

    /// Series `index`'s label count, and where its name ids start in `labelStore.names` and its value
    /// ids in `labelStore.values`.
    @inline(__always)
    func labelIds(_ index: Int) -> (count: Int, names: Int, values: Int) {
        let names = series[index].names
        return (labelStore.count(names), Int(names) + 1, Int(series[index].values))
    }

    /// Finds the series with exactly these (sorted) labels, comparing bytes, without allocating.
    func find(_ labels: UnsafeBufferPointer<RawLabel>, hash: UInt64) -> Int32? {
        var candidate = byHash[hash] ?? -1
        while candidate >= 0 {
            // Field by field: copying the whole MemSeries would retain and release each of its arrays.
            let i = Int(candidate)
            if labelStore.count(series[i].names) == labels.count && matches(i, labels) { return candidate }
            candidate = series[i].hashNext
        }
        return nil
    }

    private func matches(_ index: Int, _ labels: UnsafeBufferPointer<RawLabel>) -> Bool {
        let ids = labelIds(index)
        for (i, label) in labels.enumerated()
        where !symbols.equals(labelStore.names[ids.names + i], label.name) || !symbols.equals(labelStore.values[ids.values + i], label.value) {
            return false
        }
        return true
    }

    func create(_ labels: UnsafeBufferPointer<RawLabel>, hash: UInt64) -> Int32 {
        insert(ref: nextRef, count: labels.count, hash: hash) { symbols, k in (symbols.intern(labels[k].name), symbols.intern(labels[k].value)) }
    }

    /// Re-creates a series from a WAL Series record's labels; a ref seen before keeps its first
    /// labels. A symbol the head holds is found by its bytes, with no string made.
    func restore(ref: UInt64, labels: UnsafeBufferPointer<RawLabel>) {
        guard index(ofRef: ref) == nil else { return }
        let index = insert(ref: ref, count: labels.count, hash: nil) { symbols, k in (symbols.intern(labels[k].name), symbols.intern(labels[k].value)) }
        series[Int(index)].logged = true
    }

    /// New series take refs above `ref`: head chunk files may still hold chunks of a series with
    /// that ref which is no longer in the head, and a new series must never be taken for it.
    func reserveRefs(through ref: UInt64) {
        if ref < .max { nextRef = max(nextRef, ref + 1) }
    }

    /// Adds a series of `count` labels, label `k`'s symbol ids given by `symbolIds(&symbols, k)`.
    /// Without `hash`, the labels' hash is taken from the symbols' bytes (as stored: a WAL's invalid
    /// UTF-8 is stored repaired, and hashed so).
    private func insert(ref: UInt64, count: Int, hash: UInt64?, symbolIds: (inout SymbolTable, Int) -> (UInt32, UInt32)) -> Int32 {
        precondition(series.count < Int(Int32.max), "head full")
        let index = Int32(series.count)
        // Name ids, then value ids.
        let stored = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2 * count) { ids in
            for k in 0..<count {
                (ids[k], ids[count + k]) = symbolIds(&symbols, k)
                addPosting(ids[k], ids[count + k], index)
            }
            let hash = hash ?? {
                var hasher = LabelHasher()
                for k in 0..<count {
                    symbols.withBytes(ids[k]) { hasher.combine($0) }
                    symbols.withBytes(ids[count + k]) { hasher.combine($0) }
                }
                return hasher.value
            }()
            let stored = labelStore.add(names: UnsafeBufferPointer(rebasing: ids[..<count]), values: UnsafeBufferPointer(rebasing: ids[count...]))
            return (stored, hash)
        }
        let hash = stored.1
        var s = MemSeries(ref: ref, names: stored.0.names, values: stored.0.values)
        s.hashNext = byHash[hash] ?? -1
        byHash.set(hash, index)
        byRef.add(ref, index)
        series.append(s)
        byLabelIds.add(labelIdsHash(index), index)
        nextRef = max(nextRef, ref + 1)
        return index
    }

    private func addPosting(_ name: UInt32, _ value: UInt32, _ index: Int32) {
        postings[UInt64(name) << 32 | UInt64(value), default: []].appendGrowingSlowly(index)
    }

    func index(ofRef ref: UInt64) -> Int32? { byRef.first(ref) { series[Int($0)].ref == ref } }

    /// Head series with the same `__name__` as `labels` (0 without one): the per-metric series limit,
    /// checked only when a series is about to be created.
    func seriesCount(sameMetricAs labels: UnsafeBufferPointer<RawLabel>) -> Int {
        let metricName = "__name__"
        guard let label = labels.first(where: { $0.name.elementsEqual(metricName.utf8) }),
              let n = symbols.id(of: metricName), let v = symbols.id(of: label.value) else { return 0 }
        return postings[UInt64(n) << 32 | UInt64(v)]?.count ?? 0
    }

    // MARK: series by label symbol ids

    /// The hash of a label set given as symbol ids, name then value per label, in label order.
    static func hash(labelIds: UnsafeBufferPointer<UInt32>) -> UInt64 {
        var hasher = LabelHasher()
        var k = 0
        while k + 1 < labelIds.count {
            hasher.combine(hash: UInt64(labelIds[k]) << 32 | UInt64(labelIds[k + 1]))
            k += 2
        }
        return hasher.value
    }

    private func labelIdsHash(_ index: Int32) -> UInt64 {
        let ids = labelIds(Int(index))
        var hasher = LabelHasher()
        for k in 0..<ids.count {
            hasher.combine(hash: UInt64(labelStore.names[ids.names + k]) << 32 | UInt64(labelStore.values[ids.values + k]))
        }
        return hasher.value
    }

    /// The id of the symbol with these bytes, if the head holds one.
    func symbolId(of bytes: UnsafeRawBufferPointer) -> UInt32? { symbols.id(of: bytes) }

    /// The series whose labels are exactly these symbol ids (name, value, ... in label order).
    func series(labelIds: UnsafeBufferPointer<UInt32>, hash: UInt64) -> Int32? {
        byLabelIds.first(hash) { candidate in
            let ids = self.labelIds(Int(candidate))
            guard 2 * ids.count == labelIds.count else { return false }
            for k in 0..<ids.count where labelStore.names[ids.names + k] != labelIds[2 * k] || labelStore.values[ids.values + k] != labelIds[2 * k + 1] {
                return false
            }
            return true
        }
    }

    // MARK: known encoded label sets

    /// Series by the exact bytes their labels arrived as in a request (see `AppendBatch`): a known
    /// series is found with one hash over the bytes and one comparison, without decoding, checking
    /// or looking up its labels one by one. Every remembered encoding is kept, back to back in
    /// pages, and compared with one memcmp: comparing Prometheus' encoding with the series' own
    /// labels instead (a symbol lookup and a comparison per name and value, each a likely cache miss)
    /// took a fifth of the server's CPU on the write path, for about as many bytes a series as
    /// Prometheus keeps for its labels. A value in the index is an index into
    /// `encodedLabelEntries`; keys whose tags collide replace each other, which costs a lookup,
    /// never a wrong series. Emptied whenever series indexes change (`rebuild`).
    private(set) var encodedLabelIndex = IndexMap(.hashed)
    private(set) var encodedLabelEntries: [(page: Int32, start: Int32, count: Int32, series: Int32)] = []
    /// Pages of at most `encodedLabelPageBytes`, so the cache grows without copying what it holds
    /// past one page (a million series' encodings are hundreds of MiB). An encoding longer than a
    /// page is not remembered: its series is found by its labels.
    private(set) var encodedLabelPages: [[UInt8]] = []
    static let encodedLabelPageBytes = 1 << 18

    static func hash(encodedLabels bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = LabelHasher()
        hasher.combine(bytes)
        return hasher.value
    }

    func series(encodedLabels bytes: UnsafeRawBufferPointer, hash: UInt64) -> Int32? {
        encodedLabelEntry(bytes, hash: hash)?.series
    }

    /// The remembered encoding with exactly these bytes, found by their hash: its place in
    /// `encodedLabelEntries` and its series.
    func encodedLabelEntry(_ bytes: UnsafeRawBufferPointer, hash: UInt64) -> (entry: Int32, series: Int32)? {
        guard let entry = encodedLabelIndex[hash], let series = series(encodedLabels: bytes, entry: entry) else { return nil }
        return (entry, series)
    }

    /// The series of entry `entry` of `encodedLabelEntries` if that entry remembers exactly these
    /// bytes; nil for any other bytes and for a place past the entries.
    func series(encodedLabels bytes: UnsafeRawBufferPointer, entry: Int32) -> Int32? {
        guard entry >= 0, Int(entry) < encodedLabelEntries.count else { return nil }
        let remembered = encodedLabelEntries[Int(entry)]
        guard Int(remembered.count) == bytes.count else { return nil }
        let equal = encodedLabelPages[Int(remembered.page)].withUnsafeBytes {
            memcmp($0.baseAddress! + Int(remembered.start), bytes.baseAddress!, bytes.count) == 0
        }
        return equal ? remembered.series : nil
    }

    func remember(encodedLabels bytes: UnsafeRawBufferPointer, hash: UInt64, series index: Int32) {
        guard !bytes.isEmpty, bytes.count <= Self.encodedLabelPageBytes else { return }
        // A sender that orders labels differently each time would add an entry per sample: past two
        // entries a series (on average), start over, so memory stays bounded whatever senders do.
        if encodedLabelEntries.count >= min(Int(Int32.max), max(1024, 2 * series.count)) { forgetEncodedLabels() }
        // A page grows as arrays do, up to its size: a tenant of a few series keeps a few bytes.
        if encodedLabelPages.last.map({ $0.count + bytes.count > Self.encodedLabelPageBytes }) ?? true {
            encodedLabelPages.append([])
        }
        let page = encodedLabelPages.count - 1
        encodedLabelEntries.append((Int32(page), Int32(encodedLabelPages[page].count), Int32(bytes.count), index))
        encodedLabelPages[page].append(contentsOf: bytes)
        encodedLabelIndex.set(hash, Int32(encodedLabelEntries.count - 1))
    }

    private func forgetEncodedLabels() {
        encodedLabelIndex = IndexMap(.hashed)
        encodedLabelEntries = []
        encodedLabelPages = []
    }

    /// Rebuilds the lookup structures over the series `keep` accepts (by index), so dropped series
    /// cost nothing.
    func rebuild(keeping keep: (Int) -> Bool) {
        let kept = series.indices.filter(keep)
        guard kept.count != series.count else { return }
        forgetEncodedLabels()
        let old = series, oldLate = late, oldHistograms = histograms
        let values = labelStore.compactValues(kept.map { (old[$0].values, labelStore.count(old[$0].names)) })
        series = SeriesPages()
        late = [:]
        histograms = [:]
        byHash = IndexMap(.hashed, capacity: kept.count)
        byRef = IndexMap(.sequential, capacity: kept.count)
        byLabelIds = IndexMap(.hashed, capacity: kept.count)
        postings = [:]
        for (k, i) in kept.enumerated() {
            var s = old[i]
            let index = Int32(series.count)
            s.values = values[k]
            series.append(s)
            var hasher = LabelHasher()
            for (n, v) in labelIdPairs(index) {
                hasher.combine(symbols[n])
                hasher.combine(symbols[v])
                addPosting(n, v, index)
            }
            if let samples = oldLate[Int32(i)], !samples.isEmpty { late[index] = samples }
            if let h = oldHistograms[Int32(i)], !h.isEmpty { histograms[index] = h }
            series[Int(index)].hashNext = byHash[hasher.value] ?? -1
            byHash.set(hasher.value, index)
            byRef.add(s.ref, index)
            byLabelIds.add(labelIdsHash(index), index)
        }
    }

    /// Series `index`'s labels as (name, value) symbol ids.
    func labelIdPairs(_ index: Int32) -> [(UInt32, UInt32)] {
        let ids = labelIds(Int(index))
        return (0..<ids.count).map { (labelStore.names[ids.names + $0], labelStore.values[ids.values + $0]) }
    }

    func labelPairs(_ index: Int32) -> [(String, String)] {
        labelIdPairs(index).map { (symbols[$0.0], symbols[$0.1]) }
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

    /// Reads the first and last byte of each series' open chunk ahead of a run of appends to those
    /// series. Appending to one series after another waited out a cache miss on each chunk buffer in
    /// turn (about half of WAL replay's time); these loads do not depend on one another, so the
    /// processor overlaps them. What they read is kept in `warmedBytes` only so that they are not
    /// optimized away.
    func warmOpenChunks<Indices: Sequence<Int32>>(_ indices: Indices) {
        var seen: UInt8 = 0
        for index in indices where index >= 0 {
            seen ^= series[Int(index)].open.stream.edgeBytes
        }
        warmedBytes = seen
    }

    /// Appends a sample newer than the series' last one.
    func append(_ index: Int32, timestamp t: Int64, valueBits v: UInt64) {
        endHistogramChunk(index)
        if series[Int(index)].append(timestamp: t, valueBits: v, chunkRange: chunkRange) { writeClosedChunk(index) }
        widenTimes(t)
    }

    /// Takes in-order time `t` (a float's or a histogram's) into the head's span.
    func widenTimes(_ t: Int64) {
        if t < minTime { minTime = t }
        if t > maxTime { maxTime = t }
    }

    /// The value bits stored at exactly `t`, if any: used to tell a resent sample from a conflicting one.
    /// Closed chunks are in time order, so one is found by binary search; only the chunk that can
    /// hold `t` is decoded.
    func valueBits(_ index: Int32, at t: Int64) -> UInt64? {
        let i = Int(index)
        let lateSamples = late.isEmpty ? nil : late[index]
        if let s = lateSamples?.buffer.first(where: { $0.timestamp == t }) { return s.valueBits }
        let closed = series[i].closed
        var low = 0, high = closed.count
        while low < high {
            let middle = low + (high - low) / 2
            if closed[middle].maxTime < t { low = middle + 1 } else { high = middle }
        }
        if low < closed.count, closed[low].minTime <= t, let v = Self.valueBits(in: closed[low].bytes, at: t) { return v }
        if series[i].open.count > 0, t <= series[i].lastTimestamp, series[i].openMinTime <= t,
           let v = Self.valueBits(in: series[i].open.stream.bytes, at: t) { return v }
        // Late chunks may overlap and come in arrival order: a scan, through a pointer so that
        // skipping a chunk costs two comparisons and no reference counting.
        return lateSamples?.chunks.withUnsafeBufferPointer { chunks in
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
            s.open.stream.bytes.withUnsafeBufferPointer { body(s.openMinTime, s.lastTimestamp, $0) }
        }
        if includingOutOfOrder, !late.isEmpty, let chunks = late[index]?.chunks {
            for c in chunks { c.bytes.withUnsafeBufferPointer { body(c.minTime, c.maxTime, $0) } }
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
            let ids = labelIds(Int(index))
            return predicates.allSatisfy { name, matches in
                var value = ""
                for k in 0..<ids.count where Labels.compareBytes(symbols[labelStore.names[ids.names + k]], name) == 0 {
                    value = symbols[labelStore.values[ids.values + k]]
                }
                return matches(value)
            }
        }
    }
}

extension Array {
    /// `append`, growing by a quarter rather than doubling (see `Head.reserve`).
    mutating func appendGrowingSlowly(_ element: Element) {
        Head.reserve(&self, 1)
        append(element)
    }
}
