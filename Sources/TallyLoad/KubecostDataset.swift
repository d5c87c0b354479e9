import TallyWire

/// A deterministic, Kubecost-shaped workload: per node the price gauges, capacities and network
/// counters, per pod allocations, per PV price and capacity, per cluster a load balancer, the
/// management fee and network prices, scraped every minute and sent the way Prometheus' remote
/// write sends it (each sender owns a fixed share of the series, in time order, up to 500 samples
/// per request).
///
/// With `churn`, each cluster replaces its first node halfway through (the old node's series end
/// with staleness markers, the new node's start), the second node's price series of cluster 0 get
/// an extra label a third of the way in and overlap their old label set for 30 scrapes (one
/// identity, two series), and counters reset now and then.
public struct KubecostDataset: Sendable {
    public var clusters = 3
    public var nodesPerCluster = 20
    public var podsPerNode = 10
    public var volumesPerNode = 2
    public var scrapes = 480
    public var scrapeInterval: Int64 = 60_000
    public var start: Int64 = 1_700_006_400_000
    public var samplesPerRequest = 500
    public var seed: UInt64 = 42
    /// Scrapes land this many milliseconds after the interval at most, as real ones do; 0 puts
    /// them exactly on the grid (what a PromQL subquery oracle needs).
    public var jitterMilliseconds: UInt64 = 5
    public var churn = false
    /// Clusters are named this followed by their number (the `cluster_id` label).
    public var clusterPrefix = "cluster-"

    public init() {}

    /// Whole UTC days of 2 clusters on the exact minute grid, with churn, ending 30 minutes into
    /// yesterday (so no day ends while its last samples still hold): the shape of the cost tests
    /// and the cost benchmark.
    public static func costDays(_ days: Int, nodesPerCluster: Int, podsPerNode: Int, now: Int64) -> KubecostDataset {
        var dataset = KubecostDataset()
        dataset.clusters = 2
        dataset.nodesPerCluster = nodesPerCluster
        dataset.podsPerNode = podsPerNode
        dataset.volumesPerNode = 1
        dataset.jitterMilliseconds = 0
        dataset.churn = true
        dataset.scrapes = days * 1440 + 30
        dataset.start = now / 86_400_000 * 86_400_000 - Int64(days + 1) * 86_400_000
        return dataset
    }

    enum Shape { case price(Double), constant(Double), allocation(Double), counter(Double) }

    struct Series {
        let labels: [(String, String)]
        let shape: Shape
        /// Sent from this scrape on, until `until`, where a staleness marker ends it.
        var from = 0
        var until = Int.max
    }

    func series() -> [Series] {
        var out: [Series] = []
        var rng = SplitMix64(seed: seed)
        func add(_ name: String, _ labels: [(String, String)], _ shape: Shape, from: Int = 0, until: Int = .max) {
            out.append(Series(labels: [("__name__", name)] + labels.sorted { $0.0 < $1.0 }, shape: shape, from: from, until: until))
        }
        for c in 0..<clusters {
            let cluster = "\(clusterPrefix)\(c)"
            var nodes: [(name: String, from: Int, until: Int)] = (0..<nodesPerCluster).map { n in
                ("ip-10-\(c)-\(n / 250)-\(n % 250).ec2.internal", 0, Int.max)
            }
            if churn && !nodes.isEmpty {
                nodes[0].until = scrapes / 2
                nodes.append(("ip-10-\(c)-255-1.ec2.internal", scrapes / 2, Int.max))
            }
            for (n, node) in nodes.enumerated() {
                let nodeLabels = [("arch", "amd64"), ("cluster_id", cluster), ("instance", node.name), ("instance_type", "m5.2xlarge"),
                                  ("job", "kubecost"), ("node", node.name), ("provider_id", "aws:///us-east-1a/i-\(c)\(n)0f3a9"),
                                  ("region", "us-east-1")]
                func addNode(_ name: String, _ labels: [(String, String)], _ shape: Shape) {
                    add(name, labels, shape, from: node.from, until: node.until)
                }
                let cpuPrice = 0.031611 * (1 + Double(rng.next() % 100) / 1000)
                if churn && c == 0 && n == 1 {
                    // An exporter upgrade: a new label, briefly both label sets at once.
                    let upgrade = scrapes / 3
                    for (name, price) in [("node_cpu_hourly_cost", cpuPrice), ("node_ram_hourly_cost", 0.004237)] {
                        add(name, nodeLabels, .price(price), until: upgrade + 30)
                        add(name, nodeLabels + [("uid", "7f3a")], .price(price * 1.01), from: upgrade)
                    }
                } else {
                    addNode("node_cpu_hourly_cost", nodeLabels, .price(cpuPrice))
                    addNode("node_ram_hourly_cost", nodeLabels, .price(0.004237))
                }
                addNode("node_gpu_hourly_cost", nodeLabels, .constant(n % 4 == 3 ? 0.95 : 0))
                addNode("node_gpu_count", nodeLabels, .constant(n % 4 == 3 ? 1 : 0))
                addNode("node_total_hourly_cost", nodeLabels, .price(0.384))
                addNode("kubecost_node_is_spot", nodeLabels, .constant(Double(rng.next() % 2)))
                let ksm = [("cluster_id", cluster), ("instance", "kube-state-metrics:8080"), ("job", "kubecost"), ("node", node.name)]
                addNode("kube_node_status_capacity_cpu_cores", ksm, .constant(8))
                addNode("kube_node_status_capacity_memory_bytes", ksm, .constant(33_229_885_440))
                for p in 0..<podsPerNode {
                    let pod = [("cluster_id", cluster), ("container", "app"), ("instance", node.name), ("job", "kubecost"),
                               ("namespace", "ns-\(p % 5)"), ("node", node.name), ("pod", "pod-\(c)-\(n)-\(p)")]
                    addNode("container_cpu_allocation", pod, .allocation(0.25 * Double(1 + p % 4)))
                    addNode("container_memory_allocation_bytes", pod, .allocation(268_435_456 * Double(1 + p % 3)))
                }
                for v in 0..<volumesPerNode {
                    let pv = "pvc-\(c)-\(n)-\(v)"
                    addNode("pv_hourly_cost", [("cluster_id", cluster), ("job", "kubecost"), ("persistentvolume", pv), ("volumename", pv)], .price(0.000137))
                    addNode("kube_persistentvolume_capacity_bytes", [("cluster_id", cluster), ("job", "kubecost"), ("persistentvolume", pv)], .constant(107_374_182_400))
                    addNode("pod_pvc_allocation", [("cluster_id", cluster), ("job", "kubecost"), ("namespace", "ns-\(v % 5)"),
                                                   ("persistentvolume", pv), ("persistentvolumeclaim", "data-\(v)"), ("pod", "pod-\(c)-\(n)-\(v)")],
                            .constant(107_374_182_400))
                }
                for (zone, region, internet) in [("false", "true", "false"), ("false", "false", "false"), ("false", "false", "true")] {
                    addNode("kubecost_pod_network_egress_bytes_total", [("cluster_id", cluster), ("internet", internet), ("job", "network-costs"),
                        ("namespace", "ns-\(n % 5)"), ("pod_name", "pod-\(c)-\(n)-0"), ("same_region", region), ("same_zone", zone)],
                        .counter(Double(20_000 + rng.next() % 50_000)))
                }
            }
            let clusterJob = [("cluster_id", cluster), ("job", "kubecost")]
            add("kubecost_load_balancer_cost", clusterJob + [("ingress_ip", "10.\(c).0.1"), ("namespace", "ingress"), ("service_name", "front")], .price(0.025))
            add("kubecost_cluster_management_cost", clusterJob + [("provisioner_name", "EKS")], .constant(0.10))
            for (category, price) in [("zone", 0.01), ("region", 0.02), ("internet", 0.09)] {
                add("kubecost_network_\(category)_egress_cost", clusterJob, .constant(price))
            }
        }
        return out
    }

