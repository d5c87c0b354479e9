import TallyStorage

/// The held signals of one day, per metric and item: every series of an item (an upgrade's old
/// and new label sets, two scrape jobs) averaged into one signal, clipped to the part of the day
/// that has happened.
struct DaySignals {
    /// Which labels, after `cluster_id`, name an item of each metric.
    static let identities: [String: [String]] = {
        var table: [String: [String]] = [:]
        for metric in ["node_cpu_hourly_cost", "node_ram_hourly_cost", "node_gpu_hourly_cost", "node_gpu_count",
                       "kube_node_status_capacity_cpu_cores", "kube_node_status_capacity_memory_bytes"] {
            table[metric] = ["node"]
        }
        table["pv_hourly_cost"] = ["persistentvolume"]
        table["kube_persistentvolume_capacity_bytes"] = ["persistentvolume"]
        table["kubecost_load_balancer_cost"] = ["namespace", "service_name", "ingress_ip"]
        table["kubecost_cluster_management_cost"] = ["provisioner_name"]
        for category in NetworkCategory.allCases { table[category.priceMetric] = [] }
        for metric in ["container_cpu_allocation", "container_memory_allocation_bytes", "container_gpu_allocation"] {
            table[metric] = ["namespace", "pod", "container", "node"]
        }
        table["pod_pvc_allocation"] = ["namespace", "pod", "persistentvolumeclaim", "persistentvolume"]
        table[CostEngine.egressCounter] = ["namespace", "pod_name"]
        return table
    }()

    let day: CostDay
    /// Where counting stops: the day's end, or the moment of the question if that is earlier, so no
    /// minute that has not happened is counted (a sample holds past it, and senders may be ahead).
    let end: Int64
    private(set) var signals: [String: [ItemKey: HeldSignal]] = [:]
    private(set) var clusters: Set<String> = []
    /// Series without `cluster_id` or a label of their identity: in no item.
    private(set) var leftOut: [LeftOutSeries.Entry] = []

    /// Builds the signals from series selected over [day.start - lookback, day.end - 1], counted
    /// up to `now` at most.
    init(_ series: [SeriesSamples], day: CostDay, now: Int64, lookback: Int64) {
        self.day = day
        end = min(day.end, now)
        var grouped: [String: [ItemKey: [HeldSignal]]] = [:]
        for s in series {
            guard let metric = s.labels["__name__"], let identity = Self.identities[metric] else { continue }
            if let entry = LeftOutSeries.entry(s.labels, metric: metric, identity: identity) {
                leftOut.append(entry)
                continue
            }
            let key = ItemKey(values: [s.labels[clusterLabel]!] + identity.map { s.labels[$0]! })
            let signal = HeldSignal(samples: s.samples, lookback: lookback).clipped(to: day.start, end)
            clusters.insert(key.cluster)
            if !signal.steps.isEmpty { grouped[metric, default: [:]][key, default: []].append(signal) }
        }
        signals = grouped.mapValues { $0.mapValues(HeldSignal.average) }
    }

    func items(_ metric: String) -> [ItemKey: HeldSignal] { signals[metric] ?? [:] }

    /// The selector of every metric this layer reads, optionally of one cluster.
    static func matchers(_ metrics: [String], cluster: String?) throws -> [LabelMatcher] {
        let names = metrics.sorted().joined(separator: "|")
        var matchers = [try LabelMatcher("__name__", .regex, names)]
        if let cluster { matchers.append(try LabelMatcher(clusterLabel, .equal, cluster)) }
        return matchers
    }
}

/// A priced category of section 3: a price times a quantity (or 1), per item.
struct PricedItems {
    let category: CostCategory
    let price: String
    let quantity: String?
    let quantityScale: Double

    static let all: [PricedItems] = [
        PricedItems(category: .cpu, price: "node_cpu_hourly_cost", quantity: "kube_node_status_capacity_cpu_cores", quantityScale: 1),
        PricedItems(category: .ram, price: "node_ram_hourly_cost", quantity: "kube_node_status_capacity_memory_bytes", quantityScale: 1 / bytesPerGiB),
        PricedItems(category: .gpu, price: "node_gpu_hourly_cost", quantity: "node_gpu_count", quantityScale: 1),
        PricedItems(category: .pv, price: "pv_hourly_cost", quantity: "kube_persistentvolume_capacity_bytes", quantityScale: 1 / bytesPerGiB),
        PricedItems(category: .loadBalancer, price: "kubecost_load_balancer_cost", quantity: nil, quantityScale: 1),
        PricedItems(category: .management, price: "kubecost_cluster_management_cost", quantity: nil, quantityScale: 1),
    ]

    var metrics: [String] { [price] + (quantity.map { [$0] } ?? []) }

    /// The priced items of `category` (every category but network).
    static func of(_ category: CostCategory) -> PricedItems { all.first { $0.category == category }! }

    /// Each item's $/h signal: price times quantity where both hold a value.
    func rates(_ signals: DaySignals) -> [ItemKey: HeldSignal] {
        let prices = signals.items(price)
        guard let quantity else { return prices }
        let quantities = signals.items(quantity)
        var out: [ItemKey: HeldSignal] = [:]
        for (key, priceSignal) in prices {
            guard let q = quantities[key] else { continue }
            out[key] = priceSignal.multiplied(by: q.scaled(by: quantityScale))
        }
        return out
    }
}
