/// The one read interface above storage: series matching a selector with their samples in a
/// closed time range, merged across head and blocks. `tally dump`, the cost layer and PromQL all
/// read through it, so what one sees the others see.
public protocol SeriesQuerier: Sendable {
    func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [SeriesSamples]
}

extension TenantDatabase: SeriesQuerier {}

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a series where it stands.
public let staleMarkerBits: UInt64 = 0x7ff0_0000_0000_0002
