#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file, unmapped when released.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let path: String

    init(path: String) throws(StorageIOError) {
        self.path = path
        let file = try OpenFile(path: path, flags: O_RDONLY)
        let size = try file.size()
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_SHARED, file.fd, 0), base != MAP_FAILED else {
            throw StorageIOError("mmap", path)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit { if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) } }
}

/// The bytes of a WAL segment being replayed. A writer maps the file: no copy and no freshly
/// zeroed pages, which were a tenth of replay's time. A read-only open copies it instead, because
/// the store's writer may cut a torn tail meanwhile, and touching a mapped page past a file's new
/// end kills the reader with SIGBUS.
final class SegmentBytes {
    private let mapping: MappedFile?
    private let copy: UnsafeMutableRawBufferPointer?

    init(path: String, mapped: Bool) throws(StorageIOError) {
        if mapped {
            mapping = try MappedFile(path: path)
            copy = nil
        } else {
            let bytes = try FileSystem.readFile(path)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            mapping = nil
            copy = buffer
        }
    }

    deinit { copy?.deallocate() }

    /// Valid while this object lives.
    var bytes: UnsafeRawBufferPointer { mapping?.bytes ?? UnsafeRawBufferPointer(copy!) }
}

/// A problem found reading a block: which block, which part, what.
public struct BlockError: Error, CustomStringConvertible, Sendable {
    public let block: String
    public let section: String
    public let problem: String
    public var description: String { "block \(block): \(section): \(problem)" }
}

