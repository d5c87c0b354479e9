import TallyWire

/// A second workload, built apart from `KubecostDataset` so that no tuning for that one carries over:
/// several tenants, each one cluster pushed by its own sender (or senders); series of 5-9 labels
/// besides the name, with values up to 40 characters drawn from pools of realistic cardinality; and
/// requests cut as Prometheus' remote-write shards cut them, one sample per series entry, each
/// request 1,000-1,200 entries and ending wherever it fills, often inside a scrape.
///
/// Every property that could move an ingest ratio is a parameter (request size, senders, value
/// noise, label layout), so a benchmark can vary one at a time. Each sender's requests are made from
/// the sender's own seeded generator, on the sender's own thread if wanted, and never held whole: a
/// day of four tenants is gigabytes of request bodies.
public struct TenantCorpus: Sendable {
    /// How sample values change from one scrape to the next.
    public enum ValueNoise: String, Sendable {
        /// Each series keeps its first value.
        case constant
        /// Kubecost's: prices that seldom move, allocations that change every half hour or so and
        /// are rounded, byte counters that grow by a varying amount, and constants.
        case kubecost
        /// A fresh random double in every sample: the worst case for XOR chunks.
        case random
    }

    public var tenants = 4
    public var seriesPerTenant = 2_300
    public var scrapes = 1_440
    public var scrapeInterval: Int64 = 60_000
    public var start: Int64 = 1_700_006_400_000
    /// Series entries (one sample each) in a request, drawn anew for each request.
    public var samplesPerRequest: ClosedRange<Int> = 1_000...1_200
    /// Labels of a series besides `__name__`, `cluster_id` among them.
    public var labelsPerSeries: ClosedRange<Int> = 5...9
    /// Characters in a label value (the tenant's `cluster_id` aside).
    public var valueLength: ClosedRange<Int> = 4...40
    /// Senders of one tenant, each owning every n-th series, as Prometheus' shards do.
    public var sendersPerTenant = 1
    public var noise = ValueNoise.kubecost
    public var seed: UInt64 = 20_261_202

    public init() {}

    public var senders: Int { tenants * sendersPerTenant }
    public var sampleCount: Int { tenants * seriesPerTenant * scrapes }
    public func tenant(ofSender sender: Int) -> String { "tenant-\(sender / sendersPerTenant)" }
    public var tenantNames: [String] { (0..<tenants).map { tenant(ofSender: $0 * sendersPerTenant) } }

    /// A one-line description of the parameters, for a report.
    public var summary: String {
        "\(tenants) tenants x \(seriesPerTenant) series x \(scrapes) scrapes = \(sampleCount) samples; "
            + "\(samplesPerRequest.lowerBound)-\(samplesPerRequest.upperBound) samples a request; \(sendersPerTenant) sender(s) a tenant; "
            + "\(labelsPerSeries.lowerBound)-\(labelsPerSeries.upperBound) labels of \(valueLength.lowerBound)-\(valueLength.upperBound) characters; "
            + "\(noise.rawValue) values"
    }

    enum Kind { case price, allocation, counter, constant }

    struct Series {
        let labels: [(String, String)]
        let kind: Kind
        let first: Double
    }

    static let metricNames: [(String, Kind)] = [
        ("node_cpu_hourly_cost", .price), ("node_ram_hourly_cost", .price), ("node_gpu_hourly_cost", .price), ("node_total_hourly_cost", .price),
        ("pv_hourly_cost", .price), ("kubecost_load_balancer_cost", .price), ("kubecost_cluster_management_cost", .constant),
        ("container_cpu_allocation", .allocation), ("container_memory_allocation_bytes", .allocation), ("container_gpu_allocation", .allocation),
        ("pod_pvc_allocation", .allocation), ("kube_node_status_capacity_cpu_cores", .constant), ("kube_node_status_capacity_memory_bytes", .constant),
        ("kube_persistentvolume_capacity_bytes", .constant), ("kubecost_pod_network_egress_bytes_total", .counter),
        ("container_network_receive_bytes_total", .counter), ("container_cpu_usage_seconds_total", .counter), ("kubecost_node_is_spot", .constant),
    ]

    /// Label names a series can carry, with how many distinct values each takes in a tenant.
    static let labelPools: [(String, Int)] = [
        ("app", 80), ("container", 60), ("device", 8), ("image", 100), ("instance", 50), ("instance_type", 6), ("job", 4),
        ("label_app_kubernetes_io_name", 80), ("label_team", 12), ("namespace", 40), ("node", 50), ("owner_kind", 5), ("owner_name", 300),
        ("persistentvolume", 200), ("pod", 2_000), ("provider_id", 50), ("region", 3), ("storageclass", 4), ("uid", 100_000), ("zone", 6),
    ]

