#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A read-only memory mapping of a whole file, unmapped when released.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let path: String

    /// Only a regular file, never through a symbolic link: a link in a tenant's directory must not
    /// make its files (and the WAL repair that cuts them) reach outside it, and a FIFO would block
    /// every read (opening it does not wait, with O_NONBLOCK; the check then refuses it).
    init(path: String) throws(StorageIOError) {
        self.path = path
        let file = try OpenFile(path: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        guard try file.isRegular() else { throw StorageIOError("map (not a regular file)", path, errno: EINVAL) }
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

    /// Takes the pages read so far out of this process' resident set. The mapping is shared and
    /// read-only, so nothing is lost: the next read faults the page back in from the page cache.
    /// Without this, a pass over a large block (the checks on open, a compaction) leaves all of it
    /// counted in the process' memory for as long as the block is open.
    func releaseResidentPages() {
        if let base = bytes.baseAddress { madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_DONTNEED) }
    }
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

    /// The place of the next `count` bytes, skipped over, if that many remain. Counts come from
    /// disk, so they are compared before any conversion or addition.
    mutating func take(_ count: UInt64) -> Range<Int>? {
        guard position <= end, count <= UInt64(end - position) else { return nil }
        let start = position
        position += Int(count)
        return start..<position
    }

    mutating func string() -> String? {
        guard let n = uvarint(), let range = take(n) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// A chunk's place in a block: time range and `segment << 32 | offset`.
/// A chunk as a block holds it: `XORChunk.encoding`, `HistogramChunk.encoding` or
/// `FloatHistogramChunk.encoding`, and its data.
public struct BlockChunk {
    public let encoding: UInt8
    public let bytes: UnsafeBufferPointer<UInt8>
}

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
    /// Each symbol's `LabelHasher.hash(of:)`: a series' labels hash alike in every block from these.
    let symbolHashes: [UInt64]
    /// Per label name: (value, offset of its postings list), values ascending.
    let postingsOffsets: [String: [(value: String, offset: Int)]]
    /// Offsets/16 of every series, ascending (the all-postings list).
    public let seriesRefs: [UInt32]
    /// Deleted intervals, skipped by every read of this block.
    public let tombstones: Tombstones
    /// A hash of `tombstones`' contents, nil without any: the block's data as reads see it is named
    /// by its ULID and this (`TenantDatabase.immutableVersion`), the same after a restart.
    let tombstonesDigest: UInt64?
    /// A number no other reader made by this process has: a reader with other tombstones (after a
    /// deletion) is another reader, so what was read through one is told apart from the other's.
    let serial: UInt64

    private static let serials = Atomic<UInt64>(0)
    private static func nextSerial() -> UInt64 { serials.wrappingAdd(1, ordering: .relaxed).newValue }

    public var ulid: String { meta.ulid }

    /// Bytes of the index and chunk files, the whole of a block but for its few-KiB meta.json and tombstones.
    public var mappedBytes: Int { segments.reduce(index.bytes.count) { $0 + $1.bytes.count } }

    /// Takes the index and chunk pages read so far out of the resident set (see `MappedFile`).
    func releaseResidentPages() {
        index.releaseResidentPages()
        for segment in segments { segment.releaseResidentPages() }
    }

    /// Six u64 section offsets and their CRC32C, at the end of the index.
    static let tocSize = 52

    /// The files a deletion rewrites inside a finished block (each through `<name>.tmp`).
    static let replacedFiles = ["meta.json", "tombstones"]

    /// Opens the block in `directory`. With `neighbour`, a block of the same tenant already open,
    /// symbols both hold are shared with it rather than copied (see `SymbolSharing`).
    public init(directory: String, sharingSymbolsWith neighbour: BlockReader? = nil) throws {
        self.directory = directory
        let name = String(directory.split(separator: "/").last ?? "")
        func fail(_ section: String, _ problem: String) -> BlockError { BlockError(block: name, section: section, problem: problem) }
        meta = try BlockMeta.read(directory: directory, block: name)
        guard meta.version == 1 else { throw fail("meta.json", "version \(meta.version), want 1") }
        index = try MappedFile(path: directory + "/index")
        let b = index.bytes
        guard b.count >= 5 + Self.tocSize, Array(b[0..<4]) == BlockWriter.indexMagic else { throw fail("index", "bad magic or too short") }
        guard b[4] == 2 else { throw fail("index", "format version \(b[4]), want 2") }

        let tocStart = b.count - Self.tocSize
        var tocChecksum = ByteCursor(b, from: b.count - 4)
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[tocStart..<b.count - 4])) == tocChecksum.u32() else {
            throw fail("index TOC", "checksum mismatch")
        }
        var toc = ByteCursor(b, from: tocStart, to: b.count - 4)
        var offsets: [Int] = []
        while let offset = toc.u64() {
            guard let start = Int(exactly: offset), start <= tocStart else { throw fail("index TOC", "section offset \(offset) past the end") }
            offsets.append(start)
        }

        func section(_ start: Int, _ what: String) throws(BlockError) -> Range<Int> {
            var c = ByteCursor(b, from: start, to: tocStart)
            guard let length = c.u32(), let body = c.take(UInt64(length)), let stored = c.u32() else {
                throw fail(what, "section at offset \(start) runs past the end")
            }
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[body])) == stored else { throw fail(what, "checksum mismatch at offset \(start)") }
            return body
        }

        let symbolRange = try section(offsets[0], "index symbols")
        var c = ByteCursor(b, from: symbolRange.lowerBound, to: symbolRange.upperBound)
        // Each symbol takes at least its length byte, so a larger count is corrupt (and must not size an allocation).
        guard let count = c.u32(), UInt64(count) <= UInt64(c.end - c.position) else { throw fail("index symbols", "symbol count past the section's end") }
        var symbols: [String] = []
        var symbolHashes: [UInt64] = []
        symbols.reserveCapacity(Int(count))
        symbolHashes.reserveCapacity(Int(count))
        var fromNeighbour = SymbolSharing(neighbour?.symbols ?? [], hashes: neighbour?.symbolHashes ?? [])
        for _ in 0..<count {
            guard let length = c.uvarint(), let range = c.take(length) else { throw fail("index symbols", "truncated") }
            let bytes = UnsafeRawBufferPointer(rebasing: b[range])
            if let (shared, hash) = fromNeighbour.match(bytes) {
                symbols.append(shared)
                symbolHashes.append(hash)
            } else {
                let symbol = String(decoding: bytes, as: UTF8.self)
                symbols.append(symbol)
                symbolHashes.append(LabelHasher.hash(of: symbol))
            }
        }
        self.symbols = symbols
        self.symbolHashes = symbolHashes

        let tableRange = try section(offsets[5], "index postings offset table")
        c = ByteCursor(b, from: tableRange.lowerBound, to: tableRange.upperBound)
        guard let entries = c.u32() else { throw fail("index postings offset table", "truncated") }
        var table: [String: [(value: String, offset: Int)]] = [:]
        // Each name's values ascend, and each is a symbol: the table shares the symbols' strings.
        var fromSymbols = SymbolSharing(symbols, hashes: symbolHashes)
        var currentName = ""
        for _ in 0..<entries {
            guard c.uvarint() == 2, let n = c.string(), let valueLength = c.uvarint(), let valueRange = c.take(valueLength),
                  let offset = c.uvarint() else {
                throw fail("index postings offset table", "malformed entry")
            }
            let valueBytes = UnsafeRawBufferPointer(rebasing: b[valueRange])
            if n != currentName {
                currentName = n
                fromSymbols.seek(valueBytes)
            }
            let v = fromSymbols.match(valueBytes)?.string ?? String(decoding: valueBytes, as: UTF8.self)
            guard let start = Int(exactly: offset), start <= tocStart else {
                throw fail("index postings offset table", "postings of \(n)=\(GoFormat.quote(v)) at offset \(offset), past the end")
            }
            table[n, default: []].append((v, start))
        }
        postingsOffsets = table
        guard let all = table[""]?.first(where: { $0.value == "" }) else { throw fail("index postings", "no all-postings entry") }

        // Every postings list and series entry is checked now, so reads can trust the index.
        func checkPostings(_ offset: Int, _ what: String) throws(BlockError) {
            let body = try section(offset, what)
            var c = ByteCursor(b, from: body.lowerBound, to: body.upperBound)
            guard let count = c.u32(), UInt64(count) * 4 <= UInt64(c.end - c.position) else {
                throw fail(what, "ref count past the list's end at offset \(offset)")
            }
        }
        for (name, values) in table {
            for (_, offset) in values { try checkPostings(offset, name.isEmpty ? "index postings" : "index postings of \(name)") }
        }
        seriesRefs = Self.postings(b, at: all.offset)
        for ref in seriesRefs {
            guard let entry = Self.seriesEntry(b, ref) else { throw fail("index series", "entry \(ref) overruns") }
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[entry.body])) == entry.checksum else {
                throw fail("index series", "checksum mismatch in series \(ref)")
            }
        }

        tombstones = try Tombstones.read(directory: directory, block: name)
        tombstonesDigest = tombstones.digest
        serial = Self.nextSerial()
        let chunkFiles = try FileSystem.listDirectory(directory + "/chunks").filter { $0.count == 6 && $0.allSatisfy(\.isNumber) }
        segments = try chunkFiles.map { (file) throws -> MappedFile in
            let m = try MappedFile(path: directory + "/chunks/" + file)
            guard m.bytes.count >= 8, Array(m.bytes[0..<4]) == BlockWriter.chunksMagic, m.bytes[4] == 1 else {
                throw fail("chunks/\(file)", "bad magic or version")
            }
            return m
        }
        // The checks above read the whole index.
        index.releaseResidentPages()
    }

    private init(_ other: BlockReader, meta: BlockMeta, tombstones: Tombstones) {
        directory = other.directory
        self.meta = meta
        index = other.index
        segments = other.segments
        symbols = other.symbols
        symbolHashes = other.symbolHashes
        postingsOffsets = other.postingsOffsets
        seriesRefs = other.seriesRefs
        self.tombstones = tombstones
        tombstonesDigest = tombstones.digest
        serial = Self.nextSerial()
    }

    /// This block with `tombstones` and `meta`, sharing the mapped files: what reads use once a
    /// deletion's files are on disk.
    /// A block in a store is named by its ULID: a meta.json naming another (or the ULID of a
    /// neighbour) is a corrupt block, which Prometheus lists under neither name.
    func checkNamed(_ name: String) throws(BlockError) {
        guard meta.ulid == name else {
            throw BlockError(block: name, section: "meta.json", problem: "ulid \(GoFormat.quote(meta.ulid)) is not the block directory's name")
        }
    }

    func replacing(tombstones: Tombstones, meta: BlockMeta) -> BlockReader {
        BlockReader(self, meta: meta, tombstones: tombstones)
    }

    /// Where the entry of series `ref` (offset/16) lies and its stored CRC32C, if both end before the TOC.
    private static func seriesEntry(_ b: UnsafeRawBufferPointer, _ ref: UInt32) -> (body: Range<Int>, checksum: UInt32)? {
        var c = ByteCursor(b, from: Int(ref) * 16, to: b.count - tocSize)
        guard let length = c.uvarint(), let body = c.take(length), let checksum = c.u32() else { return nil }
        return (body, checksum)
    }

    /// Labels and chunk metas of the series at `ref` (offset/16 in the index).
    public func series(_ ref: UInt32) throws(BlockError) -> (labels: [(String, String)], chunks: [ChunkMeta]) {
        var reader = try entry(ref)
        var ids: [UInt32] = []
        var chunks: [ChunkMeta] = []
        guard reader.labelIDs(into: &ids), reader.chunks({ chunks.append($0) }) else { throw malformed(ref) }
        return (stride(from: 0, to: ids.count, by: 2).map { (symbols[Int(ids[$0])], symbols[Int(ids[$0 + 1])]) }, chunks)
    }

    /// A reader of the entry of series `ref`.
    private func entry(_ ref: UInt32) throws(BlockError) -> SeriesEntryReader {
        // Only entries checked on open are read: a ref from another postings list may point anywhere.
        guard holdsSeries(ref), let entry = Self.seriesEntry(index.bytes, ref) else {
            throw BlockError(block: ulid, section: "index series", problem: "series \(ref) is not in the index")
        }
        return SeriesEntryReader(cursor: ByteCursor(index.bytes, from: entry.body.lowerBound, to: entry.body.upperBound), symbolCount: symbols.count)
    }

    private func malformed(_ ref: UInt32) -> BlockError { BlockError(block: ulid, section: "index series", problem: "malformed series \(ref)") }

    /// Whether `ref` is in the all-postings list (ascending, as written).
    private func holdsSeries(_ ref: UInt32) -> Bool {
        var low = 0, high = seriesRefs.count
        while low < high {
            let mid = (low + high) / 2
            if seriesRefs[mid] < ref { low = mid + 1 } else { high = mid }
        }
        return low < seriesRefs.count && seriesRefs[low] == ref
    }

    /// The segment file a chunk ref points into, as errors name it.
    private static func chunkSection(_ ref: UInt64) -> String { "chunks/" + BlockWriter.chunkSegmentName(Int(ref >> 32)) }

    /// The chunk's encoding and bytes, after checking its CRC and that its encoding is XOR or
    /// integer histogram; valid while this reader lives.
    public func chunk(_ ref: UInt64) throws(BlockError) -> BlockChunk {
        let segment = Int(ref >> 32), offset = Int(ref & 0xffff_ffff)
        func bad(_ problem: String) -> BlockError { BlockError(block: ulid, section: Self.chunkSection(ref), problem: problem) }
        guard segment < segments.count else { throw bad("no such segment for chunk ref \(ref)") }
        let b = segments[segment].bytes
        var c = ByteCursor(b, from: offset)
        guard let length = c.uvarint(), let encoding = c.take(1), let data = c.take(length), let stored = c.u32() else {
            throw bad("chunk at \(offset) overruns")
        }
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[encoding.lowerBound..<data.upperBound])) == stored else {
            throw bad("checksum mismatch in chunk at \(offset)")
        }
        let kind = b[encoding.lowerBound]
        guard kind == XORChunk.encoding || kind == HistogramChunk.encoding || kind == FloatHistogramChunk.encoding else {
            throw bad("chunk encoding \(kind) at \(offset) is neither XOR (1), histogram (2) nor float histogram (3)")
        }
        return BlockChunk(encoding: kind, bytes: UnsafeRawBufferPointer(rebasing: b[data]).bindMemory(to: UInt8.self))
    }

    private func undecodable(_ ref: UInt64) -> BlockError {
        BlockError(block: ulid, section: Self.chunkSection(ref), problem: "undecodable chunk at \(ref & 0xffff_ffff)")
    }

    /// Decodes the float chunk at `ref` in time order while `body` returns true; a histogram chunk
    /// holds no floats.
    func forEachSample(inChunk ref: UInt64, _ body: (_ timestamp: Int64, _ valueBits: UInt64) -> Bool) throws(BlockError) {
        try decode(XORIterator.self, ref, body)
    }

    /// Decodes the histogram or float-histogram chunk at `ref` in time order while `body` returns
    /// true; a float chunk holds no histograms.
    func forEachHistogram(inChunk ref: UInt64, _ body: (_ timestamp: Int64, _ histogram: HistogramValue) -> Bool) throws(BlockError) {
        let chunk = try chunk(ref)
        guard chunk.encoding != XORChunk.encoding else { return }
        guard HistogramValue.forEach(inChunk: chunk.bytes, encoding: chunk.encoding, body) else { throw undecodable(ref) }
    }

    /// Runs `body` over the chunk at `ref` if it has `Iterator`'s encoding.
    private func decode<Iterator: ChunkIterator>(_: Iterator.Type, _ ref: UInt64, _ body: (Iterator.Element) -> Bool) throws(BlockError) {
        let chunk = try chunk(ref)
        guard chunk.encoding == Iterator.encoding else { return }
        var it = Iterator(chunk.bytes)
        while let element = it.next() {
            if !body(element) { return }
        }
        if it.failed { throw undecodable(ref) }
    }

    /// Each sample's time in the chunk at `ref`, floats or histograms.
    func forEachTimestamp(inChunk ref: UInt64, _ body: (_ timestamp: Int64) -> Void) throws(BlockError) {
        try forEachSample(inChunk: ref) { t, _ in
            body(t)
            return true
        }
        try forEachHistogram(inChunk: ref) { t, _ in
            body(t)
            return true
        }
    }

    /// How many samples in this block's chunks `tombstones` delete: what `meta.tally.deletedSamples` counts.
    func samplesDeleted(by tombstones: Tombstones) throws(BlockError) -> UInt64 {
        var deleted: UInt64 = 0
        for (ref, intervals) in tombstones.intervals {
            for chunk in try series(ref).chunks {
                try forEachTimestamp(inChunk: chunk.ref) { t in
                    if intervals.contains(where: { $0.covers(t) }) { deleted += 1 }
                }
            }
        }
        return deleted
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
                if Labels.compareBytes(values[mid].value, value) < 0 { low = mid + 1 } else { high = mid }
            }
            guard low < values.count, Labels.compareBytes(values[low].value, value) == 0 else { return nil }
            let refs = Set(postings(values[low].offset))
            candidates = candidates.map { $0.intersection(refs) } ?? refs
            if candidates!.isEmpty { return nil }
        }
        for ref in candidates ?? [] {
            let (found, chunks) = try series(ref)
            guard Labels.pairsEqual(found, labels) else { continue }
            for chunk in chunks where chunk.minTime <= t && t <= chunk.maxTime {
                var found: UInt64?
                try forEachSample(inChunk: chunk.ref) { ts, v in
                    if ts == t { found = v }
                    return ts < t
                }
                if let found { return tombstones.deletes(ref, t) ? nil : found }
            }
        }
        return nil
    }

    func postings(_ offset: Int) -> [UInt32] { Self.postings(index.bytes, at: offset) }

    /// The refs of the postings list at `offset`; its count was checked against its length on open.
    private static func postings(_ b: UnsafeRawBufferPointer, at offset: Int) -> [UInt32] {
        var c = ByteCursor(b, from: offset)
        guard c.u32() != nil, let n = c.u32() else { return [] }
        return (0..<n).compactMap { _ in c.u32() }
    }

    /// Series refs that may match: the intersection over matchers that need a label value, each as
    /// the union of its matching values' postings. Those matchers hold exactly for every ref given;
    /// callers check the others, which also match a series without the label, on the real labels.
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

    /// The matchers `candidates` leaves to check on each series: those that also match a series
    /// without the label. The others it applied exactly, through the postings of the values they accept.
    private static func unindexedPredicates(_ matchers: [LabelMatcher]) -> [(String, (String) -> Bool)] {
        matchers.compactMap { matcher in
            let predicate = matcher.predicate()
            return predicate("") ? (matcher.name, predicate) : nil
        }
    }

    /// Series refs whose labels satisfy every matcher, with their labels and chunks. A series entry
    /// that cannot be read goes to `skipUnreadable` when given, else fails the walk.
    func forEachMatching(_ matchers: [LabelMatcher], skipUnreadable: ((BlockError) -> Void)?,
                                 _ body: (UInt32, [(String, String)], [ChunkMeta]) throws(BlockError) -> Void) throws(BlockError) {
        let predicates = Self.unindexedPredicates(matchers)
        for ref in candidates(matchers) {
            let labels: [(String, String)], chunks: [ChunkMeta]
            do throws(BlockError) {
                (labels, chunks) = try series(ref)
            } catch {
                guard let skipUnreadable else { throw error }
                skipUnreadable(error)
                continue
            }
            if predicates.allSatisfy({ name, p in p(labels.first { Labels.compareBytes($0.0, name) == 0 }?.1 ?? "") }) { try body(ref, labels, chunks) }
        }
    }

    /// The series `forEachMatching` gives, as their labels' symbol ids (name, value, ...), with the
    /// entry's reader left at their chunk metas: index reads only, no string made.
    private func forEachMatchingEntry(_ matchers: [LabelMatcher],
                                      _ body: (_ ref: UInt32, _ ids: [UInt32], _ reader: inout SeriesEntryReader) throws(BlockError) -> Void) throws(BlockError) {
        let predicates = Self.unindexedPredicates(matchers)
        var ids: [UInt32] = []
        for ref in candidates(matchers) {
            var reader = try entry(ref)
            guard reader.labelIDs(into: &ids) else { throw malformed(ref) }
            let matches = predicates.allSatisfy { name, predicate in
                let at = stride(from: 0, to: ids.count, by: 2).first { Labels.compareBytes(symbols[Int(ids[$0])], name) == 0 }
                return predicate(at.map { symbols[Int(ids[$0 + 1])] } ?? "")
            }
            if matches { try body(ref, ids, &reader) }
        }
    }

    /// `forEachMatching` with the labels as symbol ids (name, value, ...): a reader that meets the
    /// same series in many blocks turns each set into strings once, not once a block.
    func forEachMatchingSymbolIds(_ matchers: [LabelMatcher],
                                  _ body: (_ ref: UInt32, _ ids: [UInt32], _ chunks: [ChunkMeta]) throws(BlockError) -> Void) throws(BlockError) {
        var chunks: [ChunkMeta] = []
        try forEachMatchingEntry(matchers) { ref, ids, reader throws(BlockError) in
            chunks.removeAll(keepingCapacity: true)
            guard reader.chunks({ chunks.append($0) }) else { throw malformed(ref) }
            try body(ref, ids, chunks)
        }
    }

    /// The series `forEachMatching` gives that have a chunk in [minTime, maxTime] which the
    /// tombstones do not wholly delete, as their labels' symbol ids (name, value, ...): index reads
    /// only, no chunk, and no allocation per series.
    func forEachMatchingInRange(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64,
                                _ body: (_ ids: [UInt32]) throws(BlockError) -> Void) throws(BlockError) {
        // Every chunk of the block lies in [meta.minTime, meta.maxTime): when the range covers that
        // and nothing is deleted, any chunk will do, and its metas need not be walked.
        let (lastTime, overflow) = meta.maxTime.subtractingReportingOverflow(1)
        let coversBlock = minTime <= meta.minTime && !overflow && lastTime <= maxTime && tombstones.intervals.isEmpty
        try forEachMatchingEntry(matchers) { ref, ids, reader throws(BlockError) in
            if coversBlock {
                guard let chunkCount = reader.chunkCount() else { throw malformed(ref) }
                if chunkCount > 0 { try body(ids) }
                return
            }
            let deleted = tombstones.intervals[ref] ?? []
            var inRange = false
            guard reader.chunks({ meta in
                if meta.maxTime >= minTime && meta.minTime <= maxTime && !deleted.contains(where: { $0.minTime <= meta.minTime && meta.maxTime <= $0.maxTime }) {
                    inRange = true
                }
            }) else { throw malformed(ref) }
            if inRange { try body(ids) }
        }
    }

    /// Samples of series `ref` in [minTime, maxTime] from `chunks`, without those its tombstones
    /// delete. A chunk that cannot be read goes to `skipUnreadable` when given, with none of its
    /// samples kept; else it fails the read.
    func samples(_ ref: UInt32, _ labels: [(String, String)], _ chunks: [ChunkMeta], minTime: Int64, maxTime: Int64,
                 skipUnreadable: ((BlockError) -> Void)?) throws(BlockError) -> [Sample] {
        let deleted = tombstones.intervals[ref] ?? []
        return try read(labels, chunks, minTime: minTime, maxTime: maxTime, "samples", skipUnreadable) { (meta, out: inout [Sample]) throws(BlockError) in
            try forEachSample(inChunk: meta.ref) { t, v in
                if t >= minTime && t <= maxTime && !deleted.contains(where: { $0.covers(t) }) { out.append(Sample(timestamp: t, valueBits: v)) }
                return t <= maxTime
            }
        }
    }

    /// Histograms of series `ref` in [minTime, maxTime] from `chunks`, as `samples`.
    func histograms(_ ref: UInt32, _ labels: [(String, String)], _ chunks: [ChunkMeta], minTime: Int64, maxTime: Int64,
                    skipUnreadable: ((BlockError) -> Void)?) throws(BlockError) -> [HistogramSample] {
        let deleted = tombstones.intervals[ref] ?? []
        return try read(labels, chunks, minTime: minTime, maxTime: maxTime, "histograms", skipUnreadable) { (meta, out: inout [HistogramSample]) throws(BlockError) in
            try forEachHistogram(inChunk: meta.ref) { t, h in
                if t >= minTime && t <= maxTime && !deleted.contains(where: { $0.covers(t) }) { out.append(HistogramSample(timestamp: t, histogram: h)) }
                return t <= maxTime
            }
        }
    }

    /// What `decode` reads from each chunk overlapping [minTime, maxTime]; a chunk that fails goes
    /// to `skipUnreadable`, naming the series and the chunk's range, with none of what it gave kept.
    private func read<T>(_ labels: [(String, String)], _ chunks: [ChunkMeta], minTime: Int64, maxTime: Int64, _ what: String,
                         _ skipUnreadable: ((BlockError) -> Void)?,
                         _ decode: (ChunkMeta, inout [T]) throws(BlockError) -> Void) throws(BlockError) -> [T] {
        var out: [T] = []
        for meta in chunks where meta.maxTime >= minTime && meta.minTime <= maxTime {
            let kept = out.count
            do throws(BlockError) {
                try decode(meta, &out)
            } catch {
                guard let skipUnreadable else { throw error }
                out.removeSubrange(kept...)
                let series = Labels(labels.map { Label($0.0, $0.1) })
                skipUnreadable(BlockError(block: error.block, section: error.section,
                                          problem: error.problem + "; left out the \(what) of \(series) in [\(meta.minTime), \(meta.maxTime)]"))
            }
        }
        return out
    }

    /// Series matching every matcher with their samples in [minTime, maxTime]. With
    /// `skipUnreadable`, an unreadable series entry or chunk is handed to it and left out, and the
    /// rest is returned, rather than the whole read failing.
    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64,
                       skipUnreadable: ((BlockError) -> Void)? = nil) throws(BlockError) -> [SeriesSamples] {
        try selectSeries(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable) { (ref, labels, chunks) throws(BlockError) in
            try samples(ref, labels, chunks, minTime: minTime, maxTime: maxTime, skipUnreadable: skipUnreadable)
        }.map { SeriesSamples(labels: $0.labels, samples: $0.values) }
    }

    /// Series matching every matcher with their histograms in [minTime, maxTime], as `select`.
    public func selectHistograms(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64,
                                 skipUnreadable: ((BlockError) -> Void)? = nil) throws(BlockError) -> [SeriesHistograms] {
        try selectSeries(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable) { (ref, labels, chunks) throws(BlockError) in
            try histograms(ref, labels, chunks, minTime: minTime, maxTime: maxTime, skipUnreadable: skipUnreadable)
        }.map { SeriesHistograms(labels: $0.labels, histograms: $0.values) }
    }

    /// The series matching every matcher for which `read` finds anything, in index order.
    private func selectSeries<T>(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64, _ skipUnreadable: ((BlockError) -> Void)?,
                                 _ read: (UInt32, [(String, String)], [ChunkMeta]) throws(BlockError) -> [T]) throws(BlockError) -> [(labels: Labels, values: [T])] {
        guard meta.maxTime > minTime, meta.minTime <= maxTime else { return [] }
        var out: [(labels: Labels, values: [T])] = []
        try forEachMatching(matchers, skipUnreadable: skipUnreadable) { (ref, labels, chunks) throws(BlockError) in
            let values = try read(ref, labels, chunks)
            if !values.isEmpty { out.append((Labels(labels.map { Label($0.0, $0.1) }), values)) }
        }
        return out
    }

    /// Per matching series ref, how many of its readable samples and histograms lie inside `interval`: what a
    /// deletion would add tombstones for.
    func deletable(_ matchers: [LabelMatcher], in interval: DeletedInterval) throws(BlockError) -> [(ref: UInt32, samples: Int)] {
        guard meta.maxTime > interval.minTime, meta.minTime <= interval.maxTime else { return [] }
        var out: [(ref: UInt32, samples: Int)] = []
        try forEachMatching(matchers, skipUnreadable: nil) { (ref, labels, chunks) throws(BlockError) in
            let n = try samples(ref, labels, chunks, minTime: interval.minTime, maxTime: interval.maxTime, skipUnreadable: nil).count
                + histograms(ref, labels, chunks, minTime: interval.minTime, maxTime: interval.maxTime, skipUnreadable: nil).count
            if n > 0 { out.append((ref, n)) }
        }
        return out
    }
}

