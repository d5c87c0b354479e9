#if canImport(Glibc)
import Glibc
#endif

/// One series as it goes into a block: labels sorted by name, chunks in time order, not overlapping.
public struct BlockSeries: Sendable {
    public var labels: [(String, String)]
    public var chunks: [EncodedChunk]

    public init(labels: [(String, String)], chunks: [EncodedChunk]) {
        self.labels = labels
        self.chunks = chunks
    }
}

/// An XOR chunk with its inclusive time range.
public struct EncodedChunk: Sendable {
    public var minTime: Int64
    public var maxTime: Int64
    public var bytes: [UInt8]

    public var sampleCount: Int { bytes.count >= 2 ? Int(bytes[0]) << 8 | Int(bytes[1]) : 0 }
}

/// Writes Prometheus TSDB blocks (../shared/notes/prometheus-formats.md §3-5, docs/formats.md):
/// `index` format 2 without the optional label indices, `chunks/%06d` segments, `tombstones`,
/// `meta.json`. Crash safety: everything goes into `<ulid>.tmp`, each file and directory is
/// fsynced, then the directory is renamed into place and its parent fsynced.
public enum BlockWriter {
    static let indexMagic: [UInt8] = [0xBA, 0xAA, 0xD7, 0x00]
    static let chunksMagic: [UInt8] = [0x85, 0xBD, 0x40, 0xDD]
    static let tombstonesMagic: [UInt8] = [0x01, 0x30, 0xBA, 0x30]
    static let maxChunkSegmentSize = 512 * 1024 * 1024

    /// Writes a block of `series` (any order; sorted here) covering [minTime, maxTime) into
    /// `directory`, returning its meta. Series without chunks are left out.
    public static func write(series input: [BlockSeries], minTime: Int64, maxTime: Int64, into directory: String,
                             tenant: String, compaction: BlockMeta.Compaction? = nil,
                             ulid: ULID? = nil) throws -> BlockMeta {
        let ulid = ulid ?? ULID(milliseconds: UInt64(max(0, timeNowMilliseconds())))
        let series = input.filter { !$0.chunks.isEmpty }.sorted { Labels.pairsPrecede($0.labels, $1.labels) }
        let name = ulid.description
        let temporary = directory + "/" + name + ".tmp"
        let final = directory + "/" + name
        try FileSystem.removeTree(temporary)
        try FileSystem.makeDirectory(temporary)
        try FileSystem.makeDirectory(temporary + "/chunks")

        let refs = try writeChunks(series, into: temporary + "/chunks")
        try FileSystem.syncDirectory(temporary + "/chunks")
        Failpoint.hit("block-chunks-written")
        try writeIndex(series, chunkRefs: refs, path: temporary + "/index")
        try FileSystem.writeFile(temporary + "/tombstones", tombstonesMagic + [1, 0, 0, 0, 0])

        var compaction = compaction ?? BlockMeta.Compaction(level: 1, sources: [])
        if compaction.sources.isEmpty { compaction.sources = [name] }
        var stats = BlockMeta.Stats(numSamples: 0, numSeries: UInt64(series.count), numChunks: 0)
        for s in series {
            stats.numChunks += UInt64(s.chunks.count)
            for c in s.chunks { stats.numSamples += UInt64(c.sampleCount) }
        }
        let meta = BlockMeta(
            ulid: name, minTime: minTime, maxTime: maxTime, stats: stats,
            compaction: compaction,
            version: 1,
            thanos: BlockMeta.Thanos(labels: ["tenant_id": tenant], downsample: .init(resolution: 0), source: "receive", version: 1))
        try FileSystem.writeFile(temporary + "/meta.json", try meta.encoded())
        try FileSystem.syncDirectory(temporary)
        Failpoint.hit("block-before-rename")
        try FileSystem.rename(temporary, final)
        try FileSystem.syncDirectory(directory)
        return meta
    }

    /// Writes every chunk; returns each series' chunk refs (segment index << 32 | offset).
    private static func writeChunks(_ series: [BlockSeries], into directory: String) throws -> [[UInt64]] {
        var segment = 0
        var writer = try openChunkSegment(directory, segment)
        var refs: [[UInt64]] = []
        refs.reserveCapacity(series.count)
        for s in series {
            var seriesRefs: [UInt64] = []
            for chunk in s.chunks {
                var head: [UInt8] = []
                head.appendUvarint(UInt64(chunk.bytes.count))
                let size = head.count + 1 + chunk.bytes.count + 4
                if writer.position + size > maxChunkSegmentSize && writer.position > chunksMagic.count + 4 {
                    try writer.finish()
                    segment += 1
                    writer = try openChunkSegment(directory, segment)
                }
                seriesRefs.append(UInt64(segment) << 32 | UInt64(writer.position))
                var crc = CRC32C()
                crc.update([XORChunk.encoding])
                crc.update(chunk.bytes)
                try writer.write(head)
                try writer.write([XORChunk.encoding])
                try writer.write(chunk.bytes)
                try writer.writeBigEndian(crc.value)
            }
            refs.append(seriesRefs)
        }
        try writer.finish()
        return refs
    }