    /// The tenant's series, the same in every run: a label set that came out twice is drawn again.
    func series(ofTenant tenant: Int) -> [Series] {
        var rng = SplitMix64(seed: seed ^ UInt64(tenant) &* 0x9E37_79B9)
        var seen = Set<[String]>()
        var out: [Series] = []
        out.reserveCapacity(seriesPerTenant)
        while out.count < seriesPerTenant {
            let (name, kind) = Self.metricNames[Int(rng.next() % UInt64(Self.metricNames.count))]
            let count = labelsPerSeries.lowerBound + Int(rng.next() % UInt64(labelsPerSeries.count))
            var pools = Self.labelPools
            var labels = [("cluster_id", "cluster-\(tenant)-" + word(UInt64(tenant), length: 8))]
            for _ in 1..<max(count, 1) where !pools.isEmpty {
                let (label, cardinality) = pools.remove(at: Int(rng.next() % UInt64(pools.count)))
                let index = rng.next() % UInt64(cardinality)
                let length = valueLength.lowerBound + Int(hash(label, index) % UInt64(valueLength.count))
                labels.append((label, word(hash(label, index), length: length)))
            }
            labels.sort { $0.0 < $1.0 }
            let all = [("__name__", name)] + labels
            guard seen.insert(all.flatMap { [$0.0, $0.1] }).inserted else { continue }
            let first: Double = switch kind {
            case .price: 0.0001 * Double(1 + rng.next() % 5_000)
            case .allocation: Double(1 + rng.next() % 64) * 0.125
            case .counter: Double(rng.next() % 1_000_000_000)
            case .constant: Double(rng.next() % 64) * 1_073_741_824
            }
            out.append(Series(labels: all, kind: kind, first: first))
        }
        return out
    }

    /// Every request of `sender`, in order, handed to `body` as it fills; `Builder` picks the
    /// Remote-Write version.
    public func forEachRequest<Builder: RemoteWriteRequestBuilder>(sender: Int, as builder: Builder.Type = WriteRequestEncoder.self,
                                                                   _ body: ([UInt8]) throws -> Void) rethrows {
        let tenant = sender / sendersPerTenant, shard = sender % sendersPerTenant
        let all = series(ofTenant: tenant)
        let owned = Array(stride(from: shard, to: all.count, by: sendersPerTenant))
        var values = owned.map { all[$0].first }
        var rng = SplitMix64(seed: seed &+ UInt64(sender) &+ 1)
        func requestSize() -> Int { samplesPerRequest.lowerBound + Int(rng.next() % UInt64(samplesPerRequest.count)) }
        var encoder = Builder(), pending = 0, target = requestSize()
        for scrape in 0..<scrapes {
            // Each tenant's Prometheus scrapes on its own phase, a few milliseconds late.
            let t = start + Int64(scrape) * scrapeInterval + Int64(tenant * 7_919 % 15_000) + Int64(rng.next() % 5)
            for (position, index) in owned.enumerated() {
                values[position] = next(values[position], kind: all[index].kind, rng: &rng)
                encoder.addSeries(labels: all[index].labels, samples: [WireSample(timestamp: t, valueBits: values[position].bitPattern)])
                pending += 1
                if pending == target {
                    try body(encoder.compressed())
                    (encoder, pending, target) = (Builder(), 0, requestSize())
                }
            }
        }
        if pending > 0 { try body(encoder.compressed()) }
    }

    func next(_ value: Double, kind: Kind, rng: inout SplitMix64) -> Double {
        switch noise {
        case .constant: return value
        case .random: return Double(rng.next() >> 11) * 0x1p-53 * 1_000_000
        case .kubecost:
            switch kind {
            case .price: return rng.next() % 1_440 == 0 ? value * (1 + Double(Int(rng.next() % 11) - 5) / 100) : value
            case .allocation: return rng.next() % 30 == 0 ? (value * (0.9 + Double(rng.next() % 21) / 100) * 1_000).rounded() / 1_000 : value
            case .counter: return value + Double(1_000 + rng.next() % 4_000_000)
            case .constant: return value
            }
        }
    }

    /// A label value of `length` characters made from `key`: lower-case letters, digits and dashes,
    /// as Kubernetes names are.
    func word(_ key: UInt64, length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-".utf8)
        var rng = SplitMix64(seed: key)
        var bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
        if bytes.first == UInt8(ascii: "-") { bytes[0] = UInt8(ascii: "x") }
        return String(decoding: bytes, as: UTF8.self)
    }

    func hash(_ label: String, _ index: UInt64) -> UInt64 {
        var rng = SplitMix64(seed: label.utf8.reduce(seed) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 } ^ index)
        return rng.next()
    }
}
