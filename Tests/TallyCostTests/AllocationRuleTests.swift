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
        XCTAssertEqual(rows[0].cpu, 0.96, accuracy: 1e-12)
        XCTAssertEqual(rows[0].ram, 0.48, accuracy: 1e-12)
        XCTAssertEqual(rows[0].pv, 0.12, accuracy: 1e-12)
        XCTAssertEqual(rows[1].cpu, 1.92, accuracy: 1e-12)
        XCTAssertEqual(rows[1].ram, 0.24, accuracy: 1e-12)
        XCTAssertEqual(rows[2].cpu, 0.96, accuracy: 1e-12)
        XCTAssertEqual(rows[2].ram, 1.2, accuracy: 1e-12)
        let compute = rows.reduce(0) { $0 + $1.cpu + $1.ram + $1.gpu }
        let nodeCost = try XCTUnwrap(CostEngine(querier: q).daily(from: day, to: day, now: end).first).costs
        XCTAssertEqual(compute, nodeCost[.cpu] + nodeCost[.ram], accuracy: 1e-12)
        XCTAssertEqual(compute, 5.76, accuracy: 1e-12)

        let pods = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .pod, now: end)
        XCTAssertEqual(pods.map(\.name), ["a/a-1", "b/b-1", "b/b-2", AllocationRow.idleName])
        XCTAssertEqual(pods[2].cpu, 0.96, accuracy: 1e-12)
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
        XCTAssertEqual(rows[0].cpu, 1.92, accuracy: 1e-12)
        XCTAssertEqual(rows[1].cpu, 0)
    }
}
