/// Writes one block a series at a time, in label order, so that memory follows series, not samples:
/// each series' chunks go to the chunk segments and its entry to the index as it is added; what is
/// kept until the end is the postings (a series ref per label) and the counts.
///
/// The symbols come first in the index, so the caller names every string up front: the labels of the
/// series to come (a compaction takes its parents' symbol tables; a symbol no series uses is allowed).
/// Everything goes into `<ulid>.tmp`; `finish` syncs each file and the directory, then renames it
/// into place and syncs the parent (docs/formats.md §8).
final class BlockStream {
    private let directory: String
    private let name: String
    private let temporary: String
    private let tenant: String
    private let minTime: Int64
    private let maxTime: Int64
    private var compaction: BlockMeta.Compaction
    private let symbolIndex: [ByteString: UInt32]
    private let index: BufferedFileWriter
    private var chunks: BufferedFileWriter
    private var segment = 0
    private var toc = [UInt64](repeating: 0, count: 6)
    /// Per (name, value) symbol pair, `name << 32 | value`, the refs of the series holding it.
    private var postings: [UInt64: [UInt32]] = [:]
    private var all: [UInt32] = []
    private var stats = BlockMeta.Stats(numSamples: 0, numSeries: 0, numChunks: 0)
    private var entry: [UInt8] = []
    private var previousLabels: [(String, String)]?
    /// The previous series' label symbol ids (name, value, ...): ids follow the symbols' byte
    /// order, so the ids' order is the labels' order.
    private var previousIds: [UInt32] = []

    var seriesCount: Int { all.count }

    convenience init(symbols: Set<ByteString>, minTime: Int64, maxTime: Int64, into directory: String, tenant: String,
                     compaction: BlockMeta.Compaction?, ulid: ULID?) throws {
        try self.init(sortedSymbols: symbols.union([ByteString("")]).sorted(), minTime: minTime, maxTime: maxTime, into: directory,
                      tenant: tenant, compaction: compaction, ulid: ulid)
    }

    /// A stream whose symbols are `sorted`: distinct, in byte order, the empty string first. A
    /// symbol's id in the index is its place there.
    init(sortedSymbols sorted: [ByteString], minTime: Int64, maxTime: Int64, into directory: String, tenant: String,
         compaction: BlockMeta.Compaction?, ulid: ULID?) throws {
        precondition(sorted.first == ByteString(""), "the symbols start with the empty string")
        let name = (ulid ?? ULID(milliseconds: UInt64(max(0, timeNowMilliseconds())))).description
        self.directory = directory
        self.name = name
        temporary = directory + "/" + name + ".tmp"
        self.tenant = tenant
        self.minTime = minTime
        self.maxTime = maxTime
        self.compaction = compaction ?? BlockMeta.Compaction(level: 1, sources: [])
        if self.compaction.sources.isEmpty { self.compaction.sources = [name] }
        var symbolIndex: [ByteString: UInt32] = [:]
        symbolIndex.reserveCapacity(sorted.count)
        for (i, symbol) in sorted.enumerated() { symbolIndex[symbol] = UInt32(i) }
        self.symbolIndex = symbolIndex

        try FileSystem.removeTree(temporary)
        try FileSystem.makeDirectory(temporary)
        try FileSystem.makeDirectory(temporary + "/chunks")
        chunks = try Self.openChunkSegment(temporary + "/chunks", 0)
        index = try BufferedFileWriter(path: temporary + "/index")
        try index.write(BlockWriter.indexMagic + [2])
        toc[0] = UInt64(index.position)
        var section: [UInt8] = []
        section.appendBigEndian(UInt32(sorted.count))
        for symbol in sorted {
            section.appendUvarint(UInt64(symbol.string.utf8.count))
            section.append(contentsOf: symbol.string.utf8)
        }
        try BlockWriter.writeSection(section, to: index)
        toc[1] = UInt64(index.position)
        Failpoint.hit("block-symbols-written")
    }