    /// The file name of chunk segment `index` (counted from 0): `%06d` of index + 1.
    static func chunkSegmentName(_ index: Int) -> String {
        let digits = String(index + 1)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    private static func openChunkSegment(_ directory: String, _ index: Int) throws(StorageIOError) -> BufferedFileWriter {
        let writer = try BufferedFileWriter(path: directory + "/" + chunkSegmentName(index))
        try writer.write(chunksMagic + [1, 0, 0, 0])
        return writer
    }

    /// Index format 2: symbols, series (16-byte aligned), postings (all-postings first), postings
    /// offset table, TOC. Label indices and the label offset table are omitted, as Prometheus 3.7+ does.
    private static func writeIndex(_ series: [BlockSeries], chunkRefs: [[UInt64]], path: String) throws {
        let w = try BufferedFileWriter(path: path)
        try w.write(indexMagic + [2])

        var symbolSet: Set<String> = [""]
        for s in series { for (n, v) in s.labels { symbolSet.insert(n); symbolSet.insert(v) } }
        let symbols = symbolSet.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var symbolIndex: [String: UInt32] = [:]
        for (i, s) in symbols.enumerated() { symbolIndex[s] = UInt32(i) }

        var toc = [UInt64](repeating: 0, count: 6)
        toc[0] = UInt64(w.position)
        var section: [UInt8] = []
        section.appendBigEndian(UInt32(symbols.count))
        for s in symbols {
            section.appendUvarint(UInt64(s.utf8.count))
            section.append(contentsOf: s.utf8)
        }
        try writeSection(section, to: w)

        toc[1] = UInt64(w.position)
        var postings: [String: [String: [UInt32]]] = [:]
        var all: [UInt32] = []
        all.reserveCapacity(series.count)
        var body: [UInt8] = []
        for (i, s) in series.enumerated() {
            try w.pad(to: 16)
            let ref = UInt32(w.position / 16)
            all.append(ref)
            body.removeAll(keepingCapacity: true)
            body.appendUvarint(UInt64(s.labels.count))
            for (n, v) in s.labels {
                body.appendUvarint(UInt64(symbolIndex[n]!))
                body.appendUvarint(UInt64(symbolIndex[v]!))
                postings[n, default: [:]][v, default: []].append(ref)
            }
            body.appendUvarint(UInt64(s.chunks.count))
            var previousMax: Int64 = 0
            var previousRef: UInt64 = 0
            for (k, chunk) in s.chunks.enumerated() {
                let ref = chunkRefs[i][k]
                if k == 0 {
                    body.appendVarint(chunk.minTime)
                    body.appendUvarint(UInt64(bitPattern: chunk.maxTime &- chunk.minTime))
                    body.appendUvarint(ref)
                } else {
                    body.appendUvarint(UInt64(bitPattern: chunk.minTime &- previousMax))
                    body.appendUvarint(UInt64(bitPattern: chunk.maxTime &- chunk.minTime))
                    body.appendVarint(Int64(bitPattern: ref &- previousRef))
                }
                previousMax = chunk.maxTime
                previousRef = ref
            }
            var length: [UInt8] = []
            length.appendUvarint(UInt64(body.count))
            try w.write(length)
            try w.write(body)
            try w.writeBigEndian(CRC32C.checksum(body))
        }

        toc[2] = UInt64(w.position)
        try w.pad(to: 4)
        toc[4] = UInt64(w.position)
        var offsets: [(String, String, UInt64)] = []
        func writePostings(_ name: String, _ value: String, _ refs: [UInt32]) throws(StorageIOError) {
            try w.pad(to: 4)
            offsets.append((name, value, UInt64(w.position)))
            var list: [UInt8] = []
            list.reserveCapacity(4 + 4 * refs.count)
            list.appendBigEndian(UInt32(refs.count))
            for r in refs { list.appendBigEndian(r) }
            try writeSection(list, to: w)
        }
        try writePostings("", "", all)
        for name in postings.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let values = postings[name]!
            for value in values.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                try writePostings(name, value, values[value]!)
            }
        }

        toc[5] = UInt64(w.position)
        toc[3] = toc[5]
        section.removeAll(keepingCapacity: true)
        section.appendBigEndian(UInt32(offsets.count))
        for (name, value, offset) in offsets {
            section.append(2)
            section.appendUvarint(UInt64(name.utf8.count))
            section.append(contentsOf: name.utf8)
            section.appendUvarint(UInt64(value.utf8.count))
            section.append(contentsOf: value.utf8)
            section.appendUvarint(offset)
        }
        try writeSection(section, to: w)

        var tocBytes: [UInt8] = []
        for v in toc { tocBytes.appendBigEndian(v) }
        try w.write(tocBytes)
        try w.writeBigEndian(CRC32C.checksum(tocBytes))
        try w.finish()
    }

    /// `len:u32`, the bytes, then CRC32C of the bytes.
    private static func writeSection(_ bytes: [UInt8], to w: BufferedFileWriter) throws(StorageIOError) {
        try w.writeBigEndian(UInt32(bytes.count))
        try w.write(bytes)
        try w.writeBigEndian(CRC32C.checksum(bytes))
    }
}

func timeNowMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
