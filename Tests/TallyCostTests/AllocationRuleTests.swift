import TallyStorage
import XCTest
@testable import TallyCost

final class AllocationRuleTests: XCTestCase {
    let day = testDay

    func testNamespacesPlusIdleSumToTheNodeCost() throws {
        let (start, end) = (day.start, day.end)
        var q = MemoryQuerier()
        let ksm = ["cluster_id": "c1", "node": "n1"]
        q.add("kube_node_status_capacity_cpu_cores", ksm, from: start - hour, to: end + hour) { _ in 4 }
        q.add("kube_node_status_capacity_memory_bytes", ksm, from: start - hour, to: end + hour) { _ in 16 * gib }
        q.add("node_cpu_hourly_cost", node("n1"), from: start - hour, to: end + hour) { _ in 0.04 }
        q.add("node_ram_hourly_cost", node("n1"), from: start - hour, to: end + hour) { _ in 0.005 }
        func container(_ namespace: String, _ pod: String, cpu: Double, ramGiB: Double, hours: Int64 = 24) {
            let labels = ["cluster_id": "c1", "namespace": namespace, "pod": pod, "container": "app", "node": "n1", "instance": "n1"]
            q.add("container_cpu_allocation", labels, from: start - hour, to: start + hours * hour, stale: hours < 24) { _ in cpu }
            q.add("container_memory_allocation_bytes", labels, from: start - hour, to: start + hours * hour, stale: hours < 24) { _ in ramGiB * gib }
        }
        container("a", "a-1", cpu: 1, ramGiB: 4)
        container("b", "b-1", cpu: 1, ramGiB: 1)
        container("b", "b-2", cpu: 2, ramGiB: 2, hours: 12)
        q.add("pod_pvc_allocation", ["cluster_id": "c1", "namespace": "a", "pod": "a-1", "persistentvolumeclaim": "data", "persistentvolume": "pv-1"],
              from: start - hour, to: end + hour) { _ in 50 * gib }
        q.add("pv_hourly_cost", ["cluster_id": "c1", "persistentvolume": "pv-1"], from: start - hour, to: end + hour) { _ in 0.0001 }

        let rows = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .namespace, now: end)
        XCTAssertEqual(rows.map(\.name), ["a", "b", AllocationRow.idleName])
        // Node: cpu 4 x 0.04 x 24 = 3.84, ram 16 x 0.005 x 24 = 1.92.
        // a: cpu 1 x 0.04 x 24 = 0.96, ram 4 x 0.005 x 24 = 0.48, pv 50 x 0.0001 x 24 = 0.12
        // b: cpu (1 x 24 + 2 x 12) x 0.04 = 1.92, ram (1 x 24 + 2 x 12) x 0.005 = 0.24
        // idle: cpu 3.84 - 2.88 = 0.96, ram 1.92 - 0.72 = 1.2
        assertCosts(rows, [(0, .cpu, 0.96), (0, .ram, 0.48), (0, .pv, 0.12), (1, .cpu, 1.92), (1, .ram, 0.24), (2, .cpu, 0.96), (2, .ram, 1.2)])
        let compute = rows.reduce(0) { $0 + $1.costs[.cpu] + $1.costs[.ram] + $1.costs[.gpu] }
        let nodeCost = try XCTUnwrap(CostEngine(querier: q).daily(from: day, to: day, now: end).first).costs
        XCTAssertEqual(compute, nodeCost[.cpu] + nodeCost[.ram], accuracy: 1e-12)
        XCTAssertEqual(compute, 5.76, accuracy: 1e-12)

