import Foundation
import TallyLoad
import TallyStorage
import XCTest

/// `tally delete-series` and `POST /api/v1/admin/tsdb/delete_series`: data leaves every read at
/// once (head and blocks, across restarts, for promtool too) and the disk at the next compaction.
final class DeletionTests: XCTestCase {
    let stores = StoreFixture()

    private func tenantBytes(_ storage: String) -> Int {
        filesUnder(storage + "/acme").reduce(0) { total, path in
            let attributes = try? FileManager.default.attributesOfItem(atPath: storage + "/acme/" + path)
            return total + ((attributes?[.type] as? FileAttributeType) == .typeRegular ? (attributes?[.size] as? Int ?? 0) : 0)
        }
    }

    func testDeletedDataLeavesEveryReadAtOnceAndTheDiskAtCompaction() throws {
        _ = try Binaries.debian("promtool") // an oracle below: asked for first, so no check stops half-way
        let root = try makeTemporaryDirectory("delete")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let dump = try tallyDump(storage: storage, tenant: "acme").split(separator: "\n").map(String.init)
        let cluster = "cluster_id=\"\(stores.dataset.clusterPrefix)1\""
        let whole = dump.filter { $0.contains(cluster) }
        // node_ram_hourly_cost of the other clusters over the dataset's second day, inclusive bounds.
        let dayStart = stores.dataset.start + 86_400_000, dayEnd = dayStart + 86_400_000 - 1
        let ranged = dump.filter { line in
            guard line.hasPrefix("{__name__=\"node_ram_hourly_cost\""), !line.contains(cluster),
                  let t = line.split(separator: " ").last.flatMap({ Int64($0) }) else { return false }
            return t >= dayStart && t <= dayEnd
        }
        XCTAssertGreaterThan(whole.count, dump.count / 4)
        XCTAssertGreaterThan(ranged.count, 100)
        let before = try stores.costs(storage)
        XCTAssertTrue(before.contains { $0.key.contains("\(stores.dataset.clusterPrefix)1") && ($0.value["total"] ?? 0) > 0 })

        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s", "--web.enable-admin-api"])
        try server.waitReady()
        let base = ["delete-series", "--storage", storage, "--tenant", "acme", "--server-port", String(server.port), "--json"]
        let dry = try runCommand(Binaries.tally, base + ["--match", "{\(cluster)}", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.contains("\"by\":\"the server\",\"dry_run\":true,\"samples\":\(whole.count),"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("\"place\":\"head\""), "the newest hours are still in the head: \(dry.stdout)")

        let first = try runCommand(Binaries.tally, base + ["--match", "{\(cluster)}"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("\"dry_run\":false,\"samples\":\(whole.count),"), first.stdout)
        // The Prometheus form of the same API: form body, RFC 3339 and Unix-seconds bounds.
        let form = "match[]=" + LoopbackHTTP.escaped("{__name__=\"node_ram_hourly_cost\"}")
            + "&start=" + LoopbackHTTP.escaped(iso8601(dayStart)) + "&end=\(Double(dayEnd) / 1000)"
        let second = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series",
                                                headers: [("THANOS-TENANT", "acme"), ("Content-Type", "application/x-www-form-urlencoded")],
                                                body: Array(form.utf8))
        XCTAssertEqual(second.status, 200, second.body)
        XCTAssertTrue(second.body.contains("\"samples\":\(ranged.count),"), second.body)
        let refused = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=%7Bjob%3D~%22.%2A%22%7D",
                                                 headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(refused.status, 400, "a selector matching everything is refused")
        // Parameters Go's ParseForm refuses are refused, as Prometheus does; its own texts for its
        // smallest and largest times are times (a dry run over all time).
        let brokenEscape = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=node_gpu_count&x=%zz", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(brokenEscape.status, 400)
        XCTAssertEqual(brokenEscape.body, "error parsing form values: invalid URL escape \"%zz\"\n")
        let allTime = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=node_gpu_count&dry_run=1"
                                                + "&start=-292273086-05-16T16:47:06Z&end=292277025-08-18T07:12:54.999999999Z", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(allTime.status, 200, allTime.body)
        // An empty time is none, as Prometheus reads it: the same dry run over all time.
        let emptyTimes = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=node_gpu_count&dry_run=1&start=&end=",
                                                   headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(emptyTimes.status, 200, emptyTimes.body)
        XCTAssertEqual(emptyTimes.body, allTime.body)

        // Gone from the running server's reads at once.
        let costs = try server.client.request("GET", "/api/v1/costs/daily?start=\(utcDate(stores.dataset.start))&end=\(utcDate(stores.dataset.start + 2 * 86_400_000))",
                                              headers: [("THANOS-TENANT", "acme")])
        let rows = try dailyRows(costs.body)
        XCTAssertFalse(rows.keys.contains { $0.contains("\(stores.dataset.clusterPrefix)1") }, costs.body)
        // Only the last price before the day is held into it, for at most the 5m lookback.
        let day = rows.filter { $0.key.hasPrefix(utcDate(dayStart)) }
        XCTAssertFalse(day.isEmpty)
        for (key, row) in day { XCTAssertLessThan(row["ram"] ?? 1, (before[key]?["ram"] ?? 0) * 5 / 1440 + 1e-9, costs.body) }
        server.stop(SIGTERM)

        // Gone for good: after a restart (blocks' tombstones, the WAL's Tombstones record), for Tally and promtool.
        let expected = dump.filter { !$0.contains(cluster) && !ranged.contains($0) }
        let remaining = try tallyDump(storage: storage, tenant: "acme").split(separator: "\n").map(String.init)
        XCTAssertEqual(remaining, expected)
        XCTAssertEqual(try BlockInteropTests.promtoolDump(storage + "/acme"), expected.sorted())
        XCTAssertEqual(try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"]).status, 0)

        // The next compaction removes the data physically.
        let size = tenantBytes(storage)
        // Merges into larger windows come before the 5% rule and drop deleted samples on the way, so
        // which reason rewrites a block depends on the store; the plan says which, and the run must
        // follow it (CompactionRuleTests has the rule's edges).
        let planned = CompactionPlanner.simulate(try BlockCatalog.list(tenantDirectory: storage + "/acme").map(\.meta)).steps.flatMap { $0 }
        XCTAssertFalse(planned.isEmpty)
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(compact.status, 0, compact.stderr)
        for reason in Set(planned.map(\.reason.rawValue)) { XCTAssertTrue(compact.stdout.contains(reason), "\(reason) planned: \(compact.stdout)") }
        XCTAssertLessThan(Double(tenantBytes(storage)), Double(size) * 0.8, "a quarter or more of the data left the disk")
        XCTAssertTrue(try stores.blocks(storage).allSatisfy { ($0["stats"] as? [String: Any])?["numTombstones"] == nil })
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "acme").split(separator: "\n").map(String.init), expected)
        let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(verify.status, 0, verify.stdout)
    }

    /// A deletion under the 5% rule stays as tombstones through compaction; `clean_tombstones` (the
    /// server's endpoint, and `tally compact --clean-tombstones`) takes it off the disk now.
    func testCleanTombstonesTakesASmallDeletionOffTheDiskNow() throws {
        _ = try Binaries.debian("promtool")
        let root = try makeTemporaryDirectory("clean-tombstones")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        XCTAssertEqual(try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"]).status, 0)
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s", "--web.enable-admin-api"])
        try server.waitReady()
        let acme = [("THANOS-TENANT", "acme")]
        // Ten minutes of one series on the first day: far under 5% of its block.
        let start = stores.dataset.start + 3_600_000
        let selector = LoopbackHTTP.escaped("{__name__=\"node_ram_hourly_cost\",cluster_id=\"\(stores.dataset.clusterPrefix)0\"}")
        let deletion = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=\(selector)&start=\(start / 1000)&end=\((start + 599_000) / 1000)",
                                                 headers: acme)
        XCTAssertEqual(deletion.status, 200, deletion.body)
        let deleted = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(deletion.body.utf8)) as? [String: Any])["samples"] as? Int
        XCTAssertGreaterThan(deleted ?? 0, 0)
        func tombstoned() throws -> [[String: Any]] {
            try stores.blocks(storage).filter { (($0["stats"] as? [String: Any])?["numTombstones"] as? Int ?? 0) > 0 }
        }
        func samplesInBlocks() throws -> Int {
            try stores.blocks(storage).reduce(0) { $0 + ((($1["stats"] as? [String: Any])?["numSamples"] as? Int) ?? 0) }
        }
        XCTAssertEqual(try tombstoned().count, 1)
        let before = try samplesInBlocks()

