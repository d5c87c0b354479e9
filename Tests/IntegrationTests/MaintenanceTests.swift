import Foundation
import TallyLoad
import XCTest

/// `tally blocks verify`, `tally retention` and `tally analyze` on real stores.
final class MaintenanceTests: XCTestCase {
    let stores = StoreFixture()

    func testVerifyNamesTheCorruptBlockAndSection() throws {
        let root = try makeTemporaryDirectory("verify")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let clean = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        XCTAssertTrue(clean.stdout.contains(", 0 failed"), clean.stdout)

        let blocks = try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted()
        XCTAssertGreaterThan(blocks.count, 3)
        for (block, file, section) in [(blocks[1], "chunks/000001", "chunks/000001"), (blocks[2], "index", "index")] {
            let path = storage + "/acme/" + block + "/" + file
            var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
            bytes[bytes.count / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: path))
            let broken = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
            XCTAssertEqual(broken.status, 1)
            let line = try XCTUnwrap(broken.stdout.split(separator: "\n").first { $0.contains(block) }, broken.stdout)
            XCTAssertTrue(line.contains("FAILED") && line.contains(section), String(line))
        }
        // Nothing was repaired or deleted.
        XCTAssertEqual(try stores.blocks(storage).count, blocks.count)

        // blocks[2] (its index broken) did not load: compaction keeps every child clear of its time,
        // read from its meta.json, and so leaves blocks[1] (an unreadable chunk) beside it as it
        // was too; it says so, fails, and still compacts the rest of the tenant.
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(compact.status, 1, compact.stdout)
        XCTAssertTrue(compact.stderr.contains("left as they were: block \(blocks[2]) is on disk but not loaded"), compact.stderr)
        let after = try stores.blocks(storage).compactMap { $0["ulid"] as? String }
        XCTAssertTrue(after.contains(blocks[1]) && after.contains(blocks[2]))
        XCTAssertLessThan(after.count, blocks.count / 2)
        let metas = try stores.blocks(storage)
        let unloaded = try XCTUnwrap(metas.first { $0["ulid"] as? String == blocks[2] })
        let (start, end) = (try XCTUnwrap(unloaded["minTime"] as? Int64), try XCTUnwrap(unloaded["maxTime"] as? Int64))
        for meta in metas where meta["ulid"] as? String != blocks[2] {
            XCTAssertFalse((meta["minTime"] as? Int64 ?? .max) < end && start < (meta["maxTime"] as? Int64 ?? .min), "\(meta) overlaps \(blocks[2])")
        }