        let pods = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .pod, now: end)
        XCTAssertEqual(pods.map(\.name), ["a/a-1", "b/b-1", "b/b-2", AllocationRow.idleName])
        XCTAssertEqual(pods[2].costs[.cpu], 0.96, accuracy: 1e-12)
        let nodes = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .node, now: end)
        XCTAssertEqual(nodes.map(\.name), ["n1", AllocationRow.idleName])
        XCTAssertEqual(nodes[0].total, 0.96 + 0.48 + 0.12 + 1.92 + 0.24, accuracy: 1e-12)
    }

    func testOverAllocatedNodeHasNoNegativeIdle() throws {
        let (start, end) = (day.start, day.end)
        var q = MemoryQuerier()
        q.add("kube_node_status_capacity_cpu_cores", ["cluster_id": "c1", "node": "n1"], from: start - hour, to: end + hour) { _ in 1 }
        q.add("node_cpu_hourly_cost", node("n1"), from: start - hour, to: end + hour) { _ in 0.04 }
        q.add("container_cpu_allocation", ["cluster_id": "c1", "namespace": "a", "pod": "p", "container": "c", "node": "n1"],
              from: start - hour, to: end + hour) { _ in 2 }
        let rows = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .namespace, now: end)
        XCTAssertEqual(rows.map(\.name), ["a", AllocationRow.idleName])
        XCTAssertEqual(rows[0].costs[.cpu], 1.92, accuracy: 1e-12)
        XCTAssertEqual(rows[1].costs[.cpu], 0)
    }

    /// A credit (a negative price) leaves a negative idle where nothing is over-allocated, so the rows
    /// still add up to the daily row; over-allocated, its idle is zero as for a positive price.
    func testACreditLeavesANegativeIdleAndTheRowsAddUp() throws {
        let (start, end) = (day.start, day.end)
        for (cores, allocated, idle) in [(4.0, 1.0, -0.5 * 3 * 24), (1.0, 2.0, 0)] {
            var q = MemoryQuerier()
            q.add("kube_node_status_capacity_cpu_cores", ["cluster_id": "c1", "node": "n1"], from: start - hour, to: end + hour) { _ in cores }
            q.add("node_cpu_hourly_cost", node("n1"), from: start - hour, to: end + hour) { _ in -0.5 }
            q.add("container_cpu_allocation", ["cluster_id": "c1", "namespace": "a", "pod": "p", "container": "c", "node": "n1"],
                  from: start - hour, to: end + hour) { _ in allocated }
            let rows = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .namespace, now: end)
            XCTAssertEqual(rows.map(\.name), ["a", AllocationRow.idleName])
            XCTAssertEqual(rows[0].costs[.cpu], -0.5 * allocated * 24, accuracy: 1e-12)
            XCTAssertEqual(rows[1].costs[.cpu], idle, accuracy: 1e-12, "\(cores) cores, \(allocated) allocated")
            if allocated <= cores {
                let daily = try XCTUnwrap(CostEngine(querier: q).daily(from: day, to: day, now: end).first)
                XCTAssertEqual(rows[0].costs[.cpu] + rows[1].costs[.cpu], daily.costs[.cpu], accuracy: 1e-12)
            }
        }
    }

    /// Every category of the daily row is allocated: load balancers to their namespace, egress to
    /// its pod, the management fee to the shared row, an unclaimed part of a volume to idle. Under
    /// every aggregate the rows add up to the daily total.
    func testEveryCategoryIsAllocatedAndTheRowsAddUpToTheDailyTotal() throws {
        let (start, end) = (day.start, day.end)
        var q = MemoryQuerier()
        func all(_ name: String, _ labels: [String: String], value: Double) {
            q.add(name, labels, from: start - hour, to: end + hour) { _ in value }
        }
        all("kube_node_status_capacity_cpu_cores", ["cluster_id": "c1", "node": "n1"], value: 4)
        all("node_cpu_hourly_cost", node("n1"), value: 0.04)
        all("container_cpu_allocation", ["cluster_id": "c1", "namespace": "a", "pod": "a-1", "container": "app", "node": "n1"], value: 1)
        all("kube_persistentvolume_capacity_bytes", ["cluster_id": "c1", "persistentvolume": "pv-1"], value: 100 * gib)
        all("pv_hourly_cost", ["cluster_id": "c1", "persistentvolume": "pv-1"], value: 0.0001)
        all("pod_pvc_allocation", ["cluster_id": "c1", "namespace": "a", "pod": "a-1", "persistentvolumeclaim": "data", "persistentvolume": "pv-1"],
            value: 50 * gib)
        all("kubecost_load_balancer_cost", ["cluster_id": "c1", "namespace": "web", "service_name": "front", "ingress_ip": "1.2.3.4"], value: 0.025)
        all("kubecost_cluster_management_cost", ["cluster_id": "c1", "provisioner_name": "EKS"], value: 0.10)
        all("kubecost_network_internet_egress_cost", ["cluster_id": "c1"], value: 0.09)
        for (namespace, pod) in [("a", "a-1"), ("c", "c-1")] {
            q.add("kubecost_pod_network_egress_bytes_total", ["cluster_id": "c1", "namespace": namespace, "pod_name": pod, "internet": "true"],
                  from: start - hour, to: end + hour) { t in Double((t - start + hour) / hour) * gib }
        }
        let engine = CostEngine(querier: q)
        let daily = try XCTUnwrap(engine.daily(from: day, to: day, now: end + 3 * hour).first)

        let namespaces = try engine.allocation(from: day, to: day, aggregate: .namespace, now: end + 3 * hour)
        XCTAssertEqual(namespaces.map(\.name), ["a", "c", "web", AllocationRow.idleName, AllocationRow.sharedName])
        // a: cpu 1 x 0.04 x 24, pv 50 GiB x 0.0001 x 24, egress 1 GiB an hour (24 pairs) x $0.09.
        // c: its egress; web: its load balancer, $0.025 an hour; idle: 3 of the 4 cores and the
        // unclaimed 50 GiB of the volume; shared: the $0.10 an hour management fee.
        assertCosts(namespaces, [(0, .cpu, 0.96), (0, .pv, 0.12), (0, .network, 2.16), (1, .network, 2.16), (2, .loadBalancer, 0.6),
                                 (3, .cpu, 2.88), (3, .pv, 0.12), (4, .management, 2.4)])
        XCTAssertEqual(namespaces[4].total, 2.4, accuracy: 1e-12)

        let nodes = try engine.allocation(from: day, to: day, aggregate: .node, now: end + 3 * hour)
        XCTAssertEqual(nodes.map(\.name), ["n1", AllocationRow.idleName, AllocationRow.sharedName])
        // The load balancer and the egress of c-1, whose node is unknown, are the cluster's.
        XCTAssertEqual(nodes[2].total, 2.4 + 0.6 + 2.16, accuracy: 1e-12)
        let pods = try engine.allocation(from: day, to: day, aggregate: .pod, now: end + 3 * hour)
        XCTAssertEqual(pods.map(\.name), ["a/a-1", "c/c-1", AllocationRow.idleName, AllocationRow.sharedName])

        for rows in [namespaces, nodes, pods] {
            for category in CostCategory.allCases {
                XCTAssertEqual(rows.reduce(0) { $0 + $1.costs[category] }, daily.costs[category], accuracy: 1e-12, "\(category)")
            }
            XCTAssertEqual(rows.reduce(0) { $0 + $1.total }, daily.total, accuracy: 1e-12)
        }
    }

    /// Each expected (row index, category, dollars), to 1e-12.
    private func assertCosts(_ rows: [AllocationRow], _ expected: [(Int, CostCategory, Double)], file: StaticString = #filePath, line: UInt = #line) {
        for (i, category, dollars) in expected {
            XCTAssertEqual(rows[i].costs[category], dollars, accuracy: 1e-12, "\(rows[i].name) \(category)", file: file, line: line)
        }
    }
}
