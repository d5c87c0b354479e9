import Foundation
import FuzzSupport
import TallyStorage

// A block whose `index` (first byte even) or chunk segment (odd) is the input, beside the other
// files of a block Tally wrote: opened with BlockReader, every series entry and chunk read and
// decoded, and a select run over it, as queries, `tally dump` and compaction read blocks. The input
// is also decoded as one XOR chunk on its own.

let blockDirectory = scratchDirectory("block")
let chunkSegment = "chunks/000001"
let written = writtenBlock()
/// Every series that has a name, matched through the postings lists.
let everyNamedSeries = [try! LabelMatcher("__name__", .notEqual, "")]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked { ["index": [0] + written.index, "chunks": [1] + written.chunks] }
    try! FileManager.default.createDirectory(atPath: blockDirectory + "/chunks", withIntermediateDirectories: false)
    writeFile(blockDirectory + "/meta.json", written.meta)
    writeFile(blockDirectory + "/tombstones", written.tombstones)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let payload = UnsafeBufferPointer(start: data + 1, count: size - 1)
    decodeChunk(payload)
    let isIndex = data[0] & 1 == 0
    writeFile(blockDirectory + "/index", isIndex ? Array(payload) : written.index)
    writeFile(blockDirectory + "/" + chunkSegment, isIndex ? written.chunks : Array(payload))
    guard let reader = try? BlockReader(directory: blockDirectory) else { return 0 }
    for ref in reader.seriesRefs {
        guard let (_, chunks) = try? reader.series(ref) else { continue }
        for chunk in chunks {
            if let bytes = try? reader.chunk(chunk.ref) { decodeChunk(bytes) }
        }
    }
    _ = reader.candidates(everyNamedSeries)
    _ = try? reader.select(everyNamedSeries, minTime: .min, maxTime: .max)
    return 0
}

/// Decodes every sample; the iterator must stop at the count in the chunk's header.
func decodeChunk(_ bytes: UnsafeBufferPointer<UInt8>) {
    let declared = bytes.count >= 2 ? Int(bytes[0]) << 8 | Int(bytes[1]) : 0
    var iterator = XORIterator(bytes)
    var decoded = 0
    while iterator.next() != nil { decoded += 1 }
    precondition(decoded <= declared, "decoded \(decoded) samples from a chunk declaring \(declared)")
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
