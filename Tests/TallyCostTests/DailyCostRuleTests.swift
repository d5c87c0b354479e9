import TallyStorage
import TallyTestSupport
import XCTest
@testable import TallyCost

/// Each rule of the cost semantics with an expectation computed by hand in the comment above it.
final class DailyCostRuleTests: XCTestCase {
    let day = testDay
    var start: Int64 { day.start }
    var end: Int64 { day.end }

    func row(_ q: MemoryQuerier, cluster: String = "c1", calendar day: CostDay? = nil) throws -> DailyClusterCost {
        let d = day ?? self.day
        let rows = try CostEngine(querier: q).daily(from: d, to: d, now: d.end + 3 * hour)
        return try XCTUnwrap(rows.first { $0.cluster == cluster })
    }

    /// A node with 4 cores and a ram capacity of 16 GiB, a value every minute all day.
    func capacities(_ q: inout MemoryQuerier, _ name: String, cores: Double = 4, from: Int64? = nil, to: Int64? = nil, stale: Bool = false) {
        let labels = ["cluster_id": "c1", "node": name, "instance": "ksm:8080"]
        q.add("kube_node_status_capacity_cpu_cores", labels, from: from ?? start - hour, to: to ?? end + hour, stale: stale) { _ in cores }
        q.add("kube_node_status_capacity_memory_bytes", labels, from: from ?? start - hour, to: to ?? end + hour, stale: stale) { _ in 16 * gib }
    }

    func testPriceChangeMidDay() throws {
        var q = MemoryQuerier()
        capacities(&q, "n1")
        q.add("node_cpu_hourly_cost", node("n1"), from: start - hour, to: end + hour) { $0 < self.start + 12 * hour ? 0.04 : 0.05 }
        // 4 cores x (0.04 x 12 h + 0.05 x 12 h) = 4.32
        let r = try row(q)
        XCTAssertEqual(r.costs[.cpu], 4.32, accuracy: 1e-12)
        XCTAssertEqual(r.coveredMinutes[.cpu], 1440)
        XCTAssertEqual(r.total, 4.32, accuracy: 1e-12)
        XCTAssertTrue(r.complete)
    }

    func testNodeStartingLateAndEndingWithAStalenessMarker() throws {
        var q = MemoryQuerier()
        capacities(&q, "n1", cores: 2, from: start + 6 * hour, to: start + 18 * hour, stale: true)
        q.add("node_cpu_hourly_cost", node("n1"), from: start + 6 * hour, to: start + 18 * hour, stale: true) { _ in 0.1 }
        // 2 cores x 0.1 x 12 h = 2.4; the marker ends it at 18:00, not the lookback at 18:04.
        let r = try row(q)
        XCTAssertEqual(r.costs[.cpu], 2.4, accuracy: 1e-12)
        XCTAssertEqual(r.coveredMinutes[.cpu], 720)
    }

    func testGapLongerThanTheLookbackContributesNothing() throws {
        var q = MemoryQuerier()
        capacities(&q, "n1", cores: 1)
        var samples: [Sample] = []
        for t in stride(from: start - hour, to: end + hour, by: Int64.Stride(minute)) where !(t > start + 10 * hour && t < start + 11 * hour) {
            samples.append(Sample(timestamp: t, valueBits: 0.06.bitPattern))
        }
        q.add("node_cpu_hourly_cost", node("n1"), samples)
        // The 10:00 sample holds to 10:05; 10:05-11:00 (55 min) has no price: 0.06 x (24 h - 55 min).
        let r = try row(q)
        XCTAssertEqual(r.costs[.cpu], 0.06 * (24 - 55.0 / 60), accuracy: 1e-12)
        XCTAssertEqual(r.coveredMinutes[.cpu], 1440 - 55)
    }

    func testTwoSeriesOfOneNodeAreAveragedNotSummed() throws {
        var q = MemoryQuerier()
        capacities(&q, "n1", cores: 1)
        // Old label set until its marker at 12:00; the upgraded one (with arch) from 11:00.
        q.add("node_cpu_hourly_cost", node("n1"), from: start - hour, to: start + 12 * hour, stale: true) { _ in 0.04 }
        q.add("node_cpu_hourly_cost", node("n1", extra: ["arch": "amd64"]), from: start + 11 * hour, to: end + hour) { _ in 0.06 }
        // 0.04 x 11 h + (0.04 + 0.06) / 2 x 1 h + 0.06 x 12 h = 0.44 + 0.05 + 0.72 = 1.21 (a sum would give 1.26)
        let r = try row(q)
        XCTAssertEqual(r.costs[.cpu], 1.21, accuracy: 1e-12)
        XCTAssertEqual(r.coveredMinutes[.cpu], 1440)
    }

