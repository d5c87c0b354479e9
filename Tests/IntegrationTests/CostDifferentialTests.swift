import Foundation
import TallyLoad
import XCTest

/// The cost API against the PromQL form of the cost semantics, asked of a real Prometheus 2.42
/// holding the same pushed data.
final class CostDifferentialTests: XCTestCase {
    /// PromQL of each category: the de-duplicated (averaged per identity) price times quantity,
    /// summed over the day's one-minute grid, evaluated at the day's last millisecond.
    static func promql(_ category: String) -> String {
        func priced(_ price: String, _ quantity: String?, by identity: String, scale: String = "") -> String {
            let p = "avg by (cluster_id,\(identity)) (\(price))"
            let rate = quantity.map { "\(p) * on(cluster_id,\(identity)) avg by (cluster_id,\(identity)) (\($0))\(scale)" } ?? p
            return "sum by (cluster_id) (sum_over_time((\(rate))[1d:1m])) / 60"
        }
        func network(_ selector: String, _ price: String) -> String {
            let counter = "kubecost_pod_network_egress_bytes_total\(selector)"
            // The increase between consecutive one-minute samples; a drop is a reset (the later value).
            let increase = "((\(counter) - \(counter) offset 1m) >= 0 or (\(counter) and \(counter) offset 1m))"
            return "sum by (cluster_id) (sum_over_time((sum by (cluster_id) (\(increase)) * on(cluster_id) avg by (cluster_id) (\(price)))[1d:1m])) / 1073741824"
        }
        switch category {
        case "cpu": return priced("node_cpu_hourly_cost", "kube_node_status_capacity_cpu_cores", by: "node")
        case "ram": return priced("node_ram_hourly_cost", "kube_node_status_capacity_memory_bytes", by: "node", scale: " / 1073741824")
        case "gpu": return priced("node_gpu_hourly_cost", "node_gpu_count", by: "node")
        case "pv": return priced("pv_hourly_cost", "kube_persistentvolume_capacity_bytes", by: "persistentvolume", scale: " / 1073741824")
        case "load_balancer": return priced("kubecost_load_balancer_cost", nil, by: "namespace,service_name,ingress_ip")
        case "management": return priced("kubecost_cluster_management_cost", nil, by: "provisioner_name")
        case "network_zone": return network("{internet=\"false\",same_zone=\"false\",same_region=\"true\"}", "kubecost_network_zone_egress_cost")
        case "network_region": return network("{internet=\"false\",same_zone=\"false\",same_region=\"false\"}", "kubecost_network_region_egress_cost")
        default: return network("{internet=\"true\"}", "kubecost_network_internet_egress_cost")
        }
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
        for category in ["cpu", "ram", "gpu", "pv", "load_balancer", "management", "network_zone", "network_region", "network_internet"] {
            for d in 0..<days {
                let dayStart = dataset.start + Int64(d) * 86_400_000
                let expected = try prometheus.query(Self.promql(category), at: dayStart + 86_400_000 - 1)
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
    }
}
