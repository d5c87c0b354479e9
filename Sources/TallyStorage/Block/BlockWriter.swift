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

/// An encoded chunk with its inclusive time range: XOR (floats) unless `encoding` says histogram.
public struct EncodedChunk: Sendable {
    public var minTime: Int64
    public var maxTime: Int64
    public var bytes: [UInt8]
    /// `XORChunk.encoding`, `HistogramChunk.encoding` or `FloatHistogramChunk.encoding`: the byte
    /// written before the chunk's data.
    public var encoding: UInt8

    public init(minTime: Int64, maxTime: Int64, bytes: [UInt8], encoding: UInt8 = XORChunk.encoding) {
        self.minTime = minTime
        self.maxTime = maxTime
        self.bytes = bytes
        self.encoding = encoding
    }

    /// Both encodings start with the count as 2 bytes.
    public var sampleCount: Int { XORChunk.sampleCount(bytes) }
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
        let series = input.filter { !$0.chunks.isEmpty }
        // Each string is hashed once: numbered as first seen, then renumbered by byte order, which
        // makes the numbers the index's symbol ids and orders series by integers, as their labels'
        // bytes would (a cut sorted thousands of series by comparing strings).
        var seen: [ByteString: UInt32] = [ByteString(""): 0]
        var strings = [ByteString("")]
        var ids: [UInt32] = []
        var starts = [0]
        starts.reserveCapacity(series.count + 1)
        func number(_ string: String) -> UInt32 {
            let key = ByteString(string)
            if let id = seen[key] { return id }
            let id = UInt32(strings.count)
            seen[key] = id
            strings.append(key)
            return id
        }
        for s in series {
            for (n, v) in s.labels {
                ids.append(number(n))
                ids.append(number(v))
            }
            starts.append(ids.count)
        }
        let byteOrder = strings.indices.sorted { strings[$0] < strings[$1] }
        var symbolId = [UInt32](repeating: 0, count: strings.count)
        for (id, first) in byteOrder.enumerated() { symbolId[first] = UInt32(id) }
        for k in ids.indices { ids[k] = symbolId[Int(ids[k])] }
        func labelIds(_ i: Int) -> ArraySlice<UInt32> { ids[starts[i]..<starts[i + 1]] }
        let labelOrder = series.indices.sorted { labelIds($0).lexicographicallyPrecedes(labelIds($1)) }
        let stream = try BlockStream(sortedSymbols: byteOrder.map { strings[$0] }, minTime: minTime, maxTime: maxTime, into: directory,
                                     tenant: tenant, compaction: compaction, ulid: ulid)
        do {
            for i in labelOrder { try stream.add(labels: series[i].labels, symbolIds: labelIds(i), chunks: series[i].chunks) }
            return try stream.finish()
        } catch {
            stream.abandon()
            throw error
        }
    }

    /// The file name of chunk segment `index` (counted from 0): `%06d` of index + 1.
    static func chunkSegmentName(_ index: Int) -> String {
        let digits = String(index + 1)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// `len:u32`, the bytes, then CRC32C of the bytes.
    static func writeSection(_ bytes: [UInt8], to w: BufferedFileWriter) throws(StorageIOError) {
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