        let compact = try server.client.request("POST", "/api/v1/admin/compact", headers: acme)
        XCTAssertEqual(compact.status, 200, compact.body)
        XCTAssertTrue(compact.body.contains("\"merged\":[]"), "under the 5% rule, compaction leaves it: \(compact.body)")
        XCTAssertEqual(try tombstoned().count, 1)
        let plan = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme", "--clean-tombstones", "--dry-run"])
        XCTAssertTrue(plan.stdout.contains("step 1: deleted-data 1 blocks"), plan.stdout)
        // Another origin may not clean, as it may not delete.
        XCTAssertEqual(try server.client.request("POST", "/api/v1/admin/tsdb/clean_tombstones", headers: acme + [("Origin", "http://evil.example")]).status, 403)
        XCTAssertEqual(try tombstoned().count, 1)

        let expected = try tallyDump(storage: storage, tenant: "acme")
        let clean = try server.client.request("POST", "/api/v1/admin/tsdb/clean_tombstones", headers: acme)
        XCTAssertEqual(clean.status, 200, clean.body)
        XCTAssertTrue(clean.body.contains("\"reason\":\"deleted-data\""), clean.body)
        XCTAssertEqual(try tombstoned().count, 0)
        XCTAssertEqual(try samplesInBlocks(), before - (deleted ?? 0), "the deleted samples left the blocks")
        XCTAssertEqual(try server.client.request("PUT", "/api/v1/admin/tsdb/clean_tombstones", headers: acme).body.contains("\"merged\":[]"), true,
                       "nothing left to clean")
        server.stop(SIGTERM)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "acme"), expected)
        XCTAssertEqual(try BlockInteropTests.promtoolDump(storage + "/acme"), expected.split(separator: "\n").map(String.init).sorted())
        let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(verify.status, 0, verify.stdout)
    }

    private func iso8601(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
