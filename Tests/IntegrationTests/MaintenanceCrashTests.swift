import Foundation
import TallyStorage
import XCTest

/// SIGKILL inside retention, delete-series, `tally import blocks` and a WAL segment cut, each at a
/// failpoint that proves it was reached; then the work is run again (or the server restarted) and
/// every stored copy is counted and the tenant's files are checked.
final class MaintenanceCrashTests: XCTestCase {
    static let blockRange: Int64 = 10 * 60_000

    /// A stopped store under tenant `cut`: 2 hours of `BlockCutCrashTests` requests in 10-minute
    /// blocks, the newest minutes only in the WAL, every sample stored once.
    private func makeStore(_ root: String) throws -> (storage: String, stored: StoredCopies) {
        let storage = root + "/pristine"
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--block-range", "10m"])
        try server.waitReady()
        let (sent, acknowledged) = BlockCutCrashTests.send(0..<12, to: server, "the pristine store")
        XCTAssertEqual(acknowledged.count, sent.count, "every request of the pristine store is acknowledged")
        // The cuts run behind the writes: a stop that interrupted them would leave a cut owed to the next open.
        XCTAssertTrue(waitUntil(seconds: 60) {
            (try? StoredCopies.read(storage + "/cut")).map { BlockCutCrashTests.owesNoCut($0, blockRange: Self.blockRange) } ?? false
        }, "the pristine store's cuts did not finish")
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        let stored = try StoredCopies.read(storage + "/cut")
        assertStoredOnce(stored, acknowledged: sent, sent: sent, "the pristine store")
        XCTAssertGreaterThan(stored.blocks.count, 5)
        XCTAssertGreaterThan(stored.walCopies, 0)
        return (storage, stored)
    }

    /// A copy of the pristine store for one failpoint.
    /// Runs a maintenance command that dies at `point`, checks what is stored then, runs it again to
    /// the end and checks again: `kept` once each both times, nothing of `sent` beyond it twice.
    private func killThenFinish(_ point: String, _ command: [String], storage: String, kept: SentSamples, sent: SentSamples,
                                file: StaticString = #filePath, line: UInt = #line) throws -> (StoredCopies, [BlockMeta]) {
        assertDiedAtFailpoint(point, try runTally(atFailpoint: point, command), file: file, line: line)
        assertStoredOnce(try StoredCopies.read(storage + "/cut"), acknowledged: kept, sent: sent, "\(point), after the kill", file: file, line: line)
        let finished = try runCommand(Binaries.tally, command)
        XCTAssertEqual(finished.status, 0, "\(point): \(finished.stderr)", file: file, line: line)
        let after = try StoredCopies.read(storage + "/cut")
        assertStoredOnce(after, acknowledged: kept, sent: kept, "\(point), after finishing", file: file, line: line)
        return (after, assertPhysicalState(after, tenantDirectory: storage + "/cut", "\(point), after finishing", file: file, line: line))
    }

    private func copy(_ pristine: String, for point: String, in root: String) throws -> String {
        let storage = root + "/" + point
        try FileManager.default.copyItem(atPath: pristine, toPath: storage)
        return storage
    }

    private static func numSamples(_ metas: [BlockMeta]) -> UInt64 { metas.reduce(0) { $0 + $1.stats.numSamples } }

    func testSIGKILLInsideRetentionDropsOnlyExpiredBlocks() throws {
        let root = try makeTemporaryDirectory("retention-crash")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (pristine, before) = try makeStore(root)
        let expired = RetentionPolicy.expired(before.blocks.map(\.meta), keep: 30 * 60_000)
        XCTAssertGreaterThan(expired.count, 1, "the kill comes after the first of several expired blocks")
        let gone = Set(expired.map(\.ulid))
        let kept = before.values { $0.block.map { !gone.contains($0) } ?? true }
        for point in ["retention-block-renamed"] {
            let storage = try copy(pristine, for: point, in: root)
            let (_, blocks) = try killThenFinish(point, ["retention", "--storage", storage, "--tenant", "cut", "--keep", "30m"],
                                                 storage: storage, kept: kept, sent: before.values)
            XCTAssertEqual(Set(blocks.map(\.ulid)), Set(before.blocks.map(\.meta.ulid)).subtracting(gone), point)
            XCTAssertEqual(Self.numSamples(blocks), Self.numSamples(before.blocks.map(\.meta)) - Self.numSamples(expired), point)
        }
    }

