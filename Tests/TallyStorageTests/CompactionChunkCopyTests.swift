import TallyTestSupport
import XCTest
@testable import TallyStorage

/// A compaction of blocks that share no time copies each chunk's bytes as they are: the CRC32C that
/// each chunk carries on disk is the same in the child as in its parent. The parents' chunks hold
/// uneven sample counts (1 to 200) with random values, which no re-encoding would cut the same way,
/// so a compactor that decoded and encoded again would fail here.
final class CompactionChunkCopyTests: XCTestCase {
    static let day: Int64 = 1_700_006_400_000
    static let hour: Int64 = 3_600_000

    private var root = ""
    private var directory: String { root + "/tenant" }

    override func setUpWithError() throws {
        root = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileSystem.removeTree(root) }

    func testCompactingBlocksThatDoNotOverlapKeepsEveryChunksChecksum() throws {
        var random = SeededGenerator(test: "CompactionChunkCopyTests")
        // Three 2h blocks fill one 6h window behind a later block, so the planner levels them up. Some
        // series are in one block only, some in all.
        for k in Int64(0)..<4 {
            let start = Self.day + k * 2 * Self.hour
            var series: [BlockSeries] = []
            for s in 0..<40 where s % 4 == 0 || Int64(s % 3) == k % 3 {
                let chunks = Self.unevenChunks(from: start, to: start + 2 * Self.hour, &random)
                series.append(BlockSeries(labels: [("__name__", "m"), ("s", String(s))], chunks: chunks))
            }
            _ = try BlockWriter.write(series: series, minTime: start, maxTime: start + 2 * Self.hour, into: directory, tenant: "t")
        }
        let parents = try BlockCatalog.list(tenantDirectory: directory).map(\.meta).filter { $0.maxTime <= Self.day + 6 * Self.hour }
        XCTAssertEqual(parents.count, 3)
        var before: [String: [UInt32]] = [:]
        for parent in parents.sorted(by: { $0.minTime < $1.minTime }) {
            for (labels, checksums) in try Self.storedChecksums(directory + "/" + parent.ulid) { before[labels, default: []] += checksums }
        }

        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        let report = try db.compact()
        XCTAssertEqual(report.failures, [])
        XCTAssertEqual(report.groups.map(\.reason), [.levelUp])
        let child = try XCTUnwrap(db.blockMetas.first { $0.minTime == Self.day })
        XCTAssertEqual(child.maxTime, Self.day + 6 * Self.hour)
        XCTAssertEqual(child.compaction.parents?.count, 3)

        let after = try Self.storedChecksums(directory + "/" + child.ulid)
        XCTAssertEqual(after.count, before.count)
        XCTAssertGreaterThan(after.values.map(\.count).reduce(0, +), 200, "enough chunks to mean something")
        for (labels, checksums) in after { XCTAssertEqual(checksums, before[labels], labels) }
    }

    /// Chunks of 1 to 200 samples, 15 s apart with jitter, random values, covering [start, end).
    private static func unevenChunks(from start: Int64, to end: Int64, _ random: inout SeededGenerator) -> [EncodedChunk] {
        var chunks: [EncodedChunk] = []
        var t = start + Int64.random(in: 0..<15_000, using: &random)
        while t < end {
            var chunk = XORChunk()
            let first = t
            var last = t
            for _ in 0..<Int.random(in: 1...200, using: &random) where t < end {
                chunk.append(timestamp: t, valueBits: Double.random(in: 0..<1_000, using: &random).bitPattern)
                last = t
                t += 15_000 + Int64.random(in: -500...500, using: &random)
            }
            chunks.append(EncodedChunk(minTime: first, maxTime: last, bytes: chunk.bytes))
        }
        return chunks
    }

    /// For each series of a block (by its labels' text), the CRC32C stored after each of its chunks in
    /// the segment files, read from the bytes on disk rather than through the block reader.
    private static func storedChecksums(_ blockDirectory: String) throws -> [String: [UInt32]] {
        let block = try BlockReader(directory: blockDirectory)
        var segments: [Int: [UInt8]] = [:]
        var out: [String: [UInt32]] = [:]
        for ref in block.seriesRefs {
            let (labels, chunks) = try block.series(ref)
            let name = labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            for meta in chunks {
                let segment = Int(meta.ref >> 32)
                if segments[segment] == nil {
                    segments[segment] = Array(try Data(contentsOf: URL(fileURLWithPath: blockDirectory + "/chunks/" + BlockWriter.chunkSegmentName(segment))))
                }
                let bytes = try XCTUnwrap(segments[segment])
                var position = Int(meta.ref & 0xffff_ffff)
                var length = 0
                var shift = 0
                while bytes[position] & 0x80 != 0 {
                    length |= Int(bytes[position] & 0x7f) << shift
                    shift += 7
                    position += 1
                }
                length |= Int(bytes[position]) << shift
                let checksumAt = position + 1 + 1 + length
                XCTAssertEqual(bytes[position + 1], XORChunk.encoding)
                XCTAssertEqual(CRC32C.checksum(Array(bytes[(position + 1)..<checksumAt])),
                               bytes[checksumAt..<(checksumAt + 4)].reduce(0) { $0 << 8 | UInt32($1) }, "the stored checksum is the chunk's")
                out[name, default: []].append(bytes[checksumAt..<(checksumAt + 4)].reduce(0) { $0 << 8 | UInt32($1) })
            }
        }
        return out
    }
}