/// One series entry of an index, read in order: its labels' symbol ids, then its chunk metas.
struct SeriesEntryReader {
    var cursor: ByteCursor
    let symbolCount: Int

    /// The (name, value) symbol ids, flattened; false when malformed.
    mutating func labelIDs(into ids: inout [UInt32]) -> Bool {
        ids.removeAll(keepingCapacity: true)
        guard let count = cursor.uvarint() else { return false }
        for _ in 0..<count {
            guard let n = cursor.uvarint(), let v = cursor.uvarint(), n < symbolCount, v < symbolCount else { return false }
            ids.append(UInt32(n))
            ids.append(UInt32(v))
        }
        return true
    }

    /// The number of chunk metas, after the labels; nil when malformed.
    mutating func chunkCount() -> UInt64? { cursor.uvarint() }

    /// Each chunk meta, after the labels; false when malformed.
    mutating func chunks(_ body: (ChunkMeta) -> Void) -> Bool {
        guard let chunkCount = chunkCount() else { return false }
        var previousMax: Int64 = 0
        var previousRef: UInt64 = 0
        for k in 0..<chunkCount {
            // The first meta holds its time and ref; the others, deltas from the meta before.
            guard let minTime = k == 0 ? cursor.varint() : cursor.uvarint().map({ previousMax &+ Int64(bitPattern: $0) }),
                  let span = cursor.uvarint(),
                  let chunkRef = k == 0 ? cursor.uvarint() : cursor.varint().map({ previousRef &+ UInt64(bitPattern: $0) }) else { return false }
            let maxTime = minTime &+ Int64(bitPattern: span)
            body(ChunkMeta(minTime: minTime, maxTime: maxTime, ref: chunkRef))
            previousMax = maxTime
            previousRef = chunkRef
        }
        return true
    }
}
