import TallyWire

/// A deterministic, Kubecost-shaped workload: per node the price gauges, capacities and network
/// counters, per pod allocations, per PV price and capacity, scraped every minute, sent the way
/// Prometheus' remote write sends it (each sender owns a fixed share of the series, in time order,
/// up to 500 samples per request).
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

    public init() {}

    enum Shape { case price(Double), constant(Double), allocation(Double), counter(Double) }

    struct Series {
        let labels: [(String, String)]
        let shape: Shape
    }

    func series() -> [Series] {
        var out: [Series] = []
        var rng = SplitMix64(seed: seed)
        for c in 0..<clusters {
            let cluster = "cluster-\(c)"
            for n in 0..<nodesPerCluster {
                let node = "ip-10-\(c)-\(n / 250)-\(n % 250).ec2.internal"
                let nodeLabels = [("arch", "amd64"), ("cluster_id", cluster), ("instance", node), ("instance_type", "m5.2xlarge"),
                                  ("job", "kubecost"), ("node", node), ("provider_id", "aws:///us-east-1a/i-\(c)\(n)0f3a9"),
                                  ("region", "us-east-1")]
                func add(_ name: String, _ labels: [(String, String)], _ shape: Shape) {
                    out.append(Series(labels: [("__name__", name)] + labels.sorted { $0.0 < $1.0 }, shape: shape))
                }
                add("node_cpu_hourly_cost", nodeLabels, .price(0.031611 * (1 + Double(rng.next() % 100) / 1000)))
                add("node_ram_hourly_cost", nodeLabels, .price(0.004237))
                add("node_gpu_hourly_cost", nodeLabels, .constant(0))
                add("node_gpu_count", nodeLabels, .constant(0))
                add("node_total_hourly_cost", nodeLabels, .price(0.384))
                add("kubecost_node_is_spot", nodeLabels, .constant(Double(rng.next() % 2)))
                let ksm = [("cluster_id", cluster), ("instance", "kube-state-metrics:8080"), ("job", "kubecost"), ("node", node)]
                add("kube_node_status_capacity_cpu_cores", ksm, .constant(8))
                add("kube_node_status_capacity_memory_bytes", ksm, .constant(33_229_885_440))
                for p in 0..<podsPerNode {
                    let pod = [("cluster_id", cluster), ("container", "app"), ("instance", node), ("job", "kubecost"),
                               ("namespace", "ns-\(p % 5)"), ("node", node), ("pod", "pod-\(c)-\(n)-\(p)")]
                    add("container_cpu_allocation", pod, .allocation(0.25 * Double(1 + p % 4)))
                    add("container_memory_allocation_bytes", pod, .allocation(268_435_456 * Double(1 + p % 3)))
                }
                for v in 0..<volumesPerNode {
                    let pv = "pvc-\(c)-\(n)-\(v)"
                    add("pv_hourly_cost", [("cluster_id", cluster), ("job", "kubecost"), ("persistentvolume", pv), ("volumename", pv)], .price(0.000137))
                    add("kube_persistentvolume_capacity_bytes", [("cluster_id", cluster), ("job", "kubecost"), ("persistentvolume", pv)], .constant(107_374_182_400))
                }
                for (zone, region, internet) in [("false", "true", "false"), ("false", "false", "false"), ("false", "false", "true")] {
                    add("kubecost_pod_network_egress_bytes_total", [("cluster_id", cluster), ("internet", internet), ("job", "network-costs"),
                        ("namespace", "ns-\(n % 5)"), ("pod_name", "pod-\(c)-\(n)-0"), ("same_region", region), ("same_zone", zone)],
                        .counter(Double(20_000 + rng.next() % 50_000)))
                }
            }
        }
        return out
    }

    public var seriesCount: Int { clusters * nodesPerCluster * (8 + 2 * podsPerNode + 2 * volumesPerNode + 3) }
    public var sampleCount: Int { seriesCount * scrapes }

    /// Compressed request bodies per sender; each sender's requests must be sent in order.
    public func requests(senders: Int) -> [[[UInt8]]] {
        let all = series()
        var rng = SplitMix64(seed: seed &+ 1)
        var values: [Double] = all.map { s in
            switch s.shape { case let .price(v), let .constant(v), let .allocation(v): v; case .counter: Double(rng.next() % 1_000_000_000) }
        }
        var out = [[[UInt8]]](repeating: [], count: senders)
        var encoders = [WriteRequestEncoder](repeating: WriteRequestEncoder(), count: senders)
        var pending = [Int](repeating: 0, count: senders)
        for scrape in 0..<scrapes {
            // Scrapes land on the interval with a few milliseconds of jitter, as real ones do.
            let t = start + Int64(scrape) * scrapeInterval + Int64(rng.next() % 5)
            for (i, s) in all.enumerated() {
                switch s.shape {
                case .price: if rng.next() % 1440 == 0 { values[i] *= 1 + Double(Int(rng.next() % 11) - 5) / 100 }
                case .constant: break
                case .allocation: if rng.next() % 30 == 0 { values[i] = (values[i] * (0.9 + Double(rng.next() % 21) / 100) * 1000).rounded() / 1000 }
                case let .counter(rate): values[i] += (rate * 60 * (0.5 + Double(rng.next() % 100) / 100)).rounded()
                }
                let sender = i % senders
                encoders[sender].addSeries(labels: s.labels, samples: [WireSample(timestamp: t, valueBits: values[i].bitPattern)])
                pending[sender] += 1
                if pending[sender] == samplesPerRequest {
                    out[sender].append(encoders[sender].compressed())
                    encoders[sender] = WriteRequestEncoder()
                    pending[sender] = 0
                }
            }
        }
        for sender in 0..<senders where pending[sender] > 0 { out[sender].append(encoders[sender].compressed()) }
        return out
    }
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
