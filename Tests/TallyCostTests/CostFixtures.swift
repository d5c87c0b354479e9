import TallyStorage
@testable import TallyCost

/// Series held in memory, filtered like storage filters: the rule tests need exact sample
/// placement, not disks. Storage-backed answers are checked in the integration tests.
struct MemoryQuerier: SeriesQuerier {
    var series: [SeriesSamples] = []

    func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [SeriesSamples] {
        let predicates = matchers.map { ($0.name, $0.predicate()) }
        return series.compactMap { s in
            guard predicates.allSatisfy({ name, matches in matches(s.labels[name] ?? "") }) else { return nil }
            let samples = s.samples.filter { $0.timestamp >= minTime && $0.timestamp <= maxTime }
            return samples.isEmpty ? nil : SeriesSamples(labels: s.labels, samples: samples)
        }
    }

    /// A series with a value every `step` from `from` (inclusive) to `to` (exclusive), then a
    /// staleness marker at `to` when `stale`.
    mutating func add(_ name: String, _ labels: [String: String], from: Int64, to: Int64, step: Int64 = 60_000,
                      stale: Bool = false, value: (Int64) -> Double) {
        var samples: [Sample] = []
        var t = from
        while t < to {
            samples.append(Sample(timestamp: t, valueBits: value(t).bitPattern))
            t += step
        }
        if stale { samples.append(Sample(timestamp: to, valueBits: staleMarkerBits)) }
        add(name, labels, samples)
    }

    mutating func add(_ name: String, _ labels: [String: String], _ samples: [Sample]) {
        series.append(SeriesSamples(labels: Labels([Label("__name__", name)] + labels.map { Label($0.key, $0.value) }), samples: samples))
    }
}

let hour: Int64 = 3_600_000
let minute: Int64 = 60_000
let gib = 1_073_741_824.0

/// 2024-03-10 in UTC.
let testDay = CostDay(parsing: "2024-03-10", calendar: .utc)!

func node(_ name: String, cluster: String = "c1", extra: [String: String] = [:]) -> [String: String] {
    ["cluster_id": cluster, "node": name, "instance": name].merging(extra) { $1 }
}