    func testSIGKILLInsideDeleteSeriesLeavesEveryOtherSampleOnce() throws {
        let root = try makeTemporaryDirectory("delete-crash")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (pristine, before) = try makeStore(root)
        let survivors = before.values.filter { $0.key.labels != Labels(["__name__": "cut_test", "series": "1"]) }
        XCTAssertLessThan(survivors.count, before.copies.count)
        for point in ["delete-meta-before-tombstones", "delete-blocks-before-head", "delete-head-logged-before-drop"] {
            let storage = try copy(pristine, for: point, in: root)
            let (after, blocks) = try killThenFinish(point, ["delete-series", "--storage", storage, "--tenant", "cut", "--match", "{series=\"1\"}"],
                                                     storage: storage, kept: survivors, sent: before.values)
            XCTAssertEqual(Set(blocks.map(\.ulid)), Set(before.blocks.map(\.meta.ulid)), point)
            XCTAssertEqual(Self.numSamples(blocks), Self.numSamples(before.blocks.map(\.meta)), "\(point): tombstones leave the chunks as they were")
            // meta.json counts what the tombstones delete: compaction's 5% rule reads it.
            for block in after.blocks {
                XCTAssertEqual(block.meta.stats.numTombstones ?? 0, UInt64(block.tombstoneIntervals), "\(point): block \(block.meta.ulid) numTombstones")
                XCTAssertEqual(block.meta.tally?.deletedSamples ?? 0, UInt64(block.tombstonedSamples), "\(point): block \(block.meta.ulid) deletedSamples")
            }
        }
    }

    /// A kill with a block's `tombstones.tmp` written but not renamed: the next open (a server
    /// start) removes the leftover and reads the block as before the deletion; a rerun deletes.
    func testATombstonesTmpLeftByAKillIsRemovedAtTheNextOpen() throws {
        let root = try makeTemporaryDirectory("tombstones-tmp")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (pristine, before) = try makeStore(root)
        let survivors = before.values.filter { $0.key.labels != Labels(["__name__": "cut_test", "series": "1"]) }
        let point = "delete-tombstones-before-rename"
        let storage = try copy(pristine, for: point, in: root)
        let command = ["delete-series", "--storage", storage, "--tenant", "cut", "--match", "{series=\"1\"}"]
        assertDiedAtFailpoint(point, try runTally(atFailpoint: point, command))
        XCTAssertEqual(filesUnder(storage + "/cut").filter { $0.hasSuffix("/tombstones.tmp") }.count, 1, "the kill left one tombstones.tmp")

        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        XCTAssertTrue(server.log.contains("removed unfinished tombstones write in block"), server.log)
        let reopened = try StoredCopies.read(storage + "/cut")
        assertStoredOnce(reopened, acknowledged: survivors, sent: before.values, "\(point), after a restart")
        _ = assertPhysicalState(reopened, tenantDirectory: storage + "/cut", "\(point), after a restart")

        let finished = try runCommand(Binaries.tally, command)
        XCTAssertEqual(finished.status, 0, finished.stderr)
        let after = try StoredCopies.read(storage + "/cut")
        assertStoredOnce(after, acknowledged: survivors, sent: survivors, "\(point), after the rerun")
        _ = assertPhysicalState(after, tenantDirectory: storage + "/cut", "\(point), after the rerun")
    }

