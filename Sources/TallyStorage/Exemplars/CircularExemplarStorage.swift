import Synchronization

/// One exemplar: its own labels (a trace id, say), value and timestamp.
public struct Exemplar: Sendable, Equatable {
    public var labels: Labels
    public var valueBits: UInt64
    public var timestamp: Int64

    public init(labels: Labels, valueBits: UInt64, timestamp: Int64) {
        self.labels = labels
        self.valueBits = valueBits
        self.timestamp = timestamp
    }

    public var value: Double { Double(bitPattern: valueBits) }

    /// Prometheus' `Exemplar.Equals`: same labels and value (as floats: NaN never equals), and the
    /// same timestamp unless both have none (0, as Remote-Write's decoder sets `HasTs`).
    func sameAs(_ other: Exemplar) -> Bool {
        guard labels == other.labels else { return false }
        if (timestamp != 0 || other.timestamp != 0) && timestamp != other.timestamp { return false }
        return value == other.value
    }

    /// The OpenMetrics bound Prometheus applies: label names and values of at most 128 characters together.
    public static let maxLabelSetLength = 128
}

/// A series' exemplars as a query returns them.
public struct SeriesExemplars: Sendable, Equatable {
    public var seriesLabels: Labels
    public var exemplars: [Exemplar]
}

/// What became of one exemplar offered to the storage.
public enum ExemplarVerdict: Sendable, Equatable {
    case appended
    /// Equal to its series' newest exemplar: a no-op, and not an error (as in Prometheus).
    case duplicate
    /// Not newer than its series' newest exemplar: not stored.
    case outOfOrder
    /// Its labels are longer than `Exemplar.maxLabelSetLength` characters: not stored.
    case labelSetTooLong
    /// The storage holds none (`capacity` 0).
    case disabled
}

/// In-memory exemplars of one tenant, as Prometheus' `CircularExemplarStorage` (tsdb/exemplar.go,
/// v2.42) keeps them: one ring of `capacity` entries for all series, the oldest overwritten first;
/// each series' entries linked oldest to newest, so a series' newest is found at once and its run
/// read in order. An exemplar equal to its series' newest is skipped; one not newer is refused.
/// Entries are allocated as the ring fills, not up front. Not persisted: a restart starts empty.
public final class CircularExemplarStorage: Sendable {
    private struct Entry {
        var exemplar: Exemplar
        var series: Labels
        /// The next entry of the same series, or -1.
        var next: Int
    }

    private struct Run {
        var oldest: Int
        var newest: Int
    }

    private struct State {
        var entries: [Entry] = []
        var nextIndex = 0
        var runs: [Labels: Run] = [:]
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) { self.capacity = max(0, capacity) }

    /// Exemplars held now.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Series with at least one exemplar held.
    public var seriesCount: Int { state.withLock { $0.runs.count } }

    /// Adds `exemplar` to `series` (labels as stored: sorted, no empty values).
    public func add(_ exemplar: Exemplar, to series: Labels) -> ExemplarVerdict {
        guard capacity > 0 else { return .disabled }
        var length = 0
        for label in exemplar.labels.pairs {
            length += label.name.unicodeScalars.count + label.value.unicodeScalars.count
            if length > Exemplar.maxLabelSetLength { return .labelSetTooLong }
        }
        return state.withLock { state in
            if let run = state.runs[series] {
                let newest = state.entries[run.newest].exemplar
                if newest.sameAs(exemplar) { return .duplicate }
                if exemplar.timestamp <= newest.timestamp { return .outOfOrder }
            }
            let at = state.nextIndex
            if at < state.entries.count {
                // The ring is full: the oldest entry makes room, and leaves its series' run.
                let evicted = state.entries[at]
                if evicted.next < 0 {
                    state.runs[evicted.series] = nil
                } else {
                    state.runs[evicted.series]?.oldest = evicted.next
                }
            }
            let entry = Entry(exemplar: exemplar, series: series, next: -1)
            if at < state.entries.count { state.entries[at] = entry } else { state.entries.append(entry) }
            if let run = state.runs[series] {
                state.entries[run.newest].next = at
                state.runs[series]?.newest = at
            } else {
                state.runs[series] = Run(oldest: at, newest: at)
            }
            state.nextIndex = (at + 1) % capacity
            return .appended
        }
    }

    /// Exemplars in `[start, end]` of the series that some matcher set matches entirely (a missing
    /// label matches as ""), series in label order, each series' exemplars oldest first.
    public func select(start: Int64, end: Int64, _ matcherSets: [[LabelMatcher]]) -> [SeriesExemplars] {
        let predicates = matcherSets.map { set in set.map { ($0.name, $0.predicate()) } }
        var found: [SeriesExemplars] = state.withLock { state in
            var found: [SeriesExemplars] = []
            for (series, run) in state.runs {
                if state.entries[run.oldest].exemplar.timestamp > end || state.entries[run.newest].exemplar.timestamp < start { continue }
                guard predicates.contains(where: { set in set.allSatisfy { name, matches in matches(series[name] ?? "") } }) else { continue }
                var exemplars: [Exemplar] = []
                var at = run.oldest
                while at >= 0 {
                    let entry = state.entries[at]
                    if entry.exemplar.timestamp > end { break }
                    if entry.exemplar.timestamp >= start { exemplars.append(entry.exemplar) }
                    at = entry.next
                }
                if !exemplars.isEmpty { found.append(SeriesExemplars(seriesLabels: series, exemplars: exemplars)) }
            }
            return found
        }
        found.sort { $0.seriesLabels < $1.seriesLabels }
        return found
    }
}