        // With blocks[2]'s index mended (the flipped bit flipped back), the group holding the
        // unreadable chunk is tried, fails, and is left as it was, named.
        let indexPath = storage + "/acme/" + blocks[2] + "/index"
        var index = try XCTUnwrap(FileManager.default.contents(atPath: indexPath))
        index[index.count / 2] ^= 0x40
        try index.write(to: URL(fileURLWithPath: indexPath))
        let again = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(again.status, 1, again.stdout)
        XCTAssertTrue(again.stderr.contains("left as they were") && again.stderr.contains(blocks[1]) && !again.stderr.contains("not loaded"),
                      again.stderr)
        XCTAssertTrue(try stores.blocks(storage).contains { $0["ulid"] as? String == blocks[1] })
    }

    /// A meta.json naming another ULID than its directory (a neighbour's, say) is a corrupt block:
    /// verify names it, and the tenant does not load it.
    func testVerifyNamesABlockWhoseMetaNamesAnotherULID() throws {
        let root = try makeTemporaryDirectory("verify-ulid")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let blocks = try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted()
        XCTAssertGreaterThan(blocks.count, 3)
        let metaPath = storage + "/acme/" + blocks[3] + "/meta.json"
        let meta = try String(contentsOfFile: metaPath, encoding: .utf8)
        try meta.replacingOccurrences(of: blocks[3], with: blocks[0]).write(toFile: metaPath, atomically: true, encoding: .utf8)
        let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(verify.status, 1, verify.stdout)
        let line = try XCTUnwrap(verify.stdout.split(separator: "\n").first { $0.contains(blocks[3]) }, verify.stdout)
        XCTAssertTrue(line.contains("FAILED") && line.contains("meta.json") && line.contains("is not the block directory's name"), String(line))
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertTrue(compact.stderr.contains("block \(blocks[3]) is on disk but not loaded"), compact.stderr)
    }

    func testRetentionDropsWholeBlocksPastTheHorizonThroughTheServer() throws {
        let root = try makeTemporaryDirectory("retention")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let before = try stores.blocks(storage)
        let newest = before.compactMap { $0["maxTime"] as? Int64 }.max() ?? 0
        let expired = before.filter { ($0["maxTime"] as? Int64 ?? 0) <= newest - 86_400_000 }
        XCTAssertGreaterThan(expired.count, 0)
        let plan = try runCommand(Binaries.tally, ["retention", "--storage", storage, "--tenant", "acme", "--keep", "1d", "--dry-run"])
        XCTAssertTrue(plan.stdout.hasPrefix("would drop \(expired.count) blocks"), plan.stdout)
        XCTAssertEqual(try stores.blocks(storage).count, before.count)

        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s", "--web.enable-admin-api"])
        try server.waitReady()
        // The tenant header names the one tenant to work on, as for writes and reads.
        let other = try server.client.request("POST", "/api/v1/admin/retention?keep=1d", headers: [("THANOS-TENANT", "beta")])
        XCTAssertEqual(other.status, 404, other.body)
        XCTAssertEqual(try stores.blocks(storage).count, before.count)
        // So does a form body's `tenant` (what `curl -d tenant=beta` sends), never read as no tenant
        // and so every tenant; one that disagrees with the header is refused.
        let form = [("Content-Type", "application/x-www-form-urlencoded")]
        let inBody = try server.client.request("POST", "/api/v1/admin/retention?keep=1d", headers: form, body: Array("tenant=beta".utf8))
        XCTAssertEqual(inBody.status, 404, inBody.body)
        let disagreeing = try server.client.request("POST", "/api/v1/admin/retention", headers: form + [("THANOS-TENANT", "acme")],
                                                    body: Array("tenant=beta&keep=1d".utf8))
        XCTAssertEqual(disagreeing.status, 400, disagreeing.body)
        XCTAssertTrue(disagreeing.body.contains("tenant sources disagree"), disagreeing.body)
        let compactInBody = try server.client.request("POST", "/api/v1/admin/compact", headers: form, body: Array("tenant=beta".utf8))
        XCTAssertEqual(compactInBody.status, 404, compactInBody.body)
        XCTAssertEqual(try stores.blocks(storage).count, before.count)
        let run = try runCommand(Binaries.tally, ["retention", "--storage", storage, "--tenant", "acme", "--keep", "1d", "--server-port", String(server.port)])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("asked it to apply retention"), run.stdout)
        let after = try stores.blocks(storage)
        XCTAssertEqual(after.count, before.count - expired.count)
        XCTAssertTrue(after.allSatisfy { ($0["maxTime"] as? Int64 ?? 0) > newest - 86_400_000 })
        // The server stops reading the dropped blocks at once.
        let oldest = try server.client.request("GET", "/api/v1/costs/daily?start=\(utcDate(stores.dataset.start))&end=\(utcDate(stores.dataset.start))",
                                               headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(try dailyRows(oldest.body).values.reduce(0) { $0 + ($1["total"] ?? 0) }, 0)
        server.stop(SIGTERM)
    }

    func testAnalyzeCountsWhatDumpPrints() throws {
        let root = try makeTemporaryDirectory("analyze")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let dump = try tallyDump(storage: storage, tenant: "acme").split(separator: "\n")
        let series = Set(dump.map { $0[..<$0.lastIndex(of: "}")!] })
        let r = try runCommand(Binaries.tally, ["analyze", "--storage", storage, "--tenant", "acme", "--json", "--limit", "100"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["series"] as? Int, series.count)
        XCTAssertEqual(report["samples"] as? Int, dump.count)
        let metrics = try XCTUnwrap(report["metrics"] as? [[String: Any]])
        let cpu = try XCTUnwrap(metrics.first { $0["name"] as? String == "node_cpu_hourly_cost" })
        XCTAssertEqual(cpu["series"] as? Int, series.filter { $0.hasPrefix("{__name__=\"node_cpu_hourly_cost\"") }.count)
        // --all-tenants: one JSON line per tenant, the same report; blocks ls names each block's tenant.
        let all = try runCommand(Binaries.tally, ["analyze", "--storage", storage, "--all-tenants", "--json", "--limit", "100"])
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertEqual(all.stdout, r.stdout)
        let listed = try runCommand(Binaries.tally, ["blocks", "ls", "--storage", storage, "--all-tenants", "--json"])
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        XCTAssertFalse(rows.isEmpty)
        XCTAssertTrue(rows.allSatisfy { $0["tenant"] as? String == "acme" })
        // The replaced nodes and the upgraded label set churn; steady nodes do not.
        XCTAssertGreaterThan(cpu["churned"] as? Int ?? 0, 0)
        XCTAssertLessThan(cpu["churned"] as? Int ?? 0, cpu["series"] as? Int ?? 0)
    }
}