/// A bounds-checked cursor over mapped bytes.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int? = nil) {
        self.bytes = bytes
        position = from
        end = min(to ?? bytes.count, bytes.count)
    }

    mutating func uvarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < end && shift < 64 {
            let b = bytes[position]
            position += 1
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    mutating func varint() -> Int64? {
        guard let u = uvarint() else { return nil }
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    mutating func u32() -> UInt32? {
        guard end - position >= 4 else { return nil }
        defer { position += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func u64() -> UInt64? {
        guard end - position >= 8 else { return nil }
        defer { position += 8 }
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    mutating func string() -> String? {
        guard let n = uvarint(), n <= UInt64(end - position) else { return nil }
        defer { position += Int(n) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(n)]), as: UTF8.self)
    }
}

/// A chunk's place in a block: time range and `segment << 32 | offset`.
public struct ChunkMeta: Sendable, Equatable {
    public let minTime: Int64
    public let maxTime: Int64
    public let ref: UInt64
}

/// Reads a Prometheus block: index and chunk segments mapped, every index checksum verified on open,
/// chunk checksums verified on each read.
public final class BlockReader: Sendable {
    public let directory: String
    public let meta: BlockMeta
    private let index: MappedFile
    private let segments: [MappedFile]
    let symbols: [String]
    /// Per label name: (value, offset of its postings list), values ascending.
    let postingsOffsets: [String: [(value: String, offset: Int)]]
    /// Offsets/16 of every series, ascending (the all-postings list).
    public let seriesRefs: [UInt32]
    /// Deleted intervals, skipped by every read of this block.
    public let tombstones: Tombstones

    public var ulid: String { meta.ulid }

    public init(directory: String) throws {
        self.directory = directory
        let name = String(directory.split(separator: "/").last ?? "")
        func fail(_ section: String, _ problem: String) -> BlockError { BlockError(block: name, section: section, problem: problem) }
        meta = try BlockMeta.decode(try FileSystem.readFile(directory + "/meta.json"))
        guard meta.version == 1 else { throw fail("meta.json", "version \(meta.version), want 1") }
        index = try MappedFile(path: directory + "/index")
        let b = index.bytes
        guard b.count >= 5 + 52, Array(b[0..<4]) == BlockWriter.indexMagic else { throw fail("index", "bad magic or too short") }
        guard b[4] == 2 else { throw fail("index", "format version \(b[4]), want 2") }

        let tocStart = b.count - 52
        var toc = ByteCursor(b, from: tocStart)
        let offsets = (0..<6).map { _ in Int(toc.u64()!) }
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[tocStart..<tocStart + 48])) == toc.u32()! else {
            throw fail("index TOC", "checksum mismatch")
        }
        guard offsets.allSatisfy({ $0 <= tocStart }) else { throw fail("index TOC", "offset past the end") }

        func section(_ start: Int, _ what: String) throws -> Range<Int> {
            var c = ByteCursor(b, from: start, to: tocStart)
            guard let length = c.u32(), Int(length) <= tocStart - c.position - 4 else { throw fail(what, "length past the end") }
            let body = c.position..<c.position + Int(length)
            var crc = ByteCursor(b, from: body.upperBound, to: tocStart)
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[body])) == crc.u32() else { throw fail(what, "checksum mismatch at offset \(start)") }
            return body
        }

        let symbolRange = try section(offsets[0], "index symbols")
        var c = ByteCursor(b, from: symbolRange.lowerBound, to: symbolRange.upperBound)
        let count = Int(c.u32()!)
        var symbols: [String] = []
        symbols.reserveCapacity(count)
        for _ in 0..<count {
            guard let s = c.string() else { throw fail("index symbols", "truncated") }
            symbols.append(s)
        }
        self.symbols = symbols

        let tableRange = try section(offsets[5], "index postings offset table")
        c = ByteCursor(b, from: tableRange.lowerBound, to: tableRange.upperBound)
        var table: [String: [(value: String, offset: Int)]] = [:]
        let entries = Int(c.u32()!)
        for _ in 0..<entries {
            guard c.uvarint() == 2, let n = c.string(), let v = c.string(), let offset = c.uvarint() else {
                throw fail("index postings offset table", "malformed entry")
            }
            table[n, default: []].append((v, Int(offset)))
        }
        postingsOffsets = table
        guard let all = table[""]?.first(where: { $0.value == "" }) else { throw fail("index postings", "no all-postings entry") }

        // Every postings list and series entry is checked now, so reads can trust the index.
        for (name, values) in table {
            for (_, offset) in values { _ = try section(offset, "index postings of \(name)") }
        }
        let allRange = try section(all.offset, "index postings")
        c = ByteCursor(b, from: allRange.lowerBound, to: allRange.upperBound)
        let n = Int(c.u32()!)
        var refs: [UInt32] = []
        refs.reserveCapacity(n)
        for _ in 0..<n { refs.append(c.u32()!) }
        seriesRefs = refs
        for ref in refs {
            var s = ByteCursor(b, from: Int(ref) * 16, to: tocStart)
            guard let length = s.uvarint(), Int(length) + 4 <= s.end - s.position else { throw fail("index series", "entry \(ref) overruns") }
            let body = s.position..<s.position + Int(length)
            var crc = ByteCursor(b, from: body.upperBound, to: tocStart)
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[body])) == crc.u32() else {
                throw fail("index series", "checksum mismatch in series \(ref)")
            }
        }

        tombstones = try Tombstones.read(directory: directory, block: name)
        let chunkFiles = try FileSystem.listDirectory(directory + "/chunks").filter { $0.count == 6 && $0.allSatisfy(\.isNumber) }
        segments = try chunkFiles.map { (file) throws -> MappedFile in
            let m = try MappedFile(path: directory + "/chunks/" + file)
            guard m.bytes.count >= 8, Array(m.bytes[0..<4]) == BlockWriter.chunksMagic, m.bytes[4] == 1 else {
                throw fail("chunks/\(file)", "bad magic or version")
            }
            return m
        }
    }

    private init(_ other: BlockReader, meta: BlockMeta, tombstones: Tombstones) {
        directory = other.directory
        self.meta = meta
        index = other.index
        segments = other.segments
        symbols = other.symbols
        postingsOffsets = other.postingsOffsets
        seriesRefs = other.seriesRefs
        self.tombstones = tombstones
    }

    /// This block with `tombstones` and `meta`, sharing the mapped files: what reads use once a
    /// deletion's files are on disk.
    func replacing(tombstones: Tombstones, meta: BlockMeta) -> BlockReader {
        BlockReader(self, meta: meta, tombstones: tombstones)
    }

    /// Labels and chunk metas of the series at `ref` (offset/16 in the index).
    public func series(_ ref: UInt32) throws -> (labels: [(String, String)], chunks: [ChunkMeta]) {
        var c = ByteCursor(index.bytes, from: Int(ref) * 16)
        guard let length = c.uvarint() else { throw BlockError(block: ulid, section: "index series", problem: "bad entry \(ref)") }
        c = ByteCursor(index.bytes, from: c.position, to: c.position + Int(length))
        func bad() -> BlockError { BlockError(block: ulid, section: "index series", problem: "malformed series \(ref)") }
        guard let labelCount = c.uvarint() else { throw bad() }
        var labels: [(String, String)] = []
        for _ in 0..<labelCount {
            guard let n = c.uvarint(), let v = c.uvarint(), n < symbols.count, v < symbols.count else { throw bad() }
            labels.append((symbols[Int(n)], symbols[Int(v)]))
        }
        guard let chunkCount = c.uvarint() else { throw bad() }
        var chunks: [ChunkMeta] = []
        var previousMax: Int64 = 0
        var previousRef: UInt64 = 0
        for k in 0..<chunkCount {
            let minTime: Int64
            if k == 0 {
                guard let m = c.varint() else { throw bad() }
                minTime = m
            } else {
                guard let d = c.uvarint() else { throw bad() }
                minTime = previousMax &+ Int64(bitPattern: d)
            }
            guard let span = c.uvarint() else { throw bad() }
            let maxTime = minTime &+ Int64(bitPattern: span)
            let ref: UInt64
            if k == 0 {
                guard let r = c.uvarint() else { throw bad() }
                ref = r
            } else {
                guard let d = c.varint() else { throw bad() }
                ref = previousRef &+ UInt64(bitPattern: d)
            }
            chunks.append(ChunkMeta(minTime: minTime, maxTime: maxTime, ref: ref))
            previousMax = maxTime
            previousRef = ref
        }
        return (labels, chunks)
    }

    /// The chunk's encoded bytes, after checking its CRC; valid while this reader lives.
    public func chunk(_ ref: UInt64) throws -> UnsafeBufferPointer<UInt8> {
        let segment = Int(ref >> 32), offset = Int(ref & 0xffff_ffff)
        func bad(_ problem: String) -> BlockError { BlockError(block: ulid, section: "chunks/\(String(format: "%06d", segment + 1))", problem: problem) }
        guard segment < segments.count else { throw bad("no such segment for chunk ref \(ref)") }
        let b = segments[segment].bytes
        var c = ByteCursor(b, from: offset)
        guard let length = c.uvarint(), c.position + 1 + Int(length) + 4 <= b.count else { throw bad("chunk at \(offset) overruns") }
        let encoding = b[c.position]
        let data = c.position + 1..<c.position + 1 + Int(length)
        var crc = ByteCursor(b, from: data.upperBound)
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[c.position..<data.upperBound])) == crc.u32() else {
            throw bad("checksum mismatch in chunk at \(offset)")
        }
        guard encoding == XORChunk.encoding else { throw bad("chunk encoding \(encoding) is not XOR") }
        return UnsafeRawBufferPointer(rebasing: b[data]).bindMemory(to: UInt8.self)
    }

    /// The value bits this block holds for exactly these labels at exactly `t`, if any.
    func valueBits(labels: [(String, String)], at t: Int64) throws -> UInt64? {
        guard meta.minTime <= t, t < meta.maxTime else { return nil }
        var candidates: Set<UInt32>?
        for (name, value) in labels {
            guard let values = postingsOffsets[name] else { return nil }
            var low = 0, high = values.count
            while low < high {
                let mid = (low + high) / 2
                if values[mid].value.utf8.lexicographicallyPrecedes(value.utf8) { low = mid + 1 } else { high = mid }
            }
            guard low < values.count, values[low].value == value else { return nil }
            let refs = Set(postings(values[low].offset))
            candidates = candidates.map { $0.intersection(refs) } ?? refs
            if candidates!.isEmpty { return nil }
        }
        for ref in candidates ?? [] {
            let (found, chunks) = try series(ref)
            guard found.count == labels.count, zip(found, labels).allSatisfy({ $0 == $1 }) else { continue }
            for chunk in chunks where chunk.minTime <= t && t <= chunk.maxTime {
                var it = XORIterator(try self.chunk(chunk.ref))
                while let (ts, v) = it.next(), ts <= t {
                    if ts == t { return tombstones.deletes(ref, t) ? nil : v }
                }
            }
        }
        return nil
    }

    func postings(_ offset: Int) -> [UInt32] {
        var c = ByteCursor(index.bytes, from: offset)
        guard c.u32() != nil, let n = c.u32() else { return [] }
        return (0..<n).compactMap { _ in c.u32() }
    }

    /// Series refs that may match: the intersection over matchers that need a label value, each as
    /// the union of its matching values' postings. Callers check every matcher on the real labels.
    public func candidates(_ matchers: [LabelMatcher]) -> [UInt32] {
        var result: [UInt32]?
        for m in matchers {
            let predicate = m.predicate()
            if predicate("") { continue }           // also matches series without the label
            var union: [UInt32] = []
            for (value, offset) in postingsOffsets[m.name] ?? [] where predicate(value) { union += postings(offset) }
            union.sort()
            if let current = result {
                let set = Set(union)
                result = current.filter { set.contains($0) }
            } else {
                result = union
            }
        }
        return result ?? seriesRefs
    }

    /// Series refs whose labels satisfy every matcher, with their labels and chunks.
    private func forEachMatching(_ matchers: [LabelMatcher], _ body: (UInt32, [(String, String)], [ChunkMeta]) throws -> Void) throws {
        let predicates = matchers.map { ($0.name, $0.predicate()) }
        for ref in candidates(matchers) {
            let (labels, chunks) = try series(ref)
            if predicates.allSatisfy({ name, p in p(labels.first { $0.0 == name }?.1 ?? "") }) { try body(ref, labels, chunks) }
        }
    }

    /// Samples of series `ref` in [minTime, maxTime] from `chunks`, without those its tombstones delete.
    private func samples(_ ref: UInt32, _ chunks: [ChunkMeta], minTime: Int64, maxTime: Int64) throws -> [Sample] {
        var samples: [Sample] = []
        for meta in chunks where meta.maxTime >= minTime && meta.minTime <= maxTime {
            var it = XORIterator(try chunk(meta.ref))
            while let (t, v) = it.next(), t <= maxTime {
                if t >= minTime { samples.append(Sample(timestamp: t, valueBits: v)) }
            }
            if it.failed { throw BlockError(block: ulid, section: "chunks", problem: "undecodable chunk \(meta.ref)") }
        }
        if let deleted = tombstones.intervals[ref] {
            samples.removeAll { s in deleted.contains { $0.covers(s.timestamp) } }
        }
        return samples
    }

    /// Series matching every matcher with their samples in [minTime, maxTime].
    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [SeriesSamples] {
        guard meta.maxTime > minTime, meta.minTime <= maxTime else { return [] }
        var out: [SeriesSamples] = []
        try forEachMatching(matchers) { ref, labels, chunks in
            let samples = try samples(ref, chunks, minTime: minTime, maxTime: maxTime)
            if !samples.isEmpty { out.append(SeriesSamples(labels: Labels(labels.map { Label($0.0, $0.1) }), samples: samples)) }
        }
        return out
    }

    /// Per matching series ref, how many of its readable samples lie inside `interval`: what a
    /// deletion would add tombstones for.
    func deletable(_ matchers: [LabelMatcher], in interval: DeletedInterval) throws -> [(ref: UInt32, samples: Int)] {
        guard meta.maxTime > interval.minTime, meta.minTime <= interval.maxTime else { return [] }
        var out: [(ref: UInt32, samples: Int)] = []
        try forEachMatching(matchers) { ref, _, chunks in
            let n = try samples(ref, chunks, minTime: interval.minTime, maxTime: interval.maxTime).count
            if n > 0 { out.append((ref, n)) }
        }
        return out
    }
}
