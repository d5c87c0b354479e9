import Foundation
import TallyLoad
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
        let root = try makeTemporaryDirectory("compact")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try makeStore(root)
        let dump = try tallyDump(storage: storage, tenant: "acme")
        let promtool = try BlockInteropTests.promtoolDump(storage + "/acme")
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
        XCTAssertEqual(try BlockInteropTests.promtoolDump(storage + "/acme"), promtool)
        XCTAssertEqual(try costs(storage), answer)
        XCTAssertEqual(try runCommand(Binaries.debian("promtool"), ["tsdb", "analyze", storage + "/acme"]).status, 0)
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
        for point in ["block-chunks-written", "block-before-rename", "compaction-child-renamed", "compaction-parent-removed", "compaction-parents-removed"] {
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
}
