import Foundation
import FuzzSupport
import TallyStorage

// A block whose `index` (bit 0 of the first byte clear) or chunk segment (set) is the input, beside
// the other files of a block Tally wrote: opened with BlockReader, every series entry and chunk read
// and decoded, and a select run over it, as queries, `tally dump` and compaction read blocks. The
// input is also decoded as one XOR chunk on its own.
//
// With bit 1 set, the checksums are recomputed first (the TOC's, each section's, each series
// entry's, each chunk's) wherever the framing still parses, so mutations get past the CRC32C checks
// to the parsers behind them; with it clear, those checks meet mutated bytes.

let blockDirectory = scratchDirectory("block")
let chunkSegment = "chunks/000001"
let written = writtenBlock()
/// Every series that has a name, matched through the postings lists.
let everyNamedSeries = [try! LabelMatcher("__name__", .notEqual, "")]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked {
        ["index": [0] + written.index, "chunks": [1] + written.chunks,
         "index-rechecksummed": [2] + written.index, "chunks-rechecksummed": [3] + written.chunks]
    }
    try! FileManager.default.createDirectory(atPath: blockDirectory + "/chunks", withIntermediateDirectories: false)
    writeFile(blockDirectory + "/meta.json", written.meta)
    writeFile(blockDirectory + "/tombstones", written.tombstones)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    var payload = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    payload.withUnsafeBufferPointer { decodeChunk($0) }
    let isIndex = data[0] & 1 == 0
    if data[0] & 2 != 0 {
        if isIndex { recomputeIndexChecksums(&payload) } else { recomputeChunkChecksums(&payload) }
    }
    writeFile(blockDirectory + "/index", isIndex ? payload : written.index)
    writeFile(blockDirectory + "/" + chunkSegment, isIndex ? written.chunks : payload)
    guard let reader = try? BlockReader(directory: blockDirectory) else { return 0 }
    for ref in reader.seriesRefs {
        guard let (_, chunks) = try? reader.series(ref) else { continue }
        for chunk in chunks {
            if let stored = try? reader.chunk(chunk.ref) { decodeChunk(stored) }
        }
    }
    _ = reader.candidates(everyNamedSeries)
    _ = try? reader.select(everyNamedSeries, minTime: .min, maxTime: .max)
    return 0
}

/// Decodes a block's chunk with the iterator of its encoding (the reader refuses any other).
func decodeChunk(_ chunk: BlockChunk) {
    switch chunk.encoding {
    case HistogramChunk.encoding: decodeAll(HistogramIterator(chunk.bytes), chunk.bytes)
    case FloatHistogramChunk.encoding: decodeAll(FloatHistogramIterator(chunk.bytes), chunk.bytes)
    default: decodeChunk(chunk.bytes)
    }
}

/// Decodes every sample of `bytes` as an XOR chunk.
func decodeChunk(_ bytes: UnsafeBufferPointer<UInt8>) { decodeAll(XORIterator(bytes), bytes) }

/// Decodes every sample; the iterator must stop at the count in the chunk's header.
func decodeAll<Iterator: IteratorProtocol>(_ iterator: Iterator, _ bytes: UnsafeBufferPointer<UInt8>) {
    var iterator = iterator
    let declared = bytes.count >= 2 ? Int(bytes[0]) << 8 | Int(bytes[1]) : 0
    var decoded = 0
    while iterator.next() != nil { decoded += 1 }
    precondition(decoded <= declared, "decoded \(decoded) samples from a chunk declaring \(declared)")
}

