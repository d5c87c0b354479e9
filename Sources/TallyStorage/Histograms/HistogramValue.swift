/// A native histogram of either kind, as storage holds and gives it back: a series may switch
/// between integer and float histograms (Prometheus cuts a chunk where it does).
public enum HistogramValue: Sendable, Equatable {
    case integer(IntegerHistogram)
    case float(FloatHistogram)

    /// The same sample, as `NativeHistogram.isSameSample` decides; never across kinds.
    public func isSameSample(as other: HistogramValue) -> Bool {
        switch (self, other) {
        case let (.integer(a), .integer(b)): a.isSameSample(as: b)
        case let (.float(a), .float(b)): a.isSameSample(as: b)
        default: false
        }
    }

    /// Whether the histogram is a staleness marker or fits a chunk (`NativeHistogram.isWellFormed`).
    var isWellFormed: Bool {
        switch self {
        case let .integer(h): h.isWellFormed
        case let .float(h): h.isWellFormed
        }
    }

    public var isFloat: Bool {
        if case .float = self { return true }
        return false
    }

    /// The histogram as Prometheus' `String()` writes it (what `tally dump` prints).
    public var promtoolText: String {
        switch self {
        case let .integer(h): h.promtoolText
        case let .float(h): h.promtoolText
        }
    }

    /// Calls `body` with each histogram of a histogram (2) or float-histogram (3) chunk until it
    /// returns false. False when the chunk is of another encoding, ends early or holds an
    /// impossible value.
    static func forEach(inChunk bytes: UnsafeBufferPointer<UInt8>, encoding: UInt8, _ body: (Int64, HistogramValue) -> Bool) -> Bool {
        switch encoding {
        case HistogramChunk.encoding: iterate(IntegerHistogram.self, bytes, body)
        case FloatHistogramChunk.encoding: iterate(FloatHistogram.self, bytes, body)
        default: false
        }
    }

    private static func iterate<H: StoredHistogram>(_: H.Type, _ bytes: UnsafeBufferPointer<UInt8>, _ body: (Int64, HistogramValue) -> Bool) -> Bool {
        var it = H.Iterator(bytes)
        while let (t, h) = it.next() {
            if !body(t, h.value) { return true }
        }
        return !it.failed
    }
}
