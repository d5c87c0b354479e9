import Foundation
import FuzzSupport
import TallyStorage

// A tenant whose head chunk file (`chunks_head/000001`) is the input, beside a WAL that Tally wrote
// for the same series, opened for writing as a server start opens it: the file read, checked and cut
// at its first fault, then the WAL replayed with each series taking its chunks from the file where
// they start with its first replayed sample; then a read of every series, and a clean stop (which
// cuts blocks when the head owes them).
//
// With bit 0 of the first byte set, each chunk's CRC32C is recomputed first wherever the framing
// still parses, so mutations reach the replay behind the checksums; clear, the checksums meet them.

let tenantDirectory = scratchDirectory("head-chunks")
let everyNamedSeries = [try! LabelMatcher("__name__", .notEqual, "")]
let seed = writtenTenant()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked { ["chunks-as-written": [0] + seed.chunks, "chunks-rechecksummed": [1] + seed.chunks] }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    var chunks = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 { recomputeChecksums(&chunks) }
    // A writable open repairs what it reads, and a clean stop writes blocks: every input starts
    // from a fresh directory.
    try? FileManager.default.removeItem(atPath: tenantDirectory)
    for name in ["wal", "chunks_head"] {
        try! FileManager.default.createDirectory(atPath: tenantDirectory + "/" + name, withIntermediateDirectories: true)
    }
    writeFile(tenantDirectory + "/wal/00000000", seed.wal)
    writeFile(tenantDirectory + "/chunks_head/000001", chunks)
    guard let db = try? TenantDatabase.open(directory: tenantDirectory, tenant: "fuzz") else { return 0 }
    for series in (try? db.select(everyNamedSeries)) ?? [] {
        precondition(zip(series.samples, series.samples.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp },
                     "samples of \(series.labels) out of order or repeated")
    }
    try? db.close()
    return 0
}

/// Walks the chunks as the reader does (8-byte file header; per chunk a 25-byte header, the data
/// length as a uvarint, the data, a big-endian CRC32C of all of them) and stores each one's checksum.
func recomputeChecksums(_ file: inout [UInt8]) {
    var position = 8
    while position + 26 <= file.count {
        var length = 0, shift = 0, cursor = position + 25
        while cursor < file.count, shift < 35 {
            length |= Int(file[cursor] & 0x7f) << shift
            cursor += 1
            if file[cursor - 1] < 0x80 { break }
            shift += 7
        }
        let end = cursor + length
        guard end + 4 <= file.count else { return }
        let crc = file.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[position..<end])) }
        for k in 0..<4 { file[end + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
        position = end + 4
    }
}

/// A WAL segment and the chunk file Tally wrote beside it: the sample series, then samples past the
/// 2-hour range end, which close each series' first chunk, then a clean stop, which writes the file.
func writtenTenant() -> (wal: [UInt8], chunks: [UInt8]) {
    let directory = scratchDirectory("head-chunks-seed") + "/tenant"
    do {
        let db = try TenantDatabase.open(directory: directory, tenant: "seed")
        try append(sampleSeries, to: db)
        try append(sampleSeries.map { s in (s.labels, (0..<5).map { k in (timestamp: 7_200_000 + Int64(k) * 15_000, valueBits: UInt64(k)) }) }, to: db)
        try db.close()
    } catch {
        fatalError("writing the seed tenant: \(error)")
    }
    return (readFile(directory + "/wal/00000000"), readFile(directory + "/chunks_head/000001"))
}
