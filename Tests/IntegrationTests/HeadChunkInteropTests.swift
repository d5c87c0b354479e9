import Foundation
import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Tally's head chunk files next to promtool 2.42: promtool reads them as its own, and the chunk
/// files promtool writes into a tenant it opens never bring deleted samples back to Tally.
final class HeadChunkInteropTests: XCTestCase {
    private static let minute: Int64 = 60_000
    private var directory = ""

    override func setUpWithError() throws {
        _ = try Binaries.debian("promtool")
        directory = try makeTemporaryDirectory("head-chunks") + "/tenant"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: directory).deletingLastPathComponent().path) }

    private func fill(_ db: TenantDatabase, series: Int, minutes: Int) throws {
        for k in 0..<series {
            try appendSamples(db, "m\(k)", (0..<minutes).map { i in (Int64(i) * Self.minute, Double(k * 1000 + i % 13).bitPattern) })
        }
    }

    /// The chunk files, none before the first chunk is written (which makes the directory).
    private func chunkFiles() throws -> [String] {
        guard FileManager.default.fileExists(atPath: directory + "/chunks_head") else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory + "/chunks_head").filter { $0.allSatisfy(\.isNumber) }.sorted()
    }

    /// Samples per series name in `promtool tsdb dump` of `path` (which promtool writes into).
    private func promtoolCounts(_ path: String) throws -> (counts: [String: Int], stderr: String) {
        let result = try runCommand(Binaries.debian("promtool"), ["tsdb", "dump", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        var counts: [String: Int] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let start = line.range(of: "__name__=\""), let end = line[start.upperBound...].firstIndex(of: "\"") else { continue }
            counts[String(line[start.upperBound..<end]), default: 0] += 1
        }
        return (counts, result.stderr)
    }

    func testPromtoolReadsTallysChunkFilesAsItsOwn() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try fill(db, series: 5, minutes: 170)
        db.lock.withLock { _ in db.head.chunkWriter?.flush() }
        XCTAssertEqual(try chunkFiles(), ["000001"])
        // A crash: the WAL and the chunk files as they are.
        let copy = directory + "-copy"
        try FileManager.default.copyItem(atPath: directory, toPath: copy)
        let (counts, stderr) = try promtoolCounts(copy)
        XCTAssertEqual(counts, Dictionary(uniqueKeysWithValues: (0..<5).map { ("m\($0)", 170) }))
        // Prometheus logs what it finds wrong in head chunk files before replaying the WAL alone.
        for complaint in ["corrupt", "out of sequence", "Loading on-disk chunks failed", "chunk file"] {
            XCTAssertFalse(stderr.contains(complaint), stderr)
        }
        XCTAssertEqual(try Set(FileManager.default.contentsOfDirectory(atPath: copy + "/chunks_head")).contains("000001"), true,
                       "promtool kept Tally's file")
    }

    func testChunkFilesPromtoolWritesAfterADeletionBringNothingBack() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try fill(db, series: 2, minutes: 170)
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m1")]], in: DeletedInterval(minTime: 20 * Self.minute, maxTime: 70 * Self.minute))
        // promtool opens the live tenant: it replays the WAL and writes its head's chunks, with the
        // deleted samples in them (it applies the tombstones when it reads).
        let before = try chunkFiles()
        XCTAssertEqual(try promtoolCounts(directory).counts["m1"], 170 - 51)
        XCTAssertNotEqual(try chunkFiles(), before, "promtool wrote chunk files of its own")
        // A late sample, so the clean stop writes a block and checkpoints the WAL, which drops the
        // Tombstones record.
        try appendSamples(db, "m0", [(30 * Self.minute + 5, 1)])
        try db.close()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(reopened.replay.records, 2, "the checkpoint's Series and Samples records, no Tombstones")
        let m1 = try reopened.select([try LabelMatcher("__name__", .equal, "m1")])
        XCTAssertEqual(m1.first?.samples.count, 170 - 51)
        XCTAssertFalse(m1.first?.samples.contains { (20 * Self.minute...70 * Self.minute).contains($0.timestamp) } ?? true)
        try reopened.close()
    }
}
