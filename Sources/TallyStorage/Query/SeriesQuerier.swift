import Synchronization

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

/// A tenant read that leaves out what it cannot read (a corrupt chunk or series entry) instead of
/// failing, and keeps one line per thing left out, so an answer can be given and flagged. Once
/// anything was left out its data is no longer a stable version: nothing computed from it is kept.
public final class SkippingQuerier: SeriesQuerier {
    private let database: TenantDatabase
    private let skipped = Mutex<[String]>([])

    public init(_ database: TenantDatabase) { self.database = database }

    /// What was left out so far, one line each, without repeats.
    public var warnings: [String] { skipped.withLock { $0 } }

    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [SeriesSamples] {
        for block in database.unloadedBlocks where block.mayHold(minTime: minTime, maxTime: maxTime) { note(block.warning) }
        return try database.select(matchers, minTime: minTime, maxTime: maxTime) { error in self.note("left out unreadable data: \(error)") }
    }

    private func note(_ line: String) {
        skipped.withLock { if !$0.contains(line) { $0.append(line) } }
    }

    public func immutableVersion(minTime: Int64, maxTime: Int64) -> String? {
        skipped.withLock { $0.isEmpty } ? database.immutableVersion(minTime: minTime, maxTime: maxTime) : nil
    }
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a series where it stands.
public let staleMarkerBits: UInt64 = 0x7ff0_0000_0000_0002
