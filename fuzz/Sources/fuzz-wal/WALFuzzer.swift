import Foundation
import FuzzSupport
import TallyStorage

// A tenant whose only WAL segment is the input, opened read-only as `tally dump` opens a store:
// segment framing, record decoding and replay into the head (series, samples, late samples,
// tombstones), then a read of every replayed series.
//
// The first byte chooses how checksums are treated: odd recomputes each fragment's CRC32C first, so
// mutations reach the record decoder and the head; even leaves them, so the framing's own checks
// (checksum, page bounds, fragment order) meet mutated bytes too.

let pageSize = 32 * 1024
let headerSize = 7

let tenantDirectory = scratchDirectory("wal")
let segmentPath = tenantDirectory + "/wal/00000000"
let everyNamedSeries = [try! LabelMatcher("__name__", .notEqual, "")]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked {
        let segment = try writtenSegment()
        return ["segment-as-written": [0] + segment, "segment-rechecksummed": [1] + segment]
    }
    try! FileManager.default.createDirectory(atPath: tenantDirectory + "/wal", withIntermediateDirectories: false)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    var segment = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 { recomputeChecksums(&segment) }
    writeFile(segmentPath, segment)
    guard let db = try? TenantDatabase.open(directory: tenantDirectory, tenant: "fuzz", readOnly: true) else { return 0 }
    defer { try? db.close() }
    for series in (try? db.select(everyNamedSeries)) ?? [] {
        precondition(zip(series.samples, series.samples.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp },
                     "samples of \(series.labels) out of order or repeated")
    }
    return 0
}

/// Walks the fragments as the segment reader does (7-byte header: type, big-endian length and
/// CRC32C; none crosses a 32 KiB page) and stores each one's correct checksum.
func recomputeChecksums(_ segment: inout [UInt8]) {
    var position = 0
    while position + headerSize <= segment.count {
        let pageLeft = pageSize - position % pageSize
        let length = Int(segment[position + 1]) << 8 | Int(segment[position + 2])
        guard pageLeft >= headerSize, segment[position] != 0 else {
            position += pageLeft
            continue
        }
        let end = position + headerSize + length
        guard headerSize + length <= pageLeft, end <= segment.count else { return }
        let crc = segment.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[position + headerSize..<end])) }
        for k in 0..<4 { segment[position + 3 + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
        position = end
    }
}

/// A segment as Tally writes it: series records, samples in order and late, and a deletion's
/// tombstones; zero padding at the end is cut off to keep the seed small.
func writtenSegment() throws -> [UInt8] {
    let directory = scratchDirectory("wal-seed") + "/tenant"
    let db = try TenantDatabase.open(directory: directory, tenant: "seed", options: StorageOptions())
    try append(sampleSeries, to: db)
    try append(sampleSeries.map { ($0.labels, [(timestamp: $0.samples[3].timestamp - 1, valueBits: 42)]) }, to: db)
    _ = try db.deleteSeries([[try LabelMatcher("namespace", .equal, "kube-system")]], in: DeletedInterval(minTime: 10_000, maxTime: 20_000))
    // Read before closing: a cut of the late samples at close checkpoints the WAL past this segment.
    var bytes = readFile(directory + "/wal/00000000")
    try db.close()
    while bytes.last == 0 { bytes.removeLast() }
    return bytes
}
