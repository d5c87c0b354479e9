import Foundation
import TallyLoad
@testable import TallyStorage
import TallyTestSupport
import XCTest

/// `tally compact` on real stores: nothing any reader sees changes, the planner's count is what
/// happens, a SIGKILL at any failpoint inside leaves every sample with exactly one stored copy, and
/// a live server is asked rather than raced.
final class CompactionTests: XCTestCase {
    let stores = StoreFixture()
    var dataset: KubecostDataset { stores.dataset }
    func makeStore(_ root: String) throws -> String { try stores.makeStore(root) }
    func costs(_ storage: String) throws -> [String: [String: Double]] { try stores.costs(storage) }
    func blocks(_ storage: String) throws -> [[String: Any]] { try stores.blocks(storage) }
    func plannedCount(_ storage: String) throws -> Int { try stores.plannedCount(storage) }

    func testCompactionChangesNoAnswerAndEndsAsPlanned() throws {
        // promtool is an oracle here: asked for before any work, so nothing stops half-way.
        let promtool = try Binaries.debian("promtool")
        let root = try makeTemporaryDirectory("compact")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try makeStore(root)
        let dump = try tallyDump(storage: storage, tenant: "acme")
        let promtoolBefore = try BlockInteropTests.promtoolDump(storage + "/acme")
        let answer = try costs(storage)
        let before = try blocks(storage).count
        let planned = try plannedCount(storage)
        XCTAssertLessThan(planned, before / 4, "3 days of 2h blocks become about one block a day")

        let run = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("No server holds"), run.stdout)
        let after = try blocks(storage)
        XCTAssertEqual(after.count, planned)
        let levels = after.compactMap { ($0["compaction"] as? [String: Any])?["level"] as? Int }
        XCTAssertGreaterThanOrEqual(levels.max() ?? 0, 3, "2h -> 6h -> 24h")
        XCTAssertTrue(after.contains { (($0["compaction"] as? [String: Any])?["parents"] as? [Any])?.isEmpty == false })

