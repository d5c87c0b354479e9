import TallyStorage

/// How allocation rows are grouped.
public enum AllocationAggregate: String, CaseIterable, Sendable {
    case namespace, pod, node
}

/// One allocation row: a group's (or a cluster's idle or shared) cost on one day.
public struct AllocationRow: Sendable, Equatable {
    public let cluster: String
    public let day: CostDay
    /// The group's name: a namespace, `namespace/pod`, a node, `__idle__` or `__shared__`.
    public let name: String
    public var costs = CategoryValues()
    public var complete = false
    public var computedAt: Int64 = 0

    /// What the cluster's nodes and volumes cost beyond what was allocated to workloads.
    public static let idleName = "__idle__"
    /// What belongs to the cluster rather than to one group: the management fee, and what the
    /// aggregate cannot place (a load balancer under `pod` or `node`, a pod whose node is unknown).
    public static let sharedName = "__shared__"

    public var isIdle: Bool { name == Self.idleName }
    public var isShared: Bool { name == Self.sharedName }

    public init(cluster: String, day: CostDay, name: String) {
        self.cluster = cluster
        self.day = day
        self.name = name
    }

    public var total: Double { costs.total }
}

/// Compensated sums per key and category, so a group's figure is exact however many pieces it has.
struct CategorySums<Key: Hashable> {
    private(set) var sums: [Key: [CostCategory: NeumaierSum]] = [:]

    mutating func add(_ key: Key, _ category: CostCategory, _ value: Double) {
        sums[key, default: [:]][category, default: NeumaierSum()].add(value)
    }

    subscript(key: Key, category: CostCategory) -> Double { sums[key]?[category]?.value ?? 0 }
}

extension CostEngine {
    static let allocationMetrics = dailyMetrics + [
        "container_cpu_allocation", "container_memory_allocation_bytes", "container_gpu_allocation", "pod_pvc_allocation",
    ]

    /// Container cost is its allocation times its node's price, a pod's PV cost its claim's bytes
    /// times the volume's price, its network cost its egress priced as in the daily row; load
    /// balancers go to their service's namespace, the management fee to the shared row. Idle is
    /// what a node's cpu, ram and gpu and a volume cost beyond what was allocated, never below zero.
    /// Rows are sorted by day, cluster, name, with each cluster's idle and then shared row last.
    /// `dayDone` is called as each day is done, for a progress display.
    public func allocation(from first: CostDay, to last: CostDay, aggregate: AllocationAggregate,
                           cluster: String? = nil, now: Int64, dayDone: () -> Void = {}) throws -> [AllocationRow] {
        try options.days(from: first, to: last).flatMap { day in
            defer { dayDone() }
            return try allocation(day, aggregate: aggregate, cluster: cluster, now: now)
        }
    }

    func allocation(_ day: CostDay, aggregate: AllocationAggregate, cluster: String?, now: Int64) throws -> [AllocationRow] {
        let series = try querier.select(DaySignals.matchers(Self.allocationMetrics, cluster: cluster),
                                        minTime: day.start - options.lookback, maxTime: day.end - 1)
        let signals = DaySignals(series, day: day, now: now, lookback: options.lookback)
        let egress = try egressCosts(signals, cluster: cluster)
        leftOut.add(signals.leftOut + egress.leftOut, cluster: cluster)

        // Keyed by [cluster, group name].
        var groups = CategorySums<[String]>()
        var podNode: [[String]: String] = [:]
        func group(_ cluster: String, namespace: String, pod: String, node: String?) -> [String] {
            switch aggregate {
            case .namespace: [cluster, namespace]
            case .pod: [cluster, namespace + "/" + pod]
            case .node: [cluster, node ?? AllocationRow.sharedName]
            }
        }

        // Per node and resource: what the node costs (itemCost, which holds the volumes too) and what
        // its containers were allocated.
        var itemCost = CategorySums<ItemKey>(), allocated = CategorySums<ItemKey>()
        let resources: [(CostCategory, String, Double)] = [
            (.cpu, "container_cpu_allocation", 1), (.ram, "container_memory_allocation_bytes", 1 / bytesPerGiB), (.gpu, "container_gpu_allocation", 1),
        ]
        for (category, metric, scale) in resources {
            let priced = PricedItems.of(category)
            for (key, rate) in priced.rates(signals) { itemCost.add(key, category, rate.integralHours) }
            let prices = signals.items(priced.price)
            for (key, signal) in signals.items(metric) {
                let (namespace, pod, node) = (key.values[1], key.values[2], key.values[4])
                podNode[[key.cluster, namespace, pod]] = node
                let nodeKey = ItemKey(values: [key.cluster, node])
                guard let price = prices[nodeKey] else { continue }
                let cost = signal.scaled(by: scale).multiplied(by: price).integralHours
                groups.add(group(key.cluster, namespace: namespace, pod: pod, node: node), category, cost)
                allocated.add(nodeKey, category, cost)
            }
        }
        // Per volume: what it costs and what pods claimed of it.
        var claimed = CategorySums<ItemKey>()
        let volumePrices = signals.items("pv_hourly_cost")
        for (key, claim) in signals.items("pod_pvc_allocation") {
            let (namespace, pod, volume) = (key.values[1], key.values[2], key.values[4])
            let volumeKey = ItemKey(values: [key.cluster, volume])
            guard let price = volumePrices[volumeKey] else { continue }
            let cost = claim.scaled(by: 1 / bytesPerGiB).multiplied(by: price).integralHours
            groups.add(group(key.cluster, namespace: namespace, pod: pod, node: podNode[[key.cluster, namespace, pod]]), .pv, cost)
            claimed.add(volumeKey, .pv, cost)
        }
        for (key, rate) in PricedItems.of(.pv).rates(signals) { itemCost.add(key, .pv, rate.integralHours) }
        for (key, categories) in itemCost.sums {
            for (category, cost) in categories {
                let used = category == .pv ? claimed[key, .pv] : allocated[key, category]
                // Never past zero: an over-allocated resource has no idle. A credit (a negative
                // price) leaves a negative idle, toward zero the same way.
                let idle = cost.value - used
                groups.add([key.cluster, AllocationRow.idleName], category, cost.value < 0 ? min(0, idle) : max(0, idle))
            }
        }
        for (key, rate) in PricedItems.of(.loadBalancer).rates(signals) {
            groups.add(aggregate == .namespace ? [key.cluster, key.values[1]] : [key.cluster, AllocationRow.sharedName], .loadBalancer, rate.integralHours)
        }
        for (key, rate) in PricedItems.of(.management).rates(signals) {
            groups.add([key.cluster, AllocationRow.sharedName], .management, rate.integralHours)
        }
        for item in egress.costs {
            let (cluster, namespace, pod) = (item.key.cluster, item.key.values[1], item.key.values[2])
            groups.add(group(cluster, namespace: namespace, pod: pod, node: podNode[[cluster, namespace, pod]]), .network, item.cost)
        }

        let complete = now >= day.end + options.grace
        func rank(_ row: AllocationRow) -> Int { row.isShared ? 2 : row.isIdle ? 1 : 0 }
        return groups.sums.map { key, categories in
            var row = AllocationRow(cluster: key[0], day: day, name: key[1])
            for (category, sum) in categories { row.costs[category] = sum.value }
            row.complete = complete
            row.computedAt = now
            return row
        }.sorted { a, b in a.cluster != b.cluster ? a.cluster < b.cluster : rank(a) != rank(b) ? rank(a) < rank(b) : a.name < b.name }
    }
}
