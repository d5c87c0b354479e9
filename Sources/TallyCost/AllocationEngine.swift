import TallyStorage

/// How allocation rows are grouped.
public enum AllocationAggregate: String, CaseIterable, Sendable {
    case namespace, pod, node
}

/// One allocation row: a group's (or a cluster's idle) cost on one day.
public struct AllocationRow: Sendable, Equatable {
    public let cluster: String
    public let day: CostDay
    /// The group's name: a namespace, `namespace/pod`, a node, or `__idle__` for the idle row.
    public let name: String
    public var cpu = 0.0, ram = 0.0, gpu = 0.0, pv = 0.0
    public var isIdle: Bool { name == AllocationRow.idleName }
    public var complete = false
    public var computedAt: Int64 = 0

    public static let idleName = "__idle__"

    public init(cluster: String, day: CostDay, name: String) {
        self.cluster = cluster
        self.day = day
        self.name = name
    }

    public var total: Double {
        var sum = NeumaierSum()
        for v in [cpu, ram, gpu, pv] { sum.add(v) }
        return sum.value
    }
}

extension CostEngine {
    static let allocationMetrics = [
        "node_cpu_hourly_cost", "node_ram_hourly_cost", "node_gpu_hourly_cost",
        "kube_node_status_capacity_cpu_cores", "kube_node_status_capacity_memory_bytes", "node_gpu_count",
        "container_cpu_allocation", "container_memory_allocation_bytes", "container_gpu_allocation",
        "pod_pvc_allocation", "pv_hourly_cost",
    ]

    /// Section 5 of the cost semantics: container cost is its allocation times its node's price,
    /// a pod's PV cost its claim's bytes times the volume's price; a node's idle cost is what its
    /// containers were not allocated, never below zero. Rows are sorted by day, cluster, name, with
    /// the idle row of each cluster last. `dayDone` is called as each day is done, for a progress display.
    public func allocation(from first: CostDay, to last: CostDay, aggregate: AllocationAggregate,
                           cluster: String? = nil, now: Int64, dayDone: () -> Void = {}) throws -> [AllocationRow] {
        try days(from: first, to: last).flatMap { day in
            defer { dayDone() }
            return try allocation(day, aggregate: aggregate, cluster: cluster, now: now)
        }
    }

    func allocation(_ day: CostDay, aggregate: AllocationAggregate, cluster: String?, now: Int64) throws -> [AllocationRow] {
        let series = try querier.select(DaySignals.matchers(Self.allocationMetrics, cluster: cluster),
                                        minTime: day.start - options.lookback, maxTime: day.end - 1)
        let signals = DaySignals(series, day: day, lookback: options.lookback)
        var groups: [[String]: AllocationRow] = [:]
        func add(_ cluster: String, _ name: String, _ body: (inout AllocationRow) -> Void) {
            var row = groups[[cluster, name]] ?? AllocationRow(cluster: cluster, day: day, name: name)
            body(&row)
            groups[[cluster, name]] = row
        }
        func groupName(namespace: String, pod: String, node: String) -> String {
            switch aggregate {
            case .namespace: namespace
            case .pod: namespace + "/" + pod
            case .node: node
            }
        }

        // Per node: what the node costs and what its containers were allocated, per resource.
        let resources: [(WritableKeyPath<AllocationRow, Double>, PricedItems, String, Double)] = [
            (\.cpu, PricedItems.all[0], "container_cpu_allocation", 1),
            (\.ram, PricedItems.all[1], "container_memory_allocation_bytes", 1 / bytesPerGiB),
            (\.gpu, PricedItems.all[2], "container_gpu_allocation", 1),
        ]
        var nodeCost: [ItemKey: AllocationRow] = [:]
        var allocated: [ItemKey: AllocationRow] = [:]
        var podNode: [[String]: String] = [:]
        for (path, priced, allocationMetric, scale) in resources {
            for (key, rate) in priced.rates(signals) {
                nodeCost[key, default: AllocationRow(cluster: key.cluster, day: day, name: key.values[1])][keyPath: path] = rate.integralHours
            }
            let prices = signals.items(priced.price)
            for (key, signal) in signals.items(allocationMetric) {
                let (namespace, pod, node) = (key.values[1], key.values[2], key.values[4])
                podNode[[key.cluster, namespace, pod]] = node
                let nodeKey = ItemKey(values: [key.cluster, node])
                guard let price = prices[nodeKey] else { continue }
                let cost = signal.scaled(by: scale).multiplied(by: price).integralHours
                add(key.cluster, groupName(namespace: namespace, pod: pod, node: node)) { $0[keyPath: path] += cost }
                allocated[nodeKey, default: AllocationRow(cluster: key.cluster, day: day, name: node)][keyPath: path] += cost
            }
        }
        let volumePrices = signals.items("pv_hourly_cost")
        for (key, claim) in signals.items("pod_pvc_allocation") {
            let (namespace, pod, volume) = (key.values[1], key.values[2], key.values[4])
            guard let price = volumePrices[ItemKey(values: [key.cluster, volume])] else { continue }
            let cost = claim.scaled(by: 1 / bytesPerGiB).multiplied(by: price).integralHours
            add(key.cluster, groupName(namespace: namespace, pod: pod, node: podNode[[key.cluster, namespace, pod]] ?? "")) { $0.pv += cost }
        }
        var idle: [String: AllocationRow] = [:]
        for (key, node) in nodeCost {
            let used = allocated[key] ?? AllocationRow(cluster: key.cluster, day: day, name: key.values[1])
            var row = idle[key.cluster] ?? AllocationRow(cluster: key.cluster, day: day, name: AllocationRow.idleName)
            for (path, _, _, _) in resources { row[keyPath: path] += max(0, node[keyPath: path] - used[keyPath: path]) }
            idle[key.cluster] = row
        }
        let complete = now >= day.end + options.grace
        return (Array(groups.values) + Array(idle.values))
            .sorted { a, b in a.cluster != b.cluster ? a.cluster < b.cluster : a.isIdle != b.isIdle ? b.isIdle : a.name < b.name }
            .map { row in
                var r = row
                r.complete = complete
                r.computedAt = now
                return r
            }
    }
}