    public var seriesCount: Int { series().count }
    /// Samples sent, staleness markers included.
    public var sampleCount: Int {
        series().reduce(0) { total, s in total + min(s.until, scrapes) - s.from + (s.until < scrapes ? 1 : 0) }
    }

    /// Compressed request bodies per sender; each sender's requests must be sent in order. `Builder`
    /// picks the Remote-Write version; the samples are the same in both.
    public func requests<Builder: RemoteWriteRequestBuilder>(senders: Int, as builder: Builder.Type = WriteRequestEncoder.self) -> [[[UInt8]]] {
        var out = [[[UInt8]]](repeating: [], count: senders)
        generateRequests(senders: senders, as: builder) { sender, body in out[sender].append(body) }
        return out
    }

    /// The requests of `requests(senders:as:)`, handed to `body` (sender, compressed body) one at a
    /// time as they fill, in each sender's order, so a large dataset need not be held whole.
    public func generateRequests<Builder: RemoteWriteRequestBuilder>(senders: Int, as builder: Builder.Type = WriteRequestEncoder.self,
                                                                     _ body: (Int, [UInt8]) throws -> Void) rethrows {
        let all = series()
        var rng = SplitMix64(seed: seed &+ 1)
        var values: [Double] = all.map { s in
            switch s.shape { case let .price(v), let .constant(v), let .allocation(v): v; case .counter: Double(rng.next() % 1_000_000_000) }
        }
        var encoders = [Builder](repeating: Builder(), count: senders)
        var pending = [Int](repeating: 0, count: senders)
        for scrape in 0..<scrapes {
            let t = start + Int64(scrape) * scrapeInterval + (jitterMilliseconds > 0 ? Int64(rng.next() % jitterMilliseconds) : 0)
            for (i, s) in all.enumerated() where s.from <= scrape && scrape <= s.until {
                switch s.shape {
                case .price: if rng.next() % 1440 == 0 { values[i] *= 1 + Double(Int(rng.next() % 11) - 5) / 100 }
                case .constant: break
                case .allocation: if rng.next() % 30 == 0 { values[i] = (values[i] * (0.9 + Double(rng.next() % 21) / 100) * 1000).rounded() / 1000 }
                case let .counter(rate):
                    let increase = (rate * 60 * (0.5 + Double(rng.next() % 100) / 100)).rounded()
                    values[i] = churn && rng.next() % 2000 == 0 ? increase : values[i] + increase
                }
                let bits = scrape == s.until ? staleMarker : values[i].bitPattern
                let sender = i % senders
                encoders[sender].addSeries(labels: s.labels, samples: [WireSample(timestamp: t, valueBits: bits)])
                pending[sender] += 1
                if pending[sender] == samplesPerRequest {
                    try body(sender, encoders[sender].compressed())
                    encoders[sender] = Builder()
                    pending[sender] = 0
                }
            }
        }
        for sender in 0..<senders where pending[sender] > 0 { try body(sender, encoders[sender].compressed()) }
    }

    let staleMarker: UInt64 = 0x7ff0_0000_0000_0002
}

/// SplitMix64: a small seeded generator, so every run sends the same bytes.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
