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
    ///
    /// A flow is a counter's cluster, `namespace`, `pod_name`, `service` and category. Series of one
    /// flow that count over the same instant are copies of one counter (two jobs scraping one
    /// exporter, an upgrade that adds a label), so each pair's cost is divided by the number of the
    /// flow's series with a pair spanning its later sample's time: averaged, never summed.
    func egressCosts(_ signals: DaySignals, cluster: String?) throws -> (costs: [EgressCost], leftOut: [LeftOutSeries.Entry]) {
        let day = signals.day
        let counters = try querier.select(DaySignals.matchers([Self.egressCounter], cluster: cluster),
                                          minTime: day.start - options.counterReach, maxTime: day.end - 1)
        let identity = DaySignals.identities[Self.egressCounter]!
        var leftOut: [LeftOutSeries.Entry] = []
        var flows: [ItemKey: [[CounterPair]]] = [:]
        var counted: [(key: ItemKey, category: NetworkCategory, flow: ItemKey, pairs: [CounterPair], held: HeldSignal)] = []
        for series in counters {
            var labels: [String: String] = [:]
            for pair in series.labels.pairs { labels[pair.name] = pair.value }
            guard let category = NetworkCategory.of(labels) else { continue }
            if let entry = LeftOutSeries.entry(series.labels, metric: Self.egressCounter, identity: identity) {
                leftOut.append(entry)
                continue
            }
            let key = ItemKey(values: [labels[clusterLabel]!] + identity.map { labels[$0]! })
            let flow = ItemKey(values: key.values + [labels["service"] ?? "", category.rawValue])
            let pairs = CounterPair.pairs(series.samples)
            flows[flow, default: []].append(pairs)
            counted.append((key, category, flow, pairs,
                            HeldSignal(samples: series.samples, lookback: options.lookback).clipped(to: day.start, signals.end)))
        }
        var costs: [EgressCost] = []
        for counter in counted {
            guard let price = signals.items(counter.category.priceMetric)[ItemKey(values: [counter.key.cluster])] else {
                costs.append(EgressCost(key: counter.key, category: counter.category, cost: 0, counted: .empty))
                continue
            }
            let copies = flows[counter.flow]!
            var sum = NeumaierSum()
            for pair in counter.pairs where pair.later >= day.start && pair.later < signals.end {
                guard let unitPrice = price.value(at: pair.later) else { continue }
                let counting = copies.count == 1 ? 1 : copies.count { CounterPair.span($0, pair.later) }
                sum.add(pair.increase / bytesPerGiB * unitPrice / Double(counting))
            }
            costs.append(EgressCost(key: counter.key, category: counter.category, cost: sum.value, counted: price.multiplied(by: counter.held)))
        }
        return (costs, leftOut)
    }
}

/// Two consecutive samples of a counter (no staleness marker between them; samples that are not
/// finite passed over) and its increase between them: a drop is a reset, the later value the increase.
struct CounterPair {
    let earlier: Int64
    let later: Int64
    let increase: Double

    static func pairs(_ samples: [Sample]) -> [CounterPair] {
        var out: [CounterPair] = []
        var previous: (timestamp: Int64, value: Double)?
        for sample in samples {
            guard sample.valueBits != staleMarkerBits else { previous = nil; continue }
            let value = Double(bitPattern: sample.valueBits)
            guard value.isFinite else { continue }
            if let earlier = previous {
                out.append(CounterPair(earlier: earlier.timestamp, later: sample.timestamp,
                                       increase: value >= earlier.value ? value - earlier.value : value))
            }
            previous = (sample.timestamp, value)
        }
        return out
    }

    /// Whether one of `pairs` (in time order) spans `t`: earlier < t <= later.
    static func span(_ pairs: [CounterPair], _ t: Int64) -> Bool {
        var low = 0, high = pairs.count
        while low < high {
            let mid = (low + high) / 2
            if pairs[mid].later < t { low = mid + 1 } else { high = mid }
        }
        return low < pairs.count && pairs[low].earlier < t
    }
}
