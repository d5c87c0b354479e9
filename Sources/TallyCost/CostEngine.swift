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

    static let egressCounter = "kubecost_pod_network_egress_bytes_total"

    /// With `rollups`, days whose data is all in blocks are computed once and read back after.
    public init(querier: any SeriesQuerier, options: CostOptions = CostOptions(), rollups: CostRollupStore? = nil) {
        self.querier = querier
        self.options = options
        self.rollups = rollups
    }

    /// The days from `first` to `last` inclusive, checked against the documented maximum.
    public func days(from first: CostDay, to last: CostDay) throws(CostQueryError) -> [CostDay] {
        guard first <= last else { throw CostQueryError("start \(first.date) is after end \(last.date)") }
        let count = last.index - first.index + 1
        guard count <= options.maximumDays else {
            throw CostQueryError("\(count) days asked, at most \(options.maximumDays) per question")
        }
        return (0..<count).map { first.advanced(by: $0) }
    }

    /// One row per cluster and day, for every cluster with cost data in any of the days; a day
    /// without data for a cluster is a row of zeros with no covered minutes.
    /// `dayDone` is called as each day is done (from several threads), for a progress display.
    public func daily(from first: CostDay, to last: CostDay, cluster: String? = nil, now: Int64,
                      dayDone: @Sendable () -> Void = {}) throws -> [DailyClusterCost] {
        let days = try days(from: first, to: last)
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

    /// A day's rows from the rollups when its data is immutable and was seen before; else
    /// computed, and remembered when immutable.
    func rolledUp(_ day: CostDay, cluster: String?, now: Int64) throws -> [String: DailyClusterCost] {
        guard let rollups, let version = querier.immutableVersion(minTime: day.start - max(options.lookback, options.counterReach),
                                                                   maxTime: day.end - 1) else {
            return try daily(day, cluster: cluster, now: now)
        }
        let all: [DailyClusterCost]
        if let cached = rollups.rows(day, version: version) {
            all = cached.rows
        } else {
            all = Array(try daily(day, cluster: nil, now: now).values)
            // Kept only if the data is still the version it was read as (a skipped chunk, a late
            // block or a deletion meanwhile makes it another).
            if querier.immutableVersion(minTime: day.start - max(options.lookback, options.counterReach), maxTime: day.end - 1) == version {
                rollups.store(day, version: version, rows: all, computedAt: now)
            }
        }
        var out: [String: DailyClusterCost] = [:]
        for var row in all where cluster == nil || row.cluster == cluster {
            row.complete = now >= day.end + options.grace
            out[row.cluster] = row
        }
        return out
    }

    /// The rows of one day, by cluster.
    func daily(_ day: CostDay, cluster: String?, now: Int64) throws -> [String: DailyClusterCost] {
        var metrics = PricedItems.all.flatMap(\.metrics)
        metrics += NetworkCategory.allCases.map(\.priceMetric)
        let series = try querier.select(DaySignals.matchers(metrics, cluster: cluster),
                                        minTime: day.start - options.lookback, maxTime: day.end - 1)
        let signals = DaySignals(series, day: day, lookback: options.lookback)
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
        for (name, network) in try networkCosts(day, signals: signals, cluster: cluster) {
            rows[name, default: row(name)].network = network.costs
            var total = NeumaierSum()
            for category in NetworkCategory.allCases { total.add(network.costs[category] ?? 0) }
            rows[name, default: row(name)].costs[.network] = total.value
            rows[name, default: row(name)].coveredMinutes[.network] = Double(network.coverage.milliseconds) / 60_000
        }
        return rows
    }

    struct NetworkDay {
        var costs: [NetworkCategory: Double] = [:]
        var coverage = Coverage()
    }

    /// For each pair of consecutive counter samples whose later one lies in the day: the increase
    /// (a drop is a reset: the later value is the increase) times the price held at the later
    /// sample's time. A staleness marker ends a counter's life, so no pair spans one.
    func networkCosts(_ day: CostDay, signals: DaySignals, cluster: String?) throws -> [String: NetworkDay] {
        let counters = try querier.select(DaySignals.matchers([Self.egressCounter], cluster: cluster),
                                          minTime: day.start - options.counterReach, maxTime: day.end - 1)
        var out: [String: NetworkDay] = [:]
        var sums: [String: [NetworkCategory: NeumaierSum]] = [:]
        for series in counters {
            var labels: [String: String] = [:]
            for pair in series.labels.pairs { labels[pair.name] = pair.value }
            guard let category = NetworkCategory.of(labels) else { continue }
            let name = labels[clusterLabel] ?? ""
            if out[name] == nil { out[name] = NetworkDay() }
            guard let price = signals.items(category.priceMetric)[ItemKey(values: [name])] else { continue }
            var previous: Double?
            var sum = NeumaierSum()
            for sample in series.samples {
                guard sample.valueBits != staleMarkerBits else { previous = nil; continue }
                let value = Double(bitPattern: sample.valueBits)
                guard value.isFinite else { continue }
                defer { previous = value }
                guard let earlier = previous, sample.timestamp >= day.start, sample.timestamp < day.end,
                      let unitPrice = price.value(at: sample.timestamp) else { continue }
                let increase = value >= earlier ? value - earlier : value
                sum.add(increase / bytesPerGiB * unitPrice)
            }
            sums[name, default: [:]][category, default: NeumaierSum()].add(sum.value)
            let held = HeldSignal(samples: series.samples, lookback: options.lookback).clipped(to: day.start, day.end)
            out[name, default: NetworkDay()].coverage.add(price.multiplied(by: held))
        }
        for (name, categories) in sums {
            for (category, sum) in categories { out[name, default: NetworkDay()].costs[category] = sum.value }
        }
        return out
    }
}
