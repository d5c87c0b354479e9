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
    static func sortedUnique(_ samples: [Sample]) -> [Sample] { sortedUnique(samples, time: \.timestamp) }

    /// Sorts by timestamp and keeps the first histogram of each timestamp.
    static func sortedUnique(_ histograms: [HistogramSample]) -> [HistogramSample] { sortedUnique(histograms, time: \.timestamp) }

    private static func sortedUnique<T>(_ items: [T], time: (T) -> Int64) -> [T] {
        var out: [T] = []
        out.reserveCapacity(items.count)
        for item in items.enumerated().sorted(by: { (time($0.element), $0.offset) < (time($1.element), $1.offset) }).map(\.element)
        where out.last.map(time) != time(item) {
            out.append(item)
        }
        return out
    }

    /// Histograms of several sources (in source order) merged per label set, each time once, from
    /// the earliest source; sorted by labels.
    static func merge(_ sources: [[SeriesHistograms]]) -> [SeriesHistograms] {
        var merged: [Labels: [HistogramSample]] = [:]
        for source in sources {
            for series in source { merged[series.labels, default: []] += series.histograms }
        }
        return merged.map { SeriesHistograms(labels: $0.key, histograms: sortedUnique($0.value)) }.sorted { $0.labels < $1.labels }
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