/// Reads the index's framing as BlockWriter writes it (docs/formats.md): a TOC of six u64 offsets
/// and its CRC at the end; sections of `len:u32`, body, CRC (symbols; postings lists, 4-aligned,
/// from TOC[4] to TOC[5]; the postings offset table); and, from TOC[1] to TOC[2], 16-aligned series
/// entries of `len:uvarint`, body, CRC. Stores the correct CRC of each one that fits.
func recomputeIndexChecksums(_ index: inout [UInt8]) {
    let tocSize = 52
    guard index.count >= tocSize else { return }
    let tocStart = index.count - tocSize
    let toc = (0..<6).map { k in Int(clamping: bigEndian(index, at: tocStart + 8 * k, width: 8)) }
    func section(at start: Int) -> Int? {
        guard start <= tocStart - 4 else { return nil }
        let end = start + 4 + Int(bigEndian(index, at: start, width: 4))
        guard end + 4 <= tocStart else { return nil }
        storeChecksum(&index, of: start + 4..<end)
        return end + 4
    }
    _ = section(at: toc[0])
    _ = section(at: toc[5])
    var position = toc[4]
    while position < min(toc[5], tocStart), let next = section(at: position) { position = (next + 3) / 4 * 4 }
    position = toc[1]
    while position < min(toc[2], tocStart), let (length, body) = uvarint(index, at: position, before: tocStart),
          body + length + 4 <= tocStart {
        storeChecksum(&index, of: body..<body + length)
        position = (body + length + 4 + 15) / 16 * 16
    }
    storeChecksum(&index, of: tocStart..<index.count - 4)
}

/// A chunk segment: 8 header bytes, then chunks of `len:uvarint`, encoding byte, data, and the CRC
/// of encoding and data.
func recomputeChunkChecksums(_ segment: inout [UInt8]) {
    var position = 8
    while let (length, encoding) = uvarint(segment, at: position, before: segment.count), encoding + 1 + length + 4 <= segment.count {
        storeChecksum(&segment, of: encoding..<encoding + 1 + length)
        position = encoding + 1 + length + 4
    }
}

func bigEndian(_ bytes: [UInt8], at position: Int, width: Int) -> UInt64 {
    bytes[position..<position + width].reduce(0) { $0 << 8 | UInt64($1) }
}

/// The uvarint at `position` (small enough to be a length here) and where the bytes after it start.
func uvarint(_ bytes: [UInt8], at position: Int, before end: Int) -> (Int, Int)? {
    var value = 0
    for (k, i) in (position..<max(position, min(end, position + 4))).enumerated() {
        value |= Int(bytes[i] & 0x7f) << (7 * k)
        if bytes[i] < 0x80 { return (value, i + 1) }
    }
    return nil
}

/// Writes the CRC32C of `range` as the four big-endian bytes that follow it.
func storeChecksum(_ bytes: inout [UInt8], of range: Range<Int>) {
    let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
    for k in 0..<4 { bytes[range.upperBound + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
}

/// The files of a block cut from a tenant's head by Tally itself: the sample series (one chunk
/// each) and one series long enough for several chunks, so chunk metas are delta-encoded. Of the
/// blocks the cuts write (one per 10-minute range), the one with the largest index.
func writtenBlock() -> (index: [UInt8], chunks: [UInt8], meta: [UInt8], tombstones: [UInt8]) {
    let tenant = scratchDirectory("block-seed") + "/tenant"
    do {
        let db = try TenantDatabase.open(directory: tenant, tenant: "seed", options: StorageOptions(blockRange: 600_000))
        let long = (0..<300).map { k in (timestamp: Int64(k) * 1000, valueBits: Double(k % 7).bitPattern) }
        try append(sampleSeries + [([("__name__", "up"), ("job", "kubecost")], long)], to: db)
        while try !db.cutBlock().isEmpty {}
        try db.close()
        let blocks = try FileManager.default.contentsOfDirectory(atPath: tenant)
            .map { tenant + "/" + $0 + "/" }
            .filter { FileManager.default.fileExists(atPath: $0 + "index") }
        guard let block = blocks.max(by: { readFile($0 + "index").count < readFile($1 + "index").count }) else {
            fatalError("the seed tenant wrote no block")
        }
        return (readFile(block + "index"), readFile(block + chunkSegment), readFile(block + "meta.json"), readFile(block + "tombstones"))
    } catch {
        fatalError("writing the seed block: \(error)")
    }
}
