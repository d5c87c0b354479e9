import Foundation
import TallyTestSupport
import TallyWire

/// The data `PromQLDifferentialTests` gives both Prometheus 2.42 and Tally, made the same way every run
/// (the values come from a fixed seed; `TALLY_TEST_SEED` changes them, never the shape).
///
/// Two parts, with no sample time in common:
/// - **Blocks**: OpenMetrics text over `[blockStart, blockEnd)` that promtool turns into three 2 h
///   blocks. Kubecost-shaped gauges (node, PV, container and cluster prices and allocations, resource
///   requests), counters with resets, a classic histogram, a gauge of edge values (0, negatives,
///   1e300, 1e-300, NaN, ±Inf, -0), gaps longer than the lookback, and series that end (churn).
/// - **Pushes**: remote-write over `[blockEnd, pushEnd]`. Cluster 0's node prices, container
///   allocations and request counters go on from their blocks (one series, block then head), one node
///   ends with a staleness marker, `rw_queue_depth` series end and come back with staleness markers, and
///   `rw_late_*` series get late samples: some inside the late-sample window both are given
///   (`lateWindow`, stored by both), some before it (refused by both, in a request of their own, since
///   Prometheus drops a whole request that has one sample it refuses).
struct PromQLDifferentialData {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    /// 2023-11-30T22:00:00Z, a multiple of promtool's 2 h block range: blocks begin at 22:00, 00:00
    /// (a new day and a new month) and 02:00.
    static let origin: Int64 = 1_701_381_600_000
    /// OpenMetrics samples lie in `[blockStart, blockEnd)`.
    static let blockStart = origin + 7 * minute + 3_250
    static let blockEnd = origin + 5 * hour
    /// Pushed samples lie in `[blockEnd, pushEnd]`, on an exact 15 s grid.
    static let pushEnd = blockEnd + 90 * minute
    /// The late-sample window of both: Tally's `--ooo-window`, Prometheus' `out_of_order_time_window`.
    static let lateWindow = "1h"
    static let staleNaN = Double(bitPattern: 0x7ff0_0000_0000_0002)

    /// One series: its labels (name first, the rest sorted) and samples in time order.
    struct Series {
        var family: String
        var type: String
        var labels: [(String, String)]
        var samples: [(Int64, Double)] = []
    }

    private var random = SeededGenerator(test: "PromQLDifferentialData", fixedSeed: 2042)
    private(set) var blockSeries: [Series] = []
    private(set) var pushedSeries: [Series] = []
    /// Late samples both keep, and late samples both refuse.
    private(set) var lateSeries: [Series] = []
    private(set) var tooOldSeries: [Series] = []

    init() {
        addNodes()
        addVolumesAndClusters()
        addContainers()
        addCounters()
        addHistogram()
        addEdgeValues()
        addPushedOnly()
    }

    // MARK: OpenMetrics

    /// The blocks' samples as OpenMetrics text: each family under one `# TYPE`, each series' samples
    /// in time order, `# EOF` last.
    var openMetrics: String {
        var out = ""
        var typed: Set<String> = []
        for series in blockSeries.sorted(by: { $0.family < $1.family }) {
            if typed.insert(series.family).inserted { out += "# TYPE \(series.family) \(series.type)\n" }
            let name = series.labels[0].1
            let labels = series.labels.dropFirst().map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
            for (t, v) in series.samples {
                out += "\(name){\(labels)} \(Self.openMetricsValue(v)) \(t / 1000).\(String(format: "%03d", t % 1000))\n"
            }
        }
        return out + "# EOF\n"
    }