    func testCopiesAtPricesNearTheLargestDoubleAverageWithoutOverflow() throws {
        var q = MemoryQuerier()
        let balancer = ["cluster_id": "c1", "namespace": "a", "service_name": "s", "ingress_ip": "10.0.0.1"]
        // Two copies at 1e308 $/h for an hour (with its marker): their sum overflows, their average
        // does not. 1e308 x 1 h.
        for job in ["a", "b"] {
            q.add("kubecost_load_balancer_cost", balancer.merging(["job": job]) { $1 }, from: start, to: start + hour, stale: true) { _ in 1e308 }
        }
        let r = try row(q)
        XCTAssertEqual(r.costs[.loadBalancer], 1e308, accuracy: 1e296)
        XCTAssertEqual(r.total, 1e308, accuracy: 1e296)
        // A sum that overflows stays infinite, never NaN.
        var sum = NeumaierSum()
        for x in [1e308, 1e308, -1.0] { sum.add(x) }
        XCTAssertEqual(sum.value, .infinity)
    }

    func testSpotAndOnDemandNodesEachAtTheirOwnPrice() throws {
        var q = MemoryQuerier()
        capacities(&q, "spot-1")
        capacities(&q, "ondemand-1")
        q.add("node_cpu_hourly_cost", node("spot-1"), from: start - hour, to: end + hour) { _ in 0.0095 }
        q.add("node_cpu_hourly_cost", node("ondemand-1"), from: start - hour, to: end + hour) { _ in 0.0316 }
        q.add("kubecost_node_is_spot", node("spot-1"), from: start - hour, to: end + hour) { _ in 1 }
        q.add("kubecost_node_is_spot", node("ondemand-1"), from: start - hour, to: end + hour) { _ in 0 }
        q.add("node_ram_hourly_cost", node("spot-1"), from: start - hour, to: end + hour) { _ in 0.001 }
        q.add("node_ram_hourly_cost", node("ondemand-1"), from: start - hour, to: end + hour) { _ in 0.004 }
        // cpu: 4 x 24 x (0.0095 + 0.0316) = 3.9456; ram: 16 GiB x 24 x (0.001 + 0.004) = 1.92
        let r = try row(q)
        XCTAssertEqual(r.costs[.cpu], 3.9456, accuracy: 1e-12)
        XCTAssertEqual(r.costs[.ram], 1.92, accuracy: 1e-12)
        XCTAssertEqual(r.total, 5.8656, accuracy: 1e-12)
    }

    func testNetworkCounterResetAndPairsAcrossMidnight() throws {
        var q = MemoryQuerier()
        let labels = ["cluster_id": "c1", "namespace": "a", "pod_name": "p", "internet": "true", "same_zone": "false", "same_region": "false"]
        // One sample a minute from 23:59 the day before: +1 GiB a minute, reset to 0.5 GiB at 12:00.
        q.add("kubecost_pod_network_egress_bytes_total", labels, from: start - minute, to: end + hour) { t in
            let i = (t - self.start) / minute
            return i < 720 ? Double(i + 1) * gib : (Double(i - 720) + 0.5) * gib
        }
        q.add("kubecost_network_internet_egress_cost", ["cluster_id": "c1"], from: start - hour, to: end + hour) { _ in 0.09 }
        q.add("kubecost_network_zone_egress_cost", ["cluster_id": "c1"], from: start - hour, to: end + hour) { _ in 0.01 }
        // Pairs whose later sample is in the day: 00:00 ... 23:59, 1440 of them. 720 x 1 GiB, the
        // reset at 12:00 counts 0.5 GiB, then 719 x 1 GiB: 1439.5 GiB x 0.09 = 129.555.
        let r = try row(q)
        XCTAssertEqual(r.network[.internet] ?? -1, 129.555, accuracy: 1e-9)
        XCTAssertEqual(r.network[.zone] ?? 0, 0)
        XCTAssertEqual(r.costs[.network], 129.555, accuracy: 1e-9)
        XCTAssertEqual(r.coveredMinutes[.network], 1440)
    }

    func testNetworkNeedsAPrice() throws {
        var q = MemoryQuerier()
        q.add("kubecost_pod_network_egress_bytes_total", ["cluster_id": "c1", "namespace": "a", "pod_name": "p", "same_zone": "false", "same_region": "true"],
              from: start - minute, to: end) { t in Double(t - self.start) }
        let r = try row(q)
        XCTAssertEqual(r.costs[.network], 0)
        XCTAssertEqual(r.coveredMinutes[.network], 0)
    }