    func testSIGKILLInsideAnImportLeavesWholeBlocksOnly() throws {
        let root = try makeTemporaryDirectory("import-crash")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (pristine, source) = try makeStore(root)
        let imported = source.values { $0.block != nil }
        for point in ["import-before-rename", "import-block-renamed"] {
            let storage = root + "/" + point
            let tenant = storage + "/imported"
            let command = ["import", "blocks", pristine + "/cut", "--storage", storage, "--tenant", "imported"]
            try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
            assertDiedAtFailpoint(point, try runTally(atFailpoint: point, command))
            assertStoredOnce(try StoredCopies.read(tenant), acknowledged: [:], sent: imported, "\(point), after the kill")

            let finished = try runCommand(Binaries.tally, command)
            XCTAssertEqual(finished.status, 0, "\(point): \(finished.stderr)")
            let after = try StoredCopies.read(tenant)
            assertStoredOnce(after, acknowledged: imported, sent: imported, "\(point), after finishing")
            let blocks = assertPhysicalState(after, tenantDirectory: tenant, "\(point), after finishing")
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: blocks.map { ($0.ulid, $0.minTime..<$0.maxTime) }),
                           Dictionary(uniqueKeysWithValues: source.blocks.map { ($0.meta.ulid, $0.meta.minTime..<$0.meta.maxTime) }), point)
            XCTAssertEqual(Self.numSamples(blocks), Self.numSamples(source.blocks.map(\.meta)), point)
        }
    }

    func testSIGKILLAtAWALSegmentCutLosesNoAcknowledgedSample() throws {
        for point in ["wal-segment-finished", "wal-segment-created"] {
            let storage = try makeTemporaryDirectory("segment-crash")
            defer { try? FileManager.default.removeItem(atPath: storage) }
            let tenant = storage + "/cut"
            // Two-page segments fill after some 30 requests of uncompressed records, fewer than 80 of the
            // compressed ones the WAL now holds; a 24h block range cuts no block meanwhile.
            let arguments = ["--wal-segment-bytes", "65536", "--block-range", "24h"]
            let server = try TallyServerProcess(storage: storage, extraArguments: arguments, environment: ["TALLY_FAILPOINT": point])
            try server.waitReady()
            let (sent, acknowledged) = BlockCutCrashTests.send(0..<200, to: server, point)
            assertDiedAtFailpoint(point, waitForEnd(of: server.process, seconds: 30, output: { server.log }, point))
            XCTAssertLessThan(acknowledged.count, sent.count, "\(point): the kill came before the last request")
            assertStoredOnce(try StoredCopies.read(tenant), acknowledged: acknowledged, sent: sent, "\(point), after the kill")

            // The restarted server takes the rest, and a resend of what it holds, in the next segments.
            let restarted = try TallyServerProcess(storage: storage, extraArguments: arguments)
            try restarted.waitReady()
            let (all, allAcknowledged) = BlockCutCrashTests.send(0..<200, to: restarted, "\(point), after the restart")
            XCTAssertEqual(allAcknowledged.count, all.count, "\(point): every request is acknowledged after the restart")
            restarted.stop(SIGTERM)
            XCTAssertEqual(restarted.process.terminationStatus, 0, "\(point): \(restarted.log)")
            let after = try StoredCopies.read(tenant)
            assertStoredOnce(after, acknowledged: all, sent: all, "\(point), after the restart")
            XCTAssertEqual(assertPhysicalState(after, tenantDirectory: tenant, "\(point), after the restart").count, 0, "\(point): no block is cut")
            // Prometheus reads segments as a sequence without gaps.
            let segments = try FileManager.default.contentsOfDirectory(atPath: tenant + "/wal").compactMap { Int($0) }.sorted()
            XCTAssertGreaterThan(segments.count, 2, "\(point): segments \(segments)")
            XCTAssertEqual(segments, Array(0..<segments.count), "\(point): segments \(segments)")
        }
    }
}