    /// Adds a series after every series added before it in label order, with its chunks in time
    /// order; a series without chunks is left out.
    func add(labels: [(String, String)], chunks seriesChunks: [EncodedChunk]) throws {
        var ids: [UInt32] = []
        ids.reserveCapacity(2 * labels.count)
        for (n, v) in labels {
            guard let name = symbolIndex[ByteString(n)], let value = symbolIndex[ByteString(v)] else {
                throw BlockError(block: name, section: "index symbols", problem: "label \(n)=\(v) is not among the symbols")
            }
            ids.append(name)
            ids.append(value)
        }
        try add(labels: labels, symbolIds: ids[...], chunks: seriesChunks)
    }

    /// `add(labels:chunks:)` for a caller that knows each label's symbol ids (name, value, ... in
    /// label order; see `init(sortedSymbols:)`).
    func add(labels: [(String, String)], symbolIds ids: ArraySlice<UInt32>, chunks seriesChunks: [EncodedChunk]) throws {
        guard !seriesChunks.isEmpty else { return }
        precondition(ids.count == 2 * labels.count, "a name and a value id a label")
        if let previousLabels, !previousIds.lexicographicallyPrecedes(ids) {
            throw BlockError(block: name, section: "index series", problem: "series out of label order: \(labels) after \(previousLabels)")
        }
        previousLabels = labels
        previousIds.removeAll(keepingCapacity: true)
        previousIds.append(contentsOf: ids)
        var refs: [UInt64] = []
        refs.reserveCapacity(seriesChunks.count)
        for chunk in seriesChunks { refs.append(try write(chunk)) }

        try index.pad(to: 16)
        let ref = UInt32(index.position / 16)
        all.append(ref)
        entry.removeAll(keepingCapacity: true)
        entry.appendUvarint(UInt64(labels.count))
        for k in stride(from: ids.startIndex, to: ids.endIndex, by: 2) {
            let (name, value) = (ids[k], ids[k + 1])
            entry.appendUvarint(UInt64(name))
            entry.appendUvarint(UInt64(value))
            postings[UInt64(name) << 32 | UInt64(value), default: []].append(ref)
        }
        entry.appendUvarint(UInt64(seriesChunks.count))
        var previousMax: Int64 = 0
        var previousRef: UInt64 = 0
        for (k, chunk) in seriesChunks.enumerated() {
            if k == 0 {
                entry.appendVarint(chunk.minTime)
                entry.appendUvarint(UInt64(bitPattern: chunk.maxTime &- chunk.minTime))
                entry.appendUvarint(refs[k])
            } else {
                entry.appendUvarint(UInt64(bitPattern: chunk.minTime &- previousMax))
                entry.appendUvarint(UInt64(bitPattern: chunk.maxTime &- chunk.minTime))
                entry.appendVarint(Int64(bitPattern: refs[k] &- previousRef))
            }
            previousMax = chunk.maxTime
            previousRef = refs[k]
            stats.numSamples += UInt64(chunk.sampleCount)
        }
        stats.numChunks += UInt64(seriesChunks.count)
        stats.numSeries += 1
        var length: [UInt8] = []
        length.appendUvarint(UInt64(entry.count))
        try index.write(length)
        try index.write(entry)
        try index.writeBigEndian(CRC32C.checksum(entry))
        if all.count == 1 { Failpoint.hit("block-first-series-written") }
    }

    /// Writes one chunk; returns its ref (segment index << 32 | offset).
    private func write(_ chunk: EncodedChunk) throws -> UInt64 {
        var head: [UInt8] = []
        head.appendUvarint(UInt64(chunk.bytes.count))
        let size = head.count + 1 + chunk.bytes.count + 4
        if chunks.position + size > BlockWriter.maxChunkSegmentSize && chunks.position > BlockWriter.chunksMagic.count + 4 {
            try chunks.finish()
            segment += 1
            chunks = try Self.openChunkSegment(temporary + "/chunks", segment)
        }
        let ref = UInt64(segment) << 32 | UInt64(chunks.position)
        var crc = CRC32C()
        crc.update([chunk.encoding])
        crc.update(chunk.bytes)
        try chunks.write(head)
        try chunks.write([chunk.encoding])
        try chunks.write(chunk.bytes)
        try chunks.writeBigEndian(crc.value)
        return ref
    }