    func testCopiesOfOneEgressCounterAreAveragedNotSummed() throws {
        var q = MemoryQuerier()
        let egress = "kubecost_pod_network_egress_bytes_total"
        let flow = ["cluster_id": "c1", "namespace": "a", "pod_name": "p", "same_zone": "false", "same_region": "true", "service": "db"]
        func bytes(_ t: Int64) -> Double { Double((t - self.start) / minute + 1) * gib }
        // +1 GiB a minute, scraped by job a all day and by job b (the same values) from 06:00 to its
        // marker at 18:00.
        q.add(egress, flow.merging(["job": "a"]) { $1 }, from: start - minute, to: end + hour, value: bytes)
        q.add(egress, flow.merging(["job": "b"]) { $1 }, from: start + 6 * hour, to: start + 18 * hour, stale: true, value: bytes)
        // Another service of the same pod is another flow: +0.5 GiB a minute, added.
        q.add(egress, flow.merging(["service": "cache"]) { $1 }, from: start - minute, to: end + hour) { bytes($0) / 2 }
        q.add("kubecost_network_zone_egress_cost", ["cluster_id": "c1"], from: start - hour, to: end + hour) { _ in 0.01 }
        // db: 1440 pairs of 1 GiB (from 06:01 to 17:59 each copy's pair counts half); cache: 1440 x
        // 0.5 GiB. (1440 + 720) GiB x $0.01 = 21.6; summing the copies would add 719 GiB (28.79).
        let r = try row(q)
        XCTAssertEqual(r.network[.zone] ?? -1, 21.6, accuracy: 1e-9)
        XCTAssertEqual(r.coveredMinutes[.network], 1440)
    }

    func testDayBoundaryUnderAFixedOffset() throws {
        var q = MemoryQuerier()
        capacities(&q, "n1", cores: 1, from: start - 24 * hour, to: end + 24 * hour)
        q.add("node_cpu_hourly_cost", node("n1"), from: start - 24 * hour, to: end + 24 * hour) { $0 < self.start + 12 * hour ? 0.1 : 0.2 }
        // UTC day: 0.1 x 12 + 0.2 x 12 = 3.6.
        XCTAssertEqual(try row(q).costs[.cpu], 3.6, accuracy: 1e-12)
        // The +05:30 day of the same date is [prev 18:30Z, 18:30Z): 0.1 x 17.5 h + 0.2 x 6.5 h = 3.05.
        let calendar = try XCTUnwrap(CostCalendar(parsing: "+05:30"))
        let local = try XCTUnwrap(CostDay(parsing: "2024-03-10", calendar: calendar))
        XCTAssertEqual(local.start, start - 330 * minute)
        XCTAssertEqual(try row(q, calendar: local).costs[.cpu], 3.05, accuracy: 1e-12)
        XCTAssertEqual(CostCalendar(parsing: " 05:30"), calendar)
        XCTAssertEqual(CostCalendar(parsing: "-0800")?.offsetMinutes, -480)
        XCTAssertNil(CostCalendar(parsing: "+5:30"))
        XCTAssertNil(CostCalendar(parsing: "+25:00"))
    }

    func testPersistentVolumes() throws {
        var q = MemoryQuerier()
        for (pv, hours) in [("pv-a", 24), ("pv-b", 12)] {
            let labels = ["cluster_id": "c1", "persistentvolume": pv]
            q.add("pv_hourly_cost", labels.merging(["volumename": pv]) { $1 }, from: start - hour, to: start + Int64(hours) * hour, stale: hours < 24) { _ in 0.0001 }
            q.add("kube_persistentvolume_capacity_bytes", labels, from: start - hour, to: end + hour) { _ in 100 * gib }
        }
        // 100 GiB x 0.0001 $/GiB-h = 0.01 $/h: pv-a 0.24, pv-b (deleted at noon) 0.12.
        let r = try row(q)
        XCTAssertEqual(r.costs[.pv], 0.36, accuracy: 1e-12)
        XCTAssertEqual(r.coveredMinutes[.pv], 1440)
    }

