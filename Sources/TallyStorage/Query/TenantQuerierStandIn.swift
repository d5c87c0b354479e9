// SCRATCH STAND-IN for the lead's TenantQuerier (Sources/TallyStorage/Query/TenantQuerier.swift).
// Deleted before merging main.
extension TenantDatabase {
    public func querier(minTime: Int64, maxTime: Int64) -> TenantQuerier { TenantQuerier(self, minTime: minTime, maxTime: maxTime) }
}

public final class TenantQuerier: Sendable {
    let db: TenantDatabase
    let minTime: Int64, maxTime: Int64
    init(_ db: TenantDatabase, minTime: Int64, maxTime: Int64) { (self.db, self.minTime, self.maxTime) = (db, minTime, maxTime) }

    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [QueriedSeries] {
        try db.select(matchers, minTime: minTime, maxTime: maxTime).filter { !$0.samples.isEmpty }.map { QueriedSeries(labels: $0.labels, samples: $0.samples) }
    }
    public func labelNames(_ matchers: [LabelMatcher]) throws -> [String] {
        let all = try db.select(matchers.isEmpty ? [try LabelMatcher("__name__", .regex, ".+")] : matchers, minTime: minTime, maxTime: maxTime)
        return Set(all.filter { !$0.samples.isEmpty }.flatMap { $0.labels.pairs.map(\.name) }).sorted()
    }
    public func labelValues(_ name: String, _ matchers: [LabelMatcher]) throws -> [String] {
        let all = try db.select(matchers.isEmpty ? [try LabelMatcher("__name__", .regex, ".+")] : matchers, minTime: minTime, maxTime: maxTime)
        return Set(all.filter { !$0.samples.isEmpty }.compactMap { $0.labels[name] }).sorted()
    }
    public func close() {}
}

public struct QueriedSeries: Sendable {
    public let labels: Labels
    public let samples: [Sample]
}