    private static func openMetricsValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        return "\(v)"
    }

    // MARK: Remote-write

    /// The pushes in the order sent, each a remote-write body: the in-order samples in batches of five
    /// minutes, then the late samples inside the window (both store them).
    var storedPushes: [[UInt8]] {
        var bodies: [[UInt8]] = []
        var from = Self.blockEnd
        while from <= Self.pushEnd {
            let to = from + 5 * Self.minute
            bodies.append(Self.body(pushedSeries, in: from..<to))
            from = to
        }
        bodies.append(Self.body(lateSeries, in: Int64.min..<Int64.max))
        return bodies
    }

    /// One body of samples older than the late-sample window: both refuse all of it.
    var refusedPush: [UInt8] { Self.body(tooOldSeries, in: Int64.min..<Int64.max) }

    private static func body(_ series: [Series], in window: Range<Int64>) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        for s in series {
            let samples = s.samples.filter { window.contains($0.0) }.map { WireSample(timestamp: $0.0, valueBits: $0.1.bitPattern) }
            if !samples.isEmpty { encoder.addSeries(labels: s.labels, samples: samples) }
        }
        return encoder.compressed()
    }

    // MARK: What both should hold

    /// Every sample both should hold, by `labelKey`: the blocks', the in-order pushes' and the late
    /// ones inside the window; with `staleMarkers` false, without the staleness markers, which no
    /// query returns.
    func expectedSamples(staleMarkers: Bool) -> [String: [(Int64, Double)]] {
        var out: [String: [(Int64, Double)]] = [:]
        for s in blockSeries + pushedSeries + lateSeries {
            out[Self.labelKey(s.labels), default: []] += s.samples.filter { staleMarkers || $0.1.bitPattern != Self.staleNaN.bitPattern }
        }
        return out.mapValues { $0.sorted { $0.0 < $1.0 } }.filter { !$0.value.isEmpty }
    }

    /// A series' labels as one string, the same whatever their order.
    static func labelKey(_ labels: some Sequence<(String, String)>) -> String {
        labels.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1.debugDescription)" }.joined(separator: ",")
    }

    /// The first few ways `actual` differs from `expected` (empty if it holds the same samples, NaN
    /// equal to any NaN, every other value bit for bit).
    static func differences(_ actual: [String: [(Int64, Double)]], from expected: [String: [(Int64, Double)]]) -> [String] {
        var out: [String] = []
        for key in Set(expected.keys).union(actual.keys).sorted() where out.count < 10 {
            let want = expected[key] ?? [], got = actual[key] ?? []
            if want.count != got.count {
                out.append("{\(key)}: \(want.count) samples expected, \(got.count) held")
            } else if let i = want.indices.first(where: { want[$0].0 != got[$0].0 || (want[$0].1.bitPattern != got[$0].1.bitPattern && !(want[$0].1.isNaN && got[$0].1.isNaN)) }) {
                out.append("{\(key)}: sample \(i) expected \(want[i]), held \(got[i])")
            }
        }
        return out
    }

    // MARK: Series

    private mutating func noise(_ scale: Double) -> Double {
        Double(random.next() % 2001) / 1000 * scale - scale
    }

    /// Times from `from` to before `to`, `every` apart, each up to `jitter` ms late.
    private mutating func times(_ from: Int64, _ to: Int64, every: Int64, jitter: Int64) -> [Int64] {
        stride(from: from, to: to, by: Int(every)).map { $0 + (jitter > 0 ? Int64(random.next() % UInt64(jitter)) : 0) }
    }

    /// A series over `times` whose value at each is `value(index, time)`; nil leaves a gap.
    private func series(_ family: String, _ type: String, name: String? = nil, _ labels: [(String, String)],
                        _ times: [Int64], _ value: (Int, Int64) -> Double?) -> Series {
        let samples = times.enumerated().compactMap { i, t in value(i, t).map { (t, $0) } }
        return Series(family: family, type: type, labels: [("__name__", name ?? family)] + labels.sorted { $0.0 < $1.0 }, samples: samples)
    }

    /// Adds `s` with its samples before `blockEnd` to the blocks and the rest to the pushes.
    private mutating func add(_ s: Series) {
        var early = s, late = s
        early.samples = s.samples.filter { $0.0 < Self.blockEnd }
        late.samples = s.samples.filter { $0.0 >= Self.blockEnd }
        if !early.samples.isEmpty { blockSeries.append(early) }
        if !late.samples.isEmpty { pushedSeries.append(late) }
    }

    private static let clusters = ["cluster-0", "cluster-1"]

    /// Node prices and capacities every 60 s. Cluster 0 goes on through the pushes (node-0-1 ends
    /// there with a staleness marker); node-0-2 has a 15-minute gap; node-1-1 ends at 3 h and
    /// node-1-3 takes its place.
    private mutating func addNodes() {
        for (c, cluster) in Self.clusters.enumerated() {
            for n in 0..<(c == 0 ? 3 : 4) {
                let node = "node-\(c)-\(n)"
                let kind = n % 3
                let labels = [("cluster_id", cluster), ("instance", "10.\(c).0.\(n):9003"), ("node", node),
                              ("instance_type", ["m5.xlarge", "m5.2xlarge", "g4dn.xlarge"][kind]),
                              ("region", c == 0 ? "us-east-1" : "eu-west-1"), ("provider_id", "aws:///i-0\(c)\(n)f3a9")]
                let end = c == 0 ? Self.pushEnd + 1 : Self.blockEnd
                let t = times(Self.blockStart + Int64(n) * 1_000, end, every: Self.minute, jitter: 2_000).map { $0 >= Self.blockEnd ? $0 / 15_000 * 15_000 : $0 }
                let life: (Int64) -> Bool = { time in
                    switch node {
                    case "node-0-1": time <= Self.blockEnd + 30 * Self.minute
                    case "node-0-2": !(Self.origin + 140 * Self.minute..<Self.origin + 155 * Self.minute).contains(time)
                    case "node-1-1": time < Self.origin + 3 * Self.hour
                    case "node-1-3": time >= Self.origin + 3 * Self.hour
                    default: true
                    }
                }
                let cores = [4.0, 8, 16][kind], gib = [16.0, 32, 64][kind], gpus = kind == 2 ? 1.0 : 0
                let cpuBase = 0.0316 * (1 + 0.1 * Double(n)) + noise(0.002), ram = 0.0042 + noise(0.0002), gpu = kind == 2 ? 0.526 : 0
                let cpu: (Int64) -> Double = { cpuBase * (1 + 0.01 * Double(($0 - Self.origin) / Self.hour % 3)) }
                func gauge(_ name: String, _ value: (Int64) -> Double) -> Series {
                    series(name, "gauge", labels, t) { i, time in
                        guard life(time) else { return nil }
                        // node-0-1's last sample is a staleness marker.
                        if node == "node-0-1" && i + 1 < t.count && !life(t[i + 1]) { return Self.staleNaN }
                        return value(time)
                    }
                }
                add(gauge("node_cpu_hourly_cost", cpu))
                add(gauge("node_ram_hourly_cost") { _ in ram })
                add(gauge("node_gpu_hourly_cost") { _ in gpu })
                add(gauge("node_gpu_count") { _ in gpus })
                add(gauge("node_total_hourly_cost") { cpu($0) * cores + ram * gib + gpu * gpus })
                add(gauge("kube_node_status_capacity_cpu_cores") { _ in cores })
                add(gauge("kube_node_status_capacity_memory_bytes") { _ in gib * 1_073_741_824 })
                add(gauge("kubecost_node_is_spot") { _ in n == 1 ? 1 : 0 })
                add(series("kube_node_labels", "gauge", [("cluster_id", cluster), ("node", node), ("label_team", ["a", "b", "a", "c"][n])], t) { _, time in
                    life(time) && time < Self.blockEnd ? 1 : nil
                })
            }
        }
    }

    /// PV prices and capacities, the management fee, load balancers, network prices and cluster info,
    /// every 60 s.
    private mutating func addVolumesAndClusters() {
        for (c, cluster) in Self.clusters.enumerated() {
            let t = times(Self.blockStart + 5_000, Self.blockEnd, every: Self.minute, jitter: 1_500)
            for v in 0..<2 {
                let volume = "pvc-\(c)-\(v)"
                let price = 0.000137 * Double(v + 1)
                add(series("pv_hourly_cost", "gauge", [("cluster_id", cluster), ("persistentvolume", volume), ("volumename", volume),
                                                       ("provider_id", "aws:///vol-\(c)\(v)")], t) { _, _ in price })
                add(series("kube_persistentvolume_capacity_bytes", "gauge", [("cluster_id", cluster), ("persistentvolume", volume)], t) { _, _ in
                    Double([10, 100][v]) * 1_073_741_824
                })
            }
            add(series("kubecost_cluster_management_cost", "gauge", [("cluster_id", cluster), ("provisioner_name", "EKS")], t) { _, _ in 0.1 })
            add(series("kubecost_load_balancer_cost", "gauge", [("cluster_id", cluster), ("namespace", "default"), ("service_name", "web"),
                                                                ("ingress_ip", "10.0.\(c).1")], t) { _, _ in 0.025 })
            for (zone, price) in [("zone", 0.01), ("region", 0.02), ("internet", 0.12)] {
                add(series("kubecost_network_\(zone)_egress_cost", "gauge", [("cluster_id", cluster)], t) { _, _ in price })
            }
            add(series("kubecost_cluster_info", "gauge", [("cluster_id", cluster), ("provider", "AWS"), ("provisioner", "EKS"),
                                                          ("region", c == 0 ? "us-east-1" : "eu-west-1")], t) { _, _ in 1 })
        }
    }

    private static let namespaces = ["default", "kube-system", "billing"]

    /// Per container every 30 s: allocations and resource requests. Cluster 0's allocations go on
    /// through the pushes; billing-api-1 of cluster 1 ends at 2h30 and billing-api-2 starts; every
    /// default pod of cluster 1 has a 20-minute gap.
    private mutating func addContainers() {
        for (c, cluster) in Self.clusters.enumerated() {
            for (k, namespace) in Self.namespaces.enumerated() {
                for p in 0..<(namespace == "billing" && c == 1 ? 3 : 2) {
                    let pod = "\(namespace == "kube-system" ? "coredns" : namespace == "billing" ? "billing-api" : "web")-\(p)"
                    let node = "node-\(c)-\((p + k) % 3)"
                    let (from, to): (Int64, Int64) = switch (c, namespace, p) {
                    case (1, "billing", 1): (Self.blockStart, Self.origin + 150 * Self.minute)
                    case (1, "billing", 2): (Self.origin + 150 * Self.minute, Self.blockEnd)
                    case (0, _, _): (Self.blockStart, Self.pushEnd + 1)
                    default: (Self.blockStart, Self.blockEnd)
                    }
                    let t = times(from + Int64(p) * 700, to, every: 30_000, jitter: 1_000).map { $0 >= Self.blockEnd ? $0 / 15_000 * 15_000 : $0 }
                    let gap = c == 1 && namespace == "default" ? Self.origin + 80 * Self.minute..<Self.origin + 100 * Self.minute : 0..<0
                    for container in namespace == "kube-system" ? ["coredns", "sidecar"] : ["main"] {
                        let labels = [("cluster_id", cluster), ("namespace", namespace), ("pod", pod), ("container", container),
                                      ("node", node), ("instance", "10.\(c).0.\((p + k) % 3):9003")]
                        let cores = [0.25, 0.5, 1, 2][(p + k + c) % 4] + noise(0.01), bytes = Double([128, 256, 1024, 4096][(p + 3 * k) % 4]) * 1_048_576
                        let cpu = series("container_cpu_allocation", "gauge", labels, t) { i, time in gap.contains(time) ? nil : cores * (1 + 0.2 * sin(Double(i) / 40)) }
                        let memory = series("container_memory_allocation_bytes", "gauge", labels, t) { i, time in gap.contains(time) ? nil : (bytes + Double(i % 50) * 4096).rounded() }
                        add(cpu)
                        add(memory)
                        for (resource, unit, amount) in [("cpu", "core", cores), ("memory", "byte", bytes)] {
                            add(series("kube_pod_container_resource_requests", "gauge", labels + [("resource", resource), ("unit", unit)], t) { _, time in
                                gap.contains(time) || time >= Self.blockEnd ? nil : amount
                            })
                        }
                    }
                    if namespace == "billing" {
                        add(series("pod_pvc_allocation", "gauge", [("cluster_id", cluster), ("namespace", namespace), ("pod", pod),
                                                                   ("persistentvolumeclaim", "data-\(pod)"), ("persistentvolume", "pvc-\(c)-\(p % 2)")], t) { _, time in
                            time < Self.blockEnd ? 5_368_709_120 : nil
                        })
                    }
                }
            }
        }
    }

    /// Counters every 15 s with resets: CPU seconds per container, network egress bytes, HTTP
    /// requests (cluster 0's go on through the pushes, with one more reset there).
    private mutating func addCounters() {
        for (c, cluster) in Self.clusters.enumerated() {
            for (k, namespace) in Self.namespaces.enumerated() {
                let t = times(Self.blockStart + Int64(k) * 2_000, Self.blockEnd, every: 15_000, jitter: 800)
                let perStep = [0.3, 1.1, 4.2][k] + noise(0.05)
                let resetAt = c == 0 && k == 0 ? Self.origin + 100 * Self.minute : Int64.max
                let wobble = (0..<t.count).map { 1 + 0.1 * sin(Double($0)) }
                var total = 0.0
                add(series("container_cpu_usage_seconds", "counter", name: "container_cpu_usage_seconds_total",
                           [("cluster_id", cluster), ("namespace", namespace), ("pod", "pod-\(k)"), ("container", "main")], t) { i, time in
                    total = time >= resetAt && t[max(i - 1, 0)] < resetAt ? 0.5 : total + perStep * wobble[i]
                    return total
                })
                for (internet, sameZone, sameRegion) in [("true", "false", "false"), ("false", "true", "true"), ("false", "false", "true")] {
                    let egress = Double(1 + k) * 1.5e6
                    var bytes = 1e9 * Double(k + 1)
                    let reset = c == 1 && internet == "true" && k == 2 ? Self.origin + 200 * Self.minute : Int64.max
                    add(series("kubecost_pod_network_egress_bytes", "counter", name: "kubecost_pod_network_egress_bytes_total",
                               [("cluster_id", cluster), ("namespace", namespace), ("pod_name", "pod-\(k)"), ("internet", internet),
                                ("same_zone", sameZone), ("same_region", sameRegion)], t) { i, time in
                        bytes = time >= reset && t[max(i - 1, 0)] < reset ? 12_345 : bytes + egress * Double(1 + i % 4)
                        return bytes
                    })
                }
            }
            for (h, handler) in ["/api/v1/query", "/api/v1/write"].enumerated() {
                for code in ["200", "500"] {
                    let end = c == 0 ? Self.pushEnd + 1 : Self.blockEnd
                    let t = times(Self.blockStart + 3_000 + Int64(h) * 4_000, end, every: 15_000, jitter: 900).map { $0 >= Self.blockEnd ? $0 / 15_000 * 15_000 : $0 }
                    let resets: Set<Int64> = c == 1 && h == 1 ? [Self.origin + 3 * Self.hour] : c == 0 && code == "200" ? [Self.blockEnd + 45 * Self.minute] : []
                    var count = 0.0
                    let step = code == "200" ? Double(10 + 7 * h + c) : Double(h + c)
                    add(series("http_requests", "counter", name: "http_requests_total",
                               [("cluster_id", cluster), ("handler", handler), ("code", code), ("method", h == 0 ? "GET" : "POST")], t) { i, time in
                        count = resets.contains(where: { time >= $0 && t[max(i - 1, 0)] < $0 }) ? 1 : count + step + Double(i % 3)
                        return count
                    })
                }
            }
        }
    }

    /// A classic histogram every 30 s per cluster and handler, with a reset in cluster 0's query handler.
    private mutating func addHistogram() {
        let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
        for (c, cluster) in Self.clusters.enumerated() {
            for (h, handler) in ["/api/v1/query", "/api/v1/write"].enumerated() {
                let t = times(Self.blockStart + 6_000, Self.blockEnd, every: 30_000, jitter: 1_200)
                let resetAt = c == 0 && h == 0 ? Self.origin + 210 * Self.minute : Int64.max
                // Counts per bucket, cumulative over the buckets and over time.
                var cumulative = [Double](repeating: 0, count: bounds.count), sum = 0.0
                var rows: [[Double]] = [], sums: [Double] = []
                for (i, time) in t.enumerated() {
                    if time >= resetAt && t[max(i - 1, 0)] < resetAt { cumulative = cumulative.map { _ in 0 }; sum = 0 }
                    var below = 0.0
                    for b in 0..<bounds.count {
                        let fresh = Double(random.next() % 6) * Double(1 + (h + b) % 3)
                        below += fresh
                        cumulative[b] += below
                        sum += fresh * [0.03, 0.07, 0.2, 0.4, 0.8, 2, 4][b]
                    }
                    rows.append(cumulative)
                    sums.append(sum)
                }
                let labels = [("cluster_id", cluster), ("handler", handler)]
                for (b, bound) in bounds.enumerated() {
                    add(series("http_request_duration_seconds", "histogram", name: "http_request_duration_seconds_bucket", labels + [("le", bound)], t) { i, _ in rows[i][b] })
                }
                add(series("http_request_duration_seconds", "histogram", name: "http_request_duration_seconds_sum", labels, t) { i, _ in sums[i] })
                add(series("http_request_duration_seconds", "histogram", name: "http_request_duration_seconds_count", labels, t) { i, _ in rows[i].last! })
            }
        }
    }

    /// `edge_values{case=...}` every 60 s: zeros, negatives, large, huge and tiny values, NaN and
    /// infinities, -0, zeros of both signs among ±1, a sign that changes, integer steps, and a series
    /// with a long gap.
    private mutating func addEdgeValues() {
        let t = times(Self.blockStart + 9_000, Self.blockEnd, every: Self.minute, jitter: 3_000)
        let cases: [(String, (Int) -> Double?)] = [
            ("zero", { _ in 0 }),
            ("negative", { -Double(1 + $0 % 7) * 1.5 }),
            ("large", { 1e15 + Double($0) * 1e6 }),
            ("huge", { 1.5e300 * Double($0 % 3 + 1) }),
            ("tiny", { 1e-300 * Double($0 % 5) }),
            ("specials", { [Double.nan, .infinity, 1, -.infinity, -0.0, 2.5][$0 % 6] }),
            // 0 and -0 compare equal: where a sort of 13 or more leaves them tells Go's sort apart.
            ("signed_zeros", { [1, 1, -1, 1, 0, -1, -0.0, -0.0, -1, 0, -1, 1, -0.0][$0 % 13] }),
            ("sign", { sin(Double($0) / 5) * 10 }),
            ("steps", { Double($0 / 10) }),
            ("gap", { $0 < 60 || $0 > 180 ? Double($0) : nil }),
        ]
        for (name, value) in cases {
            add(series("edge_values", "gauge", [("case", name)], t) { i, _ in value(i) })
        }
    }

    /// Series only pushed: queue depths that end and come back with staleness markers, and
    /// `rw_late_*` series whose in-between samples come late.
    private mutating func addPushedOnly() {
        let grid = Array(stride(from: Self.blockEnd, through: Self.pushEnd, by: 15_000))
        for (queue, stale, back) in [("a", Self.blockEnd + 40 * Self.minute, Int64.max), ("b", Self.blockEnd + 20 * Self.minute, Self.blockEnd + 50 * Self.minute),
                                     ("c", Int64.max, Int64.max)] {
            add(series("rw_queue_depth", "gauge", [("queue", queue), ("job", "rw")], grid) { i, time in
                if time == stale { return Self.staleNaN }
                if time > stale && time < back { return nil }
                return Double((i * 7 + queue.count) % 23) - 4
            })
        }
        let minuteGrid = grid.filter { $0 % Self.minute == 0 }
        let lateFrom = Self.pushEnd - 45 * Self.minute, tooOldBefore = Self.pushEnd - 80 * Self.minute
        for instance in ["1", "2"] {
            let labels = [("instance", instance), ("job", "rw")]
            let gauge: (Int64) -> Double = { Double(($0 - Self.blockEnd) / 30_000 % 17) * (instance == "1" ? 1.5 : -0.5) }
            let counter: (Int64) -> Double = { Double(($0 - Self.blockEnd) / 30_000) * 3 + (instance == "1" ? 0 : 100) }
            add(series("rw_late_gauge", "gauge", labels, minuteGrid) { _, time in gauge(time) })
            add(series("rw_late_total", "counter", name: "rw_late_total", labels, minuteGrid) { _, time in counter(time) })
            let halves = minuteGrid.map { $0 + 30_000 }
            for (late, window) in [(true, lateFrom..<Self.pushEnd - Self.minute), (false, Self.blockEnd..<tooOldBefore)] {
                let inWindow = halves.filter { window.contains($0) && (late || $0 % (4 * Self.minute) == 30_000) }
                let made = [series("rw_late_gauge", "gauge", labels, inWindow) { _, time in gauge(time) },
                            series("rw_late_total", "counter", name: "rw_late_total", labels, inWindow) { _, time in counter(time) }]
                if late { lateSeries += made } else { tooOldSeries += made }
            }
        }
    }
}