        XCTAssertEqual(try tallyDump(storage: storage, tenant: "acme"), dump)
        XCTAssertEqual(try BlockInteropTests.promtoolDump(storage + "/acme"), promtoolBefore)
        XCTAssertEqual(try costs(storage), answer)
        XCTAssertEqual(try runCommand(promtool, ["tsdb", "analyze", storage + "/acme"]).status, 0)
        XCTAssertEqual(try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"]).status, 0)

        // Nothing left to do: a second run changes nothing.
        let again = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme", "--json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("\"blocks_before\":\(planned),\"blocks_after\":\(planned),\"merged\":[]"), again.stdout)
    }

    func testSIGKILLInsideACompactionLeavesEverySampleStoredOnce() throws {
        let root = try makeTemporaryDirectory("compact-crash")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pristine = try makeStore(root)
        let dump = try tallyDump(storage: pristine, tenant: "acme")
        let planned = try plannedCount(pristine)
        let before = try StoredCopies.read(pristine + "/acme")
        let samples = before.values
        assertStoredOnce(before, acknowledged: samples, sent: samples, "the store before compaction")
        // Every failpoint of the streaming block writer, in the order it reaches them, then the
        // compaction's own steps after the child is in place.
        let points = ["block-symbols-written", "block-first-series-written", "block-chunks-written", "block-index-written",
                      "block-before-rename", "compaction-child-renamed", "compaction-parent-removed", "compaction-parents-removed"]
        for point in points {
            let storage = root + "/" + point
            try FileManager.default.copyItem(atPath: pristine, toPath: storage)
            assertDiedAtFailpoint(point, try runTally(atFailpoint: point, ["compact", "--storage", storage, "--tenant", "acme"]))
            // A restart in the half-finished state loads every sample once: a renamed child's parents
            // are skipped (and removed), unfinished writes are `.tmp`.
            assertStoredOnce(try StoredCopies.read(storage + "/acme"), acknowledged: samples, sent: samples, "\(point), after the kill")
            let finished = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
            XCTAssertEqual(finished.status, 0, "\(point): \(finished.stderr)")
            let after = try StoredCopies.read(storage + "/acme")
            assertStoredOnce(after, acknowledged: samples, sent: samples, "\(point), after finishing")
            let blocks = assertPhysicalState(after, tenantDirectory: storage + "/acme", "\(point), after finishing")
            assertNoOverlappingBlocks(blocks, "\(point), after finishing")
            XCTAssertEqual(blocks.count, planned, point)
            XCTAssertEqual(blocks.reduce(0) { $0 + Int($1.stats.numSamples) }, after.blockCopies, point)
            XCTAssertEqual(try tallyDump(storage: storage, tenant: "acme"), dump, "\(point): read after finishing")
            XCTAssertEqual(try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"]).status, 0, point)
        }
    }

    func testCompactWhileTheServerIngestsAsksTheServer() throws {
        let root = try makeTemporaryDirectory("compact-live")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try TallyServerProcess(storage: root + "/storage", extraArguments: ["--compaction-interval", "0s"])
        try server.waitReady()
        let requests = dataset.requests(senders: 1)[0]
        try push(Array(requests.prefix(requests.count / 2)), to: server.client, headers: [("THANOS-TENANT", "acme")])
        let client = server.client
        let pusher = Thread {
            try? push(Array(requests.suffix(from: requests.count / 2)), to: client, headers: [("THANOS-TENANT", "acme")])
        }
        pusher.start()
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", server.storage, "--tenant", "acme", "--server-port", String(server.port)])
        XCTAssertEqual(compact.status, 0, compact.stderr)
        XCTAssertTrue(compact.stdout.contains("asked it to compact"), compact.stdout)
        XCTAssertTrue(compact.stdout.contains("TENANT  BLOCKS BEFORE  BLOCKS AFTER"), "the server's answer as the same table: \(compact.stdout)")
        let deadline = Date().addingTimeInterval(300)
        while !pusher.isFinished && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(pusher.isFinished)
        // The same data, never compacted, under another tenant of the same server.
        try push(requests, to: server.client, headers: [("THANOS-TENANT", "reference")])
        server.stop(SIGTERM)
        XCTAssertEqual(try tallyDump(storage: server.storage, tenant: "acme"), try tallyDump(storage: server.storage, tenant: "reference"))
        XCTAssertTrue(try blocks(server.storage).contains { (($0["compaction"] as? [String: Any])?["level"] as? Int ?? 0) >= 2 })
    }

    /// A compaction needs room for its child beside its parents: on a file system with less free
    /// space than the parents take, `tally compact` refuses before writing anything, says how much
    /// it needs, exits 1, and leaves every block and sample as it was. The file system is a small
    /// tmpfs, so the shortage is real, not simulated.
    func testCompactionRefusesToStartWhenFreeDiskIsBelowItsParentsSize() throws {
        let mountPoint = try makeTemporaryDirectory("small-disk")
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        let mount = try runCommand("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint])
        guard mount.status == 0 else {
            return XCTFail("this test mounts a 4 MB tmpfs and needs root (CAP_SYS_ADMIN): \(mount.stderr)")
        }
        defer { _ = try? runCommand("/usr/bin/umount", [mountPoint]) }
        let tenantDirectory = mountPoint + "/storage/acme"
        try FileManager.default.createDirectory(atPath: tenantDirectory, withIntermediateDirectories: true)
        // Two overlapping blocks (always planned first) of random values, about 1.4 MB each: 2.8 MB of
        // parents on a 4 MB disk leaves less free than the child needs.
        var random = SeededGenerator(test: "CompactionTests free disk")
        let start: Int64 = 1_700_006_400_000
        for offset: Int64 in [0, 1_800_000] {
            var series: [BlockSeries] = []
            for k in 0..<10 {
                var chunks: [EncodedChunk] = []
                var t = start + offset
                for _ in 0..<125 {
                    var chunk = XORChunk()
                    let first = t
                    for _ in 0..<120 {
                        chunk.append(timestamp: t, valueBits: Double.random(in: 0..<1, using: &random).bitPattern)
                        t += 200
                    }
                    chunks.append(EncodedChunk(minTime: first, maxTime: t - 200, bytes: chunk.bytes))
                }
                series.append(BlockSeries(labels: [("__name__", "noise"), ("k", String(k))], chunks: chunks))
            }
            _ = try BlockWriter.write(series: series, minTime: start + offset, maxTime: start + offset + 3_000_000, into: tenantDirectory, tenant: "acme")
        }
        let storage = mountPoint + "/storage"
        let dumpBefore = try tallyDump(storage: storage, tenant: "acme")
        let ulids = try BlockCatalog.list(tenantDirectory: tenantDirectory).map(\.meta.ulid)
        XCTAssertEqual(ulids.count, 2)
        // The blocks' files; opening the tenant adds its WAL and lock files beside them.
        func blockFiles() -> [String] { filesUnder(tenantDirectory).filter { path in ulids.contains { path.hasPrefix($0) } } }
        let filesBefore = blockFiles()
        let free = try FileManager.default.attributesOfFileSystem(forPath: mountPoint)[.systemFreeSize] as? Int ?? 0
        XCTAssertLessThan(free, 2_500_000, "the parents leave less free than they take")

        let run = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(run.status, 1, run.stdout + run.stderr)
        XCTAssertTrue((run.stdout + run.stderr).contains("compaction needs about"), run.stdout + run.stderr)
        XCTAssertTrue((run.stdout + run.stderr).contains("free"), run.stdout + run.stderr)
        XCTAssertEqual(try BlockCatalog.list(tenantDirectory: tenantDirectory).map(\.meta.ulid), ulids, "no block written, none removed")
        XCTAssertEqual(blockFiles(), filesBefore)
        XCTAssertEqual(filesUnder(tenantDirectory).filter { $0.hasSuffix(".tmp") }, [], "nothing half-written left")
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "acme"), dumpBefore)
    }
}
