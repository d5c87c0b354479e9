import Dispatch
import Synchronization
import TallyStorage

/// A question the cost layer refuses, with the reason a client gets as a 400.
public struct CostQueryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Daily cluster costs by the cost semantics, read through the same querier as every other reader.
public struct CostEngine: Sendable {
    let querier: any SeriesQuerier
    public let options: CostOptions
    let rollups: CostRollupStore?
    /// Collects the series the answers leave out for a missing label.
    public let leftOut: LeftOutSeries

    static let egressCounter = "kubecost_pod_network_egress_bytes_total"
    /// What a daily row reads besides the egress counters.
    static let dailyMetrics = PricedItems.all.flatMap(\.metrics) + NetworkCategory.allCases.map(\.priceMetric)

    /// With `rollups`, days whose data is all in blocks are computed once and read back after.
    public init(querier: any SeriesQuerier, options: CostOptions = CostOptions(), rollups: CostRollupStore? = nil,
                leftOut: LeftOutSeries = LeftOutSeries()) {
        self.querier = querier
        self.options = options
        self.rollups = rollups
        self.leftOut = leftOut
    }

    /// One row per cluster and day, for every cluster with cost data in any of the days; a day
    /// without data for a cluster is a row of zeros with no covered minutes.
    /// `dayDone` is called as each day is done (from several threads), for a progress display.
    public func daily(from first: CostDay, to last: CostDay, cluster: String? = nil, now: Int64,
                      dayDone: @Sendable () -> Void = {}) throws -> [DailyClusterCost] {
        let days = try options.days(from: first, to: last)
        // Days are independent: computed on every core.
        let results = Mutex([Int: Result<[String: DailyClusterCost], any Error>]())
        DispatchQueue.concurrentPerform(iterations: days.count) { i in
            let result = Result { try rolledUp(days[i], cluster: cluster, now: now) }
            results.withLock { $0[i] = result }
            dayDone()
        }
        rollups?.save()
        let perDay = try results.withLock { all in try days.indices.map { try all[$0]!.get() } }
        let clusters = Set(perDay.flatMap(\.keys))
        return zip(days, perDay).flatMap { day, rows in
            clusters.sorted().map { name in
                rows[name] ?? {
                    var empty = DailyClusterCost(cluster: name, day: day)
                    empty.complete = now >= day.end + options.grace
                    empty.computedAt = now
                    return empty
                }()
            }
        }
    }

    /// A day's rows from the rollups when its data is immutable, the day is over and it was seen
    /// before; else computed, and remembered when immutable and over.
    func rolledUp(_ day: CostDay, cluster: String?, now: Int64) throws -> [String: DailyClusterCost] {
        let reach = (minTime: day.start - max(options.lookback, options.counterReach), maxTime: day.end - 1)
        guard let rollups, now >= day.end, let version = querier.immutableVersion(minTime: reach.minTime, maxTime: reach.maxTime) else {
            let computed = try daily(day, cluster: cluster, now: now)
            leftOut.add(computed.leftOut, cluster: cluster)
            return computed.rows
        }
        let all: [DailyClusterCost], allLeftOut: [LeftOutSeries.Entry]
        if let cached = rollups.rows(day, version: version) {
            all = cached.rows
            allLeftOut = cached.leftOut
        } else {
            let computed = try daily(day, cluster: nil, now: now)
            all = Array(computed.rows.values)
            allLeftOut = computed.leftOut
            // Kept only if the data is still the version it was read as (a skipped chunk, a late
            // block or a deletion meanwhile makes it another).
            if querier.immutableVersion(minTime: reach.minTime, maxTime: reach.maxTime) == version {
                rollups.store(day, version: version, rows: all, leftOut: allLeftOut, computedAt: now)
            }
        }
        leftOut.add(allLeftOut, cluster: cluster)
        var out: [String: DailyClusterCost] = [:]
        for var row in all where cluster == nil || row.cluster == cluster {
            row.complete = now >= day.end + options.grace
            out[row.cluster] = row
        }
        return out
    }

