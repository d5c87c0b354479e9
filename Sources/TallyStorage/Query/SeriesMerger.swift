/// Merges series from several sources (blocks, head): same label set, samples merged by timestamp.
/// A timestamp present in more than one source is kept once, from the earliest source.
enum SeriesMerger {
    static func merge(_ sources: [[SeriesSamples]]) -> [SeriesSamples] {
        var merged: [Labels: [Sample]] = [:]
        for source in sources {
            for series in source {
                merged[series.labels, default: []].merge(series.samples)
            }
        }
        return merged.map { SeriesSamples(labels: $0.key, samples: $0.value) }.sorted { $0.labels < $1.labels }
    }

    /// Sorts by timestamp and keeps the first sample of each timestamp.
    static func sortedUnique(_ samples: [Sample]) -> [Sample] {
        var out: [Sample] = []
        out.reserveCapacity(samples.count)
        for s in samples.enumerated().sorted(by: { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }).map(\.element)
        where out.last?.timestamp != s.timestamp {
            out.append(s)
        }
        return out
    }

    static func mergeSorted(_ a: [Sample], _ b: [Sample]) -> [Sample] {
        var out: [Sample] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].timestamp < b[j].timestamp) {
                out.append(a[i]); i += 1
            } else if i == a.count || b[j].timestamp < a[i].timestamp {
                out.append(b[j]); j += 1
            } else {
                out.append(a[i]); i += 1; j += 1
            }
        }
        return out
    }
}

extension Array where Element == Sample {
    /// Merges in place; sources come in time order (blocks by minTime, then the head), so the
    /// common case is a plain append.
    mutating func merge(_ later: [Sample]) {
        guard let last, let first = later.first else {
            if isEmpty { self = later }
            return
        }
        if first.timestamp > last.timestamp { append(contentsOf: later) } else { self = SeriesMerger.mergeSorted(self, later) }
    }
}
