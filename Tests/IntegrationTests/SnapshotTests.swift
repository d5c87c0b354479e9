import Foundation
import TallyLoad
import TallyStorage
import TallyWire
import XCTest

/// `POST /api/v1/admin/tsdb/snapshot`: the tenant's data as it was at the call, in
/// `<tenant>/snapshots/<name>/`, read by promtool 2.42 as the samples written, whatever happens to
/// the tenant afterwards.
final class SnapshotTests: XCTestCase {
    private let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]

    private func inode(_ path: String) throws -> UInt64 {
        try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: path))[.systemFileNumber] as? UInt64)
    }

    func testASnapshotHoldsTheBlocksAndTheHeadAsTheyWereAndOutlivesThem() throws {
        _ = try Binaries.debian("promtool")
        let storage = try makeTemporaryDirectory("snapshot")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s", "--web.enable-admin-api"])
        defer { server.stop(SIGTERM) }
        try server.waitReady()
        let acme = [("THANOS-TENANT", "acme")]
        var expected: [String] = []
        func write(_ tenant: String, _ series: [(Int, [WireSample])]) throws {
            var encoder = WriteRequestEncoder()
            for (s, samples) in series {
                encoder.addSeries(labels: [("__name__", "snapshot_test"), ("series", String(s))], samples: samples)
                if tenant == "acme" {
                    expected += samples.map { "{__name__=\"snapshot_test\", series=\"\(s)\"} \(GoFormat.float(Double(bitPattern: $0.valueBits))) \($0.timestamp)" }
                }
            }
            let answer = try server.client.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", tenant)], body: encoder.compressed())
            XCTAssertEqual(answer.status, 204, answer.body)
        }
        // Six hours of four series a minute apart, ending now: the head cuts its oldest hours into blocks.
        let now = Int64(Date().timeIntervalSince1970) / 60 * 60_000
        let minutes = (0..<360).map { now - Int64(359 - $0) * 60_000 }
        try write("acme", (0..<4).map { s in (s, minutes.map { WireSample(timestamp: $0, valueBits: Double($0 / 60_000 % 97 + Int64(s)).bitPattern) }) })
        try write("beta", [(9, minutes.suffix(5).map { WireSample(timestamp: $0, valueBits: 1.0.bitPattern) })])
        var blocks: [BlockListing] = []
        for _ in 0..<500 where blocks.isEmpty {
            usleep(20_000)
            blocks = (try? BlockCatalog.list(tenantDirectory: storage + "/acme")) ?? []
        }
        XCTAssertFalse(blocks.isEmpty, "the head cut a block")
        // Late samples, in the head's range and in a block's: out-of-order data the snapshot keeps too.
        try write("acme", [(0, [WireSample(timestamp: minutes[340] + 30_000, valueBits: 0.5.bitPattern)]),
                           (1, [WireSample(timestamp: minutes[10] + 30_000, valueBits: (-0.0).bitPattern)])])

        let answer = try server.client.request("POST", "/api/v1/admin/tsdb/snapshot", headers: acme)
        XCTAssertEqual(answer.status, 200, answer.body)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(answer.bytes)) as? [String: Any])
        XCTAssertEqual(object["status"] as? String, "success")
        let name = try XCTUnwrap((object["data"] as? [String: String])?["name"], answer.body)
        XCTAssertNotNil(name.range(of: #"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}$"#, options: .regularExpression), name)
        let snapshot = storage + "/acme/snapshots/" + name
        let atSnapshot = expected.sorted()
        XCTAssertEqual(try BlockInteropTests.promtoolDump(snapshot), atSnapshot, "promtool reads the samples written, beta's none")
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/beta/snapshots"), "a snapshot of acme only")
        // The blocks are links, not copies.
        let first = try XCTUnwrap(blocks.first).meta.ulid
        XCTAssertEqual(try inode(snapshot + "/" + first + "/index"), try inode(storage + "/acme/" + first + "/index"))
        XCTAssertEqual(try inode(snapshot + "/" + first + "/chunks/000001"), try inode(storage + "/acme/" + first + "/chunks/000001"))

        // Without the head: the blocks alone, as they are at the call.
        let blocksOnly = try server.client.request("PUT", "/api/v1/admin/tsdb/snapshot?skip_head=true", headers: acme)
        XCTAssertEqual(blocksOnly.status, 200, blocksOnly.body)
        let blocksName = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(blocksOnly.bytes)) as? [String: Any])?["data"] as? [String: String])?["name"])
        let tenantBlocks = try BlockCatalog.list(tenantDirectory: storage + "/acme").map(\.meta.ulid)
        XCTAssertEqual(try BlockCatalog.list(tenantDirectory: storage + "/acme/snapshots/" + blocksName).map(\.meta.ulid), tenantBlocks)
        let blockLines = try BlockInteropTests.promtoolDump(storage + "/acme/snapshots/" + blocksName)
        XCTAssertFalse(blockLines.isEmpty)
        XCTAssertLessThan(blockLines.count, expected.count)
        XCTAssertTrue(Set(blockLines).isSubset(of: Set(expected)))

        // Later writes, a retention that drops every block and a restart change nothing in it.
        try write("acme", [(2, [WireSample(timestamp: now + 60_000, valueBits: 7.0.bitPattern)])])
        let retention = try server.client.request("POST", "/api/v1/admin/retention?keep=1h", headers: acme)
        XCTAssertEqual(retention.status, 200, retention.body)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/acme/" + first), "retention removed the block")
        XCTAssertEqual(try BlockInteropTests.promtoolDump(snapshot), atSnapshot)
        XCTAssertEqual(filesUnder(storage + "/acme/snapshots").filter { $0.hasSuffix(".tmp") }, [])

        // Refusals: a skip_head Go cannot parse, a tenant that does not exist, another origin.
        let bad = try server.client.request("POST", "/api/v1/admin/tsdb/snapshot?skip_head=yes", headers: acme)
        XCTAssertEqual(bad.status, 400, bad.body)
        XCTAssertEqual(bad.body, #"{"status":"error","errorType":"bad_data","error":"unable to parse boolean 'skip_head' argument: strconv.ParseBool: parsing \"yes\": invalid syntax"}"#)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/admin/tsdb/snapshot?tenant=nobody").status, 404)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/nobody"))
        XCTAssertEqual(try server.client.request("POST", "/api/v1/admin/tsdb/snapshot", headers: acme + [("Origin", "http://evil.example")]).status, 403)
        // No tenant named: every tenant, under one name.
        let every = try server.client.request("POST", "/api/v1/admin/tsdb/snapshot", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                              body: Array("skip_head=1".utf8))
        XCTAssertEqual(every.status, 200, every.body)
        let everyName = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(every.bytes)) as? [String: Any])?["data"] as? [String: String])?["name"])
        for tenant in ["acme", "beta"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(storage)/\(tenant)/snapshots/\(everyName)"), tenant)
        }
    }

    /// `tally snapshot`: on a stopped store this process writes it; with a server on the store, the
    /// server is asked. Either way promtool reads the samples written.
    func testTallySnapshotWritesItAloneOrAsksTheServer() throws {
        _ = try Binaries.debian("promtool")
        let storage = try makeTemporaryDirectory("snapshot-cli")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        var server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        let now = Int64(Date().timeIntervalSince1970) / 60 * 60_000
        let samples = (0..<30).map { WireSample(timestamp: now - Int64(29 - $0) * 60_000, valueBits: Double($0).bitPattern) }
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "snapshot_cli"), ("pod", "a")], samples: samples)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", "acme")], body: encoder.compressed()).status, 204)
        let expected = samples.map { "{__name__=\"snapshot_cli\", pod=\"a\"} \(GoFormat.float(Double(bitPattern: $0.valueBits))) \($0.timestamp)" }.sorted()
        server.stop(SIGTERM)

        func name(_ json: String) throws -> String {
            let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            return try XCTUnwrap((object?["data"] as? [String: String])?["name"], json)
        }
        let alone = try runCommand(Binaries.tally, ["snapshot", "--storage", storage, "--tenant", "acme", "--json"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        let first = try name(alone.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(try BlockInteropTests.promtoolDump(storage + "/acme/snapshots/" + first), expected)

        server = try TallyServerProcess(storage: storage)
        defer { server.stop(SIGTERM) }
        try server.waitReady()
        let asked = try runCommand(Binaries.tally, ["snapshot", "--storage", storage, "--all-tenants"])
        XCTAssertEqual(asked.status, 0, asked.stderr)
        XCTAssertTrue(asked.stdout.contains("asked it to snapshot"), asked.stdout)
        let row = try XCTUnwrap(asked.stdout.split(separator: "\n").first { $0.hasPrefix("acme") }, asked.stdout)
        let second = String(try XCTUnwrap(row.split(separator: " ").last))
        XCTAssertNotEqual(second, first)
        XCTAssertEqual(try BlockInteropTests.promtoolDump(storage + "/acme/snapshots/" + second), expected)
        let blocksOnly = try runCommand(Binaries.tally, ["snapshot", "--storage", storage, "--tenant", "acme", "--skip-head", "--json"])
        XCTAssertEqual(blocksOnly.status, 0, blocksOnly.stderr)
        let third = try name(blocksOnly.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: storage + "/acme/snapshots/" + third), [], "no block yet, and the head left out")
        XCTAssertNotEqual(try runCommand(Binaries.tally, ["snapshot", "--storage", storage, "--tenant", "nobody"]).status, 0)
    }
}