    /// The rows of one day, by cluster, and the series left out of them.
    func daily(_ day: CostDay, cluster: String?, now: Int64) throws -> (rows: [String: DailyClusterCost], leftOut: [LeftOutSeries.Entry]) {
        let series = try querier.select(DaySignals.matchers(Self.dailyMetrics, cluster: cluster),
                                        minTime: day.start - options.lookback, maxTime: day.end - 1)
        let signals = DaySignals(series, day: day, now: now, lookback: options.lookback)
        var rows: [String: DailyClusterCost] = [:]
        func row(_ name: String) -> DailyClusterCost {
            var r = DailyClusterCost(cluster: name, day: day)
            r.complete = now >= day.end + options.grace
            r.computedAt = now
            return r
        }
        for name in signals.clusters { rows[name] = row(name) }

        for priced in PricedItems.all {
            var costs: [String: NeumaierSum] = [:]
            var coverage: [String: Coverage] = [:]
            for (key, rate) in priced.rates(signals) {
                costs[key.cluster, default: NeumaierSum()].add(rate.integralHours)
                coverage[key.cluster, default: Coverage()].add(rate)
            }
            for (name, sum) in costs {
                rows[name, default: row(name)].costs[priced.category] = sum.value
                rows[name, default: row(name)].coveredMinutes[priced.category] = Double(coverage[name]?.milliseconds ?? 0) / 60_000
            }
        }
        let egress = try egressCosts(signals, cluster: cluster)
        var network: [String: (sums: [NetworkCategory: NeumaierSum], coverage: Coverage)] = [:]
        for item in egress.costs {
            network[item.key.cluster, default: ([:], Coverage())].sums[item.category, default: NeumaierSum()].add(item.cost)
            network[item.key.cluster]!.coverage.add(item.counted)
        }
        for (name, clusterNetwork) in network {
            var total = NeumaierSum()
            for category in NetworkCategory.allCases {
                guard let sum = clusterNetwork.sums[category] else { continue }
                rows[name, default: row(name)].network[category] = sum.value
                total.add(sum.value)
            }
            rows[name, default: row(name)].costs[.network] = total.value
            rows[name, default: row(name)].coveredMinutes[.network] = Double(clusterNetwork.coverage.milliseconds) / 60_000
        }
        return (rows, signals.leftOut + egress.leftOut)
    }

    /// One egress counter series' cost over the counted part of a day.
    struct EgressCost {
        /// cluster, namespace, pod.
        let key: ItemKey
        let category: NetworkCategory
        let cost: Double
        /// Where the series held a sample and its category a price: its covered time.
        let counted: HeldSignal
    }

    /// For each pair of consecutive counter samples whose later one lies in the counted part of the
    /// day: the increase (a drop is a reset: the later value is the increase) times the price held
    /// at the later sample's time. A staleness marker ends a counter's life, so no pair spans one.
    func egressCosts(_ signals: DaySignals, cluster: String?) throws -> (costs: [EgressCost], leftOut: [LeftOutSeries.Entry]) {
        let day = signals.day
        let counters = try querier.select(DaySignals.matchers([Self.egressCounter], cluster: cluster),
                                          minTime: day.start - options.counterReach, maxTime: day.end - 1)
        let identity = DaySignals.identities[Self.egressCounter]!
        var costs: [EgressCost] = [], leftOut: [LeftOutSeries.Entry] = []
        for series in counters {
            var labels: [String: String] = [:]
            for pair in series.labels.pairs { labels[pair.name] = pair.value }
            guard let category = NetworkCategory.of(labels) else { continue }
            if let entry = LeftOutSeries.entry(series.labels, metric: Self.egressCounter, identity: identity) {
                leftOut.append(entry)
                continue
            }
            let key = ItemKey(values: [labels[clusterLabel]!] + identity.map { labels[$0]! })
            guard let price = signals.items(category.priceMetric)[ItemKey(values: [key.cluster])] else {
                costs.append(EgressCost(key: key, category: category, cost: 0, counted: .empty))
                continue
            }
            var previous: Double?
            var sum = NeumaierSum()
            for sample in series.samples {
                guard sample.valueBits != staleMarkerBits else { previous = nil; continue }
                let value = Double(bitPattern: sample.valueBits)
                guard value.isFinite else { continue }
                defer { previous = value }
                guard let earlier = previous, sample.timestamp >= day.start, sample.timestamp < signals.end,
                      let unitPrice = price.value(at: sample.timestamp) else { continue }
                let increase = value >= earlier ? value - earlier : value
                sum.add(increase / bytesPerGiB * unitPrice)
            }
            let held = HeldSignal(samples: series.samples, lookback: options.lookback).clipped(to: day.start, signals.end)
            costs.append(EgressCost(key: key, category: category, cost: sum.value, counted: price.multiplied(by: held)))
        }
        return (costs, leftOut)
    }
}
