import Foundation
import TallyLoad
import XCTest

/// The cost API against the PromQL form of the cost semantics, asked of a real Prometheus 2.42
/// holding the same pushed data.
final class CostDifferentialTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("prometheus")
    }

    func testEveryDayAndCategoryEqualsPrometheus() throws {
        let root = try makeTemporaryDirectory("cost-diff")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let prometheus = try PrometheusReceiver(directory: root)
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        let days = 3
        let dataset = costDataset(days: days)
        let requests = dataset.requests(senders: 1)[0]
        try push(requests, to: tally.client, headers: [("THANOS-TENANT", "acme")])
        try push(requests, to: prometheus.client)

        let first = utcDate(dataset.start), last = utcDate(dataset.start + Int64(days - 1) * 86_400_000)
        let answer = try tally.client.request("GET", "/api/v1/costs/daily?start=\(first)&end=\(last)", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(answer.status, 200, answer.body)
        let rows = try dailyRows(answer.body)
        XCTAssertEqual(rows.count, days * dataset.clusters)

        var compared = 0
        for category in CostPromQL.categories {
            for d in 0..<days {
                let dayStart = dataset.start + Int64(d) * 86_400_000
                let expected = try prometheus.query(CostPromQL.form(category), at: dayStart + 86_400_000 - 1)
                for c in 0..<dataset.clusters {
                    let cluster = "cluster-\(c)"
                    let want = expected[cluster] ?? 0
                    let got = try XCTUnwrap(rows["\(utcDate(dayStart)) \(cluster)"]?[category], "\(category) \(cluster)")
                    XCTAssertTrue(agree(got, want, within: 1e-9), "\(category) \(cluster) day \(d): tally \(got), prometheus \(want)")
                    if want != 0 { compared += 1 }
                }
            }
        }
        // Everything but gpu on nodes without one is a real non-zero figure.
        XCTAssertGreaterThanOrEqual(compared, 8 * days * dataset.clusters)
        // Sanity of the oracle itself: a whole day of the $0.10/h management fee.
        XCTAssertEqual(rows["\(first) cluster-0"]?["management"] ?? 0, 2.4, accuracy: 1e-9)

        // Allocation by namespace: every day, cluster, namespace and category against the per-namespace forms.
        let allocation = try tally.client.request("GET", "/api/v1/costs/allocation?start=\(first)&end=\(last)", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(allocation.status, 200, allocation.body)
        let groups = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(allocation.body.utf8)) as? [String: Any])?["rows"] as? [[String: Any]])
        var allocated: [String: [String: Double]] = [:]
        for row in groups where row["idle"] as? Bool == false && row["shared"] as? Bool == false {
            let key = "\(row["date"] as? String ?? "?") \(row["cluster"] as? String ?? "?") \(row["namespace"] as? String ?? "?")"
            allocated[key] = row.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
        var comparedGroups = 0
        for d in 0..<days {
            let dayStart = dataset.start + Int64(d) * 86_400_000
            var expected: [String: [String: Double]] = [:]
            for category in CostPromQL.allocationCategories {
                let field = category.hasPrefix("network_") ? "network" : category
                for (group, value) in try prometheus.query(CostPromQL.namespaceForm(category), at: dayStart + 86_400_000 - 1, by: ["cluster_id", "namespace"]) {
                    expected["\(utcDate(dayStart)) \(group)", default: [:]][field, default: 0] += value
                }
            }
            let keys = Set(expected.keys).union(allocated.keys.filter { $0.hasPrefix(utcDate(dayStart)) })
            for key in keys {
                for field in ["cpu", "ram", "gpu", "pv", "load_balancer", "network"] {
                    let got = allocated[key]?[field] ?? 0, want = expected[key]?[field] ?? 0
                    XCTAssertTrue(agree(got, want, within: 1e-9), "allocation \(key) \(field): tally \(got), prometheus \(want)")
                    if want != 0 { comparedGroups += 1 }
                }
            }
        }
        XCTAssertGreaterThanOrEqual(comparedGroups, days * dataset.clusters * 4)

        // Compacted blocks: Prometheus compacts its 2h blocks into 6h and 18h ones in the background
        // (once a minute). Those, imported into another tenant, answer the days they cover the same.
        let promData = root + "/data"
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline && !compactionLevels(promData).contains(where: { $0 >= 2 }) { usleep(500_000) }
        prometheus.server.stop()
        XCTAssertTrue(compactionLevels(promData).contains { $0 >= 2 }, "Prometheus compacted nothing within 3 minutes")
        let imported = try runCommand(Binaries.tally, ["import", "blocks", promData, "--storage", root + "/storage", "--tenant", "compacted"])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let second = utcDate(dataset.start + 86_400_000)
        let fromCompacted = try dailyRows(runCommand(Binaries.tally, ["costs", "daily", "--storage", root + "/storage", "--tenant", "compacted",
                                                                      "--from", first, "--to", second, "--format", "json"]).stdout)
        XCTAssertEqual(fromCompacted.count, 2 * dataset.clusters)
        for (key, row) in fromCompacted {
            for (field, value) in row where field != "complete" {
                let mine = rows[key]?[field] ?? .nan
                XCTAssertTrue(agree(value, mine, within: 1e-12), "compacted blocks: \(key) \(field) \(value) vs \(mine)")
            }
        }
    }

    /// `compaction.level` of every block in a Prometheus data directory.
    private func compactionLevels(_ directory: String) -> [Int] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory))?.compactMap { name in
            guard let data = FileManager.default.contents(atPath: directory + "/" + name + "/meta.json"),
                  let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return (meta["compaction"] as? [String: Any])?["level"] as? Int
        } ?? []
    }
}
