import Foundation
import TallyLoad
import TallyWire
import XCTest

/// Daily rows of days held only in blocks are computed once, kept beside the blocks, and
/// computed again when late data lands on their day.
final class CostRollupTests: XCTestCase {
    func testRollupsAreReusedAndInvalidatedByLateData() throws {
        let root = try makeTemporaryDirectory("cost-rollup")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        let arguments = ["--ooo-window", "7d"]
        var server = try TallyServerProcess(storage: storage, extraArguments: arguments)
        try server.waitReady()
        let dataset = costDataset(days: 3)
        let tenant = [("THANOS-TENANT", "acme")]
        try push(dataset.requests(senders: 1)[0], to: server.client, headers: tenant)
        let days = (0..<3).map { utcDate(dataset.start + Int64($0) * 86_400_000) }
        typealias Answer = [String: (computedAt: String, row: [String: Double])]
        func ask() throws -> Answer {
            let r = try server.client.request("GET", "/api/v1/costs/daily?start=\(days[0])&end=\(days[2])", headers: tenant)
            XCTAssertEqual(r.status, 200, r.body)
            let rows = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["rows"] as? [[String: Any]])
            let numbers = try dailyRows(r.body)
            var out: [String: (String, [String: Double])] = [:]
            for row in rows {
                let key = "\(row["date"]!) \(row["cluster"]!)"
                out[key] = (row["computed_at"] as? String ?? "", numbers[key] ?? [:])
            }
            return out
        }
        let key0 = "\(days[0]) cluster-0", key1 = "\(days[1]) cluster-0", key2 = "\(days[2]) cluster-0"
        // The head keeps the last hours; the cuts of the rest finish in the background. Wait (bounded)
        // until days 0 and 1 are read back from their rollups (the same computed_at twice running)
        // while day 2, which still touches the head, is computed at each ask.
        func rolledUp(_ first: Answer, _ second: Answer) -> Bool {
            second[key0]?.computedAt == first[key0]?.computedAt && second[key1]?.computedAt == first[key1]?.computedAt
                && second[key2]?.computedAt != first[key2]?.computedAt
        }
        var first = try ask(), second = first
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && !rolledUp(first, second) {
            first = second
            usleep(100_000)
            second = try ask()
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: storage + "/acme/rollups/daily.json"))
        XCTAssertEqual(second[key0]?.computedAt, first[key0]?.computedAt, "day 0 read back from its rollup")
        XCTAssertEqual(second[key1]?.computedAt, first[key1]?.computedAt, "day 1 read back from its rollup")
        XCTAssertNotEqual(second[key2]?.computedAt, first[key2]?.computedAt, "day 2 still touches the head")
        for (key, value) in first { XCTAssertEqual(second[key]?.row, value.row, key) }

        // A load balancer of cluster-0 that lived an hour on day 1 arrives late: $1/h for 60 minutes.
        let noon = dataset.start + 86_400_000 + 12 * 3_600_000
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "kubecost_load_balancer_cost"), ("cluster_id", "cluster-0"), ("ingress_ip", "10.9.9.9"),
                                   ("namespace", "late"), ("service_name", "late")],
                          samples: (0...60).map { WireSample(timestamp: noon + Int64($0) * 60_000, valueBits: $0 == 60 ? 0x7ff0_0000_0000_0002 : 1.0.bitPattern) })
        // And one sent without cluster_id: left out, and said so whether the day is computed or read back.
        encoder.addSeries(labels: [("__name__", "kubecost_load_balancer_cost"), ("ingress_ip", "10.9.9.8"), ("namespace", "late"), ("service_name", "late")],
                          samples: [WireSample(timestamp: noon, valueBits: 1.0.bitPattern)])
        try push([encoder.compressed()], to: server.client, headers: tenant)
        let late = try ask()
        XCTAssertEqual(late[key1]?.row["load_balancer"] ?? 0, (first[key1]?.row["load_balancer"] ?? 0) + 1, accuracy: 1e-9)
        XCTAssertNotEqual(late[key1]?.computedAt, first[key1]?.computedAt)
        XCTAssertEqual(late[key0]?.computedAt, first[key0]?.computedAt, "day 0 does not depend on day 1's data")

        // Flushed into a block at a clean stop: day 1 is computed again from the new blocks and kept.
        server.stop(SIGTERM)
        server = try TallyServerProcess(storage: storage, extraArguments: arguments)
        try server.waitReady()
        let restarted = try ask()
        XCTAssertEqual(restarted[key1]?.row["load_balancer"] ?? 0, late[key1]?.row["load_balancer"] ?? -1, accuracy: 1e-12)
        XCTAssertEqual(restarted[key0]?.computedAt, first[key0]?.computedAt)
        let again = try ask()
        XCTAssertEqual(again[key1]?.computedAt, restarted[key1]?.computedAt)
        let warned = try server.client.request("GET", "/api/v1/costs/daily?start=\(days[1])&end=\(days[1])", headers: tenant)
        let warnings = (try JSONSerialization.jsonObject(with: Data(warned.body.utf8)) as? [String: Any])?["warnings"] as? [String]
        XCTAssertEqual(warnings?.count, 1, warned.body)
        XCTAssertTrue(warnings?.first?.hasPrefix("left out 1 series of kubecost_load_balancer_cost without a cluster_id label") == true, warned.body)
        XCTAssertTrue(warned.body.contains("\"computed_at\":\"\(again[key1]?.computedAt ?? "?")\""), "read back from the rollup: \(warned.body)")

        // Deleting the late load balancer gives its block tombstones: day 1 is computed again without
        // it (its rollup named the block without them), then read back from the new rollup.
        server.stop(SIGTERM)
        let deleted = try runCommand(Binaries.tally, ["delete-series", "--storage", storage, "--tenant", "acme", "--match", "{ingress_ip=\"10.9.9.9\"}"])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        server = try TallyServerProcess(storage: storage, extraArguments: arguments)
        try server.waitReady()
        let afterDeletion = try ask()
        XCTAssertEqual(afterDeletion[key1]?.row["load_balancer"] ?? -1, first[key1]?.row["load_balancer"] ?? 0, accuracy: 1e-9)
        XCTAssertNotEqual(afterDeletion[key1]?.computedAt, again[key1]?.computedAt, "computed again")
        XCTAssertEqual(afterDeletion[key0]?.computedAt, first[key0]?.computedAt, "day 0's blocks hold no tombstones")
        XCTAssertEqual(try ask()[key1]?.computedAt, afterDeletion[key1]?.computedAt, "read back from the new rollup")
        server.stop(SIGTERM)
    }
}