    private static func openChunkSegment(_ directory: String, _ index: Int) throws(StorageIOError) -> BufferedFileWriter {
        let writer = try BufferedFileWriter(path: directory + "/" + BlockWriter.chunkSegmentName(index))
        try writer.write(BlockWriter.chunksMagic + [1, 0, 0, 0])
        return writer
    }

    /// Writes the postings, the postings offset table and the TOC, then tombstones and meta.json,
    /// syncs, and renames the block into place.
    func finish() throws -> BlockMeta {
        try chunks.finish()
        try FileSystem.syncDirectory(temporary + "/chunks")
        Failpoint.hit("block-chunks-written")
        try writePostings()
        Failpoint.hit("block-index-written")
        try FileSystem.writeFile(temporary + "/tombstones", BlockWriter.tombstonesMagic + [1, 0, 0, 0, 0])
        let meta = BlockMeta(
            ulid: name, minTime: minTime, maxTime: maxTime, stats: stats, compaction: compaction, version: 1,
            thanos: BlockMeta.Thanos(labels: ["tenant_id": tenant], downsample: .init(resolution: 0), source: "receive", version: 1))
        try FileSystem.writeFile(temporary + "/meta.json", try meta.encoded())
        try FileSystem.publishDirectory(temporary, as: directory + "/" + name, in: directory) { Failpoint.hit("block-before-rename") }
        return meta
    }

    /// Leaves nothing behind of a block that will not be finished (best effort: the next writable
    /// open removes any `.tmp` left).
    func abandon() {
        try? FileSystem.removeTree(temporary)
    }

    /// Index format 2 after the series: postings (all-postings first), the postings offset table,
    /// the TOC. Label indices and the label offset table are omitted, as Prometheus 3.7+ does.
    private func writePostings() throws {
        let symbols = symbolIndex.sorted { $0.value < $1.value }.map(\.key.string)
        toc[2] = UInt64(index.position)
        try index.pad(to: 4)
        toc[4] = UInt64(index.position)
        var offsets: [(name: String, value: String, offset: UInt64)] = []
        var list: [UInt8] = []
        func write(_ name: String, _ value: String, _ refs: [UInt32]) throws(StorageIOError) {
            try index.pad(to: 4)
            offsets.append((name, value, UInt64(index.position)))
            list.removeAll(keepingCapacity: true)
            list.appendBigEndian(UInt32(refs.count))
            for r in refs { list.appendBigEndian(r) }
            try BlockWriter.writeSection(list, to: index)
        }
        try write("", "", all)
        for pair in postings.keys.sorted() {
            try write(symbols[Int(pair >> 32)], symbols[Int(pair & 0xffff_ffff)], postings[pair]!)
        }

        toc[5] = UInt64(index.position)
        toc[3] = toc[5]
        var section: [UInt8] = []
        section.appendBigEndian(UInt32(offsets.count))
        for (name, value, offset) in offsets {
            section.append(2)
            section.appendUvarint(UInt64(name.utf8.count))
            section.append(contentsOf: name.utf8)
            section.appendUvarint(UInt64(value.utf8.count))
            section.append(contentsOf: value.utf8)
            section.appendUvarint(offset)
        }
        try BlockWriter.writeSection(section, to: index)
        var tocBytes: [UInt8] = []
        for v in toc { tocBytes.appendBigEndian(v) }
        try index.write(tocBytes)
        try index.writeBigEndian(CRC32C.checksum(tocBytes))
        try index.finish()
    }
}