    func testLoadBalancersAndManagementFee() throws {
        var q = MemoryQuerier()
        q.add("kubecost_load_balancer_cost", ["cluster_id": "c1", "namespace": "web", "service_name": "front", "ingress_ip": "1.2.3.4"],
              from: start - hour, to: end + hour) { _ in 0.025 }
        q.add("kubecost_load_balancer_cost", ["cluster_id": "c1", "namespace": "web", "service_name": "api", "ingress_ip": "1.2.3.5"],
              from: start + 12 * hour, to: end + hour) { _ in 0.025 }
        q.add("kubecost_cluster_management_cost", ["cluster_id": "c1", "provisioner_name": "EKS"], from: start - hour, to: end + hour) { _ in 0.10 }
        // LBs: 0.025 x 24 + 0.025 x 12 = 0.9; management 0.10 x 24 = 2.4.
        let r = try row(q)
        XCTAssertEqual(r.costs[.loadBalancer], 0.9, accuracy: 1e-12)
        XCTAssertEqual(r.costs[.management], 2.4, accuracy: 1e-12)
        XCTAssertEqual(r.total, 3.3, accuracy: 1e-12)
    }

    func testSeriesWithoutAJoinLabelAreLeftOutAndListedOnce() throws {
        var q = MemoryQuerier()
        q.add("kubecost_cluster_management_cost", ["cluster_id": "c1", "provisioner_name": "EKS"], from: start - hour, to: end + hour) { _ in 0.10 }
        q.add("kubecost_cluster_management_cost", ["provisioner_name": "GKE"], from: start - hour, to: end + hour) { _ in 0.10 }
        q.add("node_cpu_hourly_cost", ["cluster_id": "c1", "instance": "n9"], from: start - hour, to: end + hour) { _ in 0.04 }
        q.add("kubecost_pod_network_egress_bytes_total", ["cluster_id": "c1", "namespace": "a", "internet": "true"],
              from: start - hour, to: end + hour) { t in Double(t - self.start) }
        let engine = CostEngine(querier: q)
        // Two days asked: each series is still counted once.
        let rows = try engine.daily(from: day, to: day.advanced(by: 1), now: end + 30 * hour)
        XCTAssertEqual(Set(rows.map(\.cluster)), ["c1"])
        XCTAssertEqual(rows[0].costs[.management], 2.4, accuracy: 1e-12)
        XCTAssertEqual(rows[0].costs[.cpu], 0)
        XCTAssertEqual(engine.leftOut.count, 3)
        XCTAssertEqual(engine.leftOut.warnings, [
            "left out 1 series of kubecost_cluster_management_cost without a cluster_id label, e.g. {__name__=\"kubecost_cluster_management_cost\", provisioner_name=\"GKE\"}",
            "left out 1 series of kubecost_pod_network_egress_bytes_total without a pod_name label, e.g. "
                + "{__name__=\"kubecost_pod_network_egress_bytes_total\", cluster_id=\"c1\", internet=\"true\", namespace=\"a\"}",
            "left out 1 series of node_cpu_hourly_cost without a node label, e.g. {__name__=\"node_cpu_hourly_cost\", cluster_id=\"c1\", instance=\"n9\"}",
        ])
        // Asked for one cluster, a series without any cluster is not that cluster's business.
        let one = CostEngine(querier: q)
        _ = try one.daily(from: day, to: day, cluster: "c1", now: end + 3 * hour)
        XCTAssertEqual(one.leftOut.count, 2)
    }

    /// A question asked at 10:30 counts 10.5 hours, though every sample holds 5 minutes and the
    /// sender is 5 minutes ahead of the server's clock.
    func testNoMinuteAfterTheQuestionIsCounted() throws {
        let now = start + 10 * hour + 30 * minute
        var q = MemoryQuerier()
        q.add("kubecost_cluster_management_cost", ["cluster_id": "c1", "provisioner_name": "EKS"], from: start - hour, to: now + 5 * minute) { _ in 0.10 }
        let labels = ["cluster_id": "c1", "namespace": "a", "pod_name": "p", "internet": "true"]
        q.add("kubecost_pod_network_egress_bytes_total", labels, from: start - minute, to: now + 5 * minute) { t in Double((t - self.start) / minute + 1) * gib }
        q.add("kubecost_network_internet_egress_cost", ["cluster_id": "c1"], from: start - hour, to: now + 5 * minute) { _ in 0.09 }
        let r = try XCTUnwrap(CostEngine(querier: q).daily(from: day, to: day, now: now).first)
        XCTAssertEqual(r.costs[.management], 1.05, accuracy: 1e-12)
        XCTAssertEqual(r.coveredMinutes[.management], 630)
        // One GiB a minute: pairs whose later sample is at 00:00 ... 10:29, 630 of them, at $0.09.
        XCTAssertEqual(r.costs[.network], 630 * 0.09, accuracy: 1e-9)
        XCTAssertEqual(r.coveredMinutes[.network], 630)
        XCTAssertFalse(r.complete)
        let allocation = try CostEngine(querier: q).allocation(from: day, to: day, aggregate: .namespace, now: now)
        XCTAssertEqual(allocation.map(\.name), ["a", AllocationRow.sharedName])
        XCTAssertEqual(allocation[0].costs[.network], 630 * 0.09, accuracy: 1e-9)
        XCTAssertEqual(allocation[1].costs[.management], 1.05, accuracy: 1e-12)
    }

