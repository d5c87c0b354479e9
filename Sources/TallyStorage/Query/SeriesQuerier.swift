/// The one read interface above storage: series matching a selector with their samples in a
/// closed time range, merged across head and blocks. `tally dump`, the cost layer and PromQL all
/// read through it, so what one sees the others see.
public protocol SeriesQuerier: Sendable {
    func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [SeriesSamples]

    /// A name for the data in the range that changes whenever the data may have; nil when it
    /// may still change. Sources without immutable parts answer nil.
    func immutableVersion(minTime: Int64, maxTime: Int64) -> String?
}

extension SeriesQuerier {
    public func immutableVersion(minTime: Int64, maxTime: Int64) -> String? { nil }
}

extension TenantDatabase: SeriesQuerier {}

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a series where it stands.
public let staleMarkerBits: UInt64 = 0x7ff0_0000_0000_0002