    func testEveryClusterGetsARowForEveryDay() throws {
        var q = MemoryQuerier()
        q.add("kubecost_cluster_management_cost", ["cluster_id": "a", "provisioner_name": "EKS"], from: start, to: end) { _ in 0.10 }
        q.add("kubecost_cluster_management_cost", ["cluster_id": "b", "provisioner_name": "EKS"], from: end, to: end + 24 * hour) { _ in 0.10 }
        let rows = try CostEngine(querier: q).daily(from: day, to: day.advanced(by: 1), now: end + 3 * hour)
        XCTAssertEqual(rows.map { "\($0.day.date) \($0.cluster) \($0.complete)" },
                       ["2024-03-10 a true", "2024-03-10 b true", "2024-03-11 a false", "2024-03-11 b false"])
        XCTAssertEqual(rows[1].costs[.management], 0)
        // a's last sample at 23:59 holds for the lookback, 4 minutes into the next day.
        XCTAssertEqual(rows[2].costs[.management], 0.10 * 4 / 60, accuracy: 1e-15)
        // The second day is counted up to the moment of the question, 03:00.
        XCTAssertEqual(rows[3].costs[.management], 0.3, accuracy: 1e-12)
        XCTAssertThrowsError(try CostEngine(querier: q).daily(from: day.advanced(by: 1), to: day, now: 0))
        XCTAssertThrowsError(try CostEngine(querier: q).daily(from: day, to: day.advanced(by: 400), now: 0))
    }

    /// The integral against a direct evaluation at every second of the day, on irregular
    /// timestamps with overlaps, gaps and markers.
    func testMatchesADirectSecondBySecondIntegral() throws {
        var rng = SeededGenerator(test: "DailyCostRuleTests.testMatchesADirectSecondBySecondIntegral")
        var q = MemoryQuerier()
        var raw: [String: [[Sample]]] = [:]
        for metric in ["node_cpu_hourly_cost", "kube_node_status_capacity_cpu_cores"] {
            for variant in 0..<2 {
                var samples: [Sample] = []
                var t = start - 10 * minute + Int64.random(in: 0..<60, using: &rng) * 1000
                while t < end + 10 * minute {
                    let bits = Int.random(in: 0..<200, using: &rng) == 0 ? staleMarkerBits : Double.random(in: 0.01...8, using: &rng).bitPattern
                    samples.append(Sample(timestamp: t, valueBits: bits))
                    t += Int64.random(in: 1...(Int.random(in: 0..<50, using: &rng) == 0 ? 900 : 90), using: &rng) * 1000
                }
                q.add(metric, node("n1", extra: ["job": "j\(variant)"]), samples)
                raw[metric, default: []].append(samples)
            }
        }
        // The latest sample at or before t, found by cursors that only move forward.
        var cursors: [String: [Int]] = raw.mapValues { $0.map { _ in -1 } }
        func held(_ metric: String, at t: Int64) -> Double? {
            var values: [Double] = []
            for (k, samples) in raw[metric]!.enumerated() {
                while cursors[metric]![k] + 1 < samples.count && samples[cursors[metric]![k] + 1].timestamp <= t { cursors[metric]![k] += 1 }
                let i = cursors[metric]![k]
                guard i >= 0, samples[i].valueBits != staleMarkerBits, t - samples[i].timestamp < 5 * minute else { continue }
                values.append(Double(bitPattern: samples[i].valueBits))
            }
            return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
        }
        var direct = 0.0, covered = 0
        for second in 0..<86_400 {
            let t = start + Int64(second) * 1000
            let p = held("node_cpu_hourly_cost", at: t), c = held("kube_node_status_capacity_cpu_cores", at: t)
            if let p, let c {
                direct += p * c / 3600
                covered += 1
            }
        }
        let r = try row(q)
        XCTAssertEqual(r.costs[.cpu], direct, accuracy: abs(direct) * 1e-9)
        XCTAssertEqual(r.coveredMinutes[.cpu], Double(covered) / 60, accuracy: 1e-9)
    }
}
