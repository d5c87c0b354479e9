/// A decoded Remote-Write request as flat arrays of offsets into the decompressed body: no string or
/// per-sample object is created while decoding.
public struct WriteRequestView: Sendable {
    /// The decompressed protobuf body that every `ByteSpan` points into.
    public internal(set) var body: [UInt8]
    public internal(set) var labels: [WireLabel] = []
    /// Remote-Write 2.0 only: per label, the symbol indexes of its name and value (as they arrived:
    /// validation leaves them in place); empty for 1.0.
    public internal(set) var labelSymbols: [LabelSymbols] = []
    /// Remote-Write 2.0 only: the request's symbols table, which `labelSymbols` index.
    public internal(set) var symbols: [ByteSpan] = []
    public internal(set) var samples: [WireSample] = []
    public internal(set) var series: [WireSeries] = []
    /// Native histograms, each series' in a run (`WireSeries.histogramStart`, `histogramCount`).
    public internal(set) var histograms: [WireHistogram] = []
    /// Exemplars, each series' in a run (`WireSeries.exemplarStart`, `exemplarCount`); their labels
    /// are in `exemplarLabels`, as they arrived (not validated).
    public internal(set) var exemplars: [WireExemplar] = []
    public internal(set) var exemplarLabels: [WireLabel] = []
    /// Metric metadata with a valid metric name and UTF-8 text (1.0's request-level entries, 2.0's
    /// per-series ones under the series' metric name); `metadataCount` counts every entry received.
    public internal(set) var metadata: [WireMetadata] = []
    public internal(set) var metadataCount = 0
    public var exemplarCount: Int { exemplars.count }
    public var histogramCount: Int { histograms.count }

    init(body: [UInt8]) { self.body = body }

    public var sampleCount: Int { samples.count }

    /// The labels of `series`, after validation: sorted by name, empty values dropped.
    public func labels(of series: WireSeries) -> ArraySlice<WireLabel> {
        labels[Int(series.labelStart)..<Int(series.labelStart + series.labelCount)]
    }

    /// Validates and normalizes the labels of the series at `index` (for a view decoded without
    /// `validatingLabels`); returns why the series is refused, if it is.
    public mutating func validateLabels(ofSeriesAt index: Int, limits: LabelLimits = LabelLimits()) -> SeriesRejection? {
        let body = self.body
        body.withUnsafeBufferPointer { LabelValidator.validate(&self, seriesAt: index, limits: limits, $0) }
        return series[index].rejection
    }

    /// Remote-Write 2.0: the series' label symbol indexes as they arrived. Read before
    /// `validateLabels`, which may reorder or drop labels of a refused series only.
    public func labelSymbols(of series: WireSeries) -> ArraySlice<LabelSymbols> {
        labelSymbols[Int(series.labelStart)..<Int(series.labelStart + series.labelCount)]
    }

    public func samples(of series: WireSeries) -> ArraySlice<WireSample> {
        samples[Int(series.sampleStart)..<Int(series.sampleStart + series.sampleCount)]
    }

    public func exemplars(of series: WireSeries) -> ArraySlice<WireExemplar> {
        exemplars[Int(series.exemplarStart)..<Int(series.exemplarStart + series.exemplarCount)]
    }

    public func labels(of exemplar: WireExemplar) -> ArraySlice<WireLabel> {
        exemplarLabels[Int(exemplar.labelStart)..<Int(exemplar.labelStart + exemplar.labelCount)]
    }
}

/// One exemplar: its labels (a run of `WriteRequestView.exemplarLabels`), value and timestamp.
public struct WireExemplar: Sendable, Equatable {
    public var labelStart: Int32
    public var labelCount: Int32 = 0
    public var valueBits: UInt64 = 0
    public var timestamp: Int64 = 0
}

/// A byte range of `WriteRequestView.body`.
public struct ByteSpan: Sendable, Equatable {
    public var start: Int32
    public var count: Int32
    public var range: Range<Int> { Int(start)..<Int(start + count) }
}

/// A Remote-Write 2.0 label as indexes into its request's symbols table.
public struct LabelSymbols: Sendable, Equatable {
    public var name: UInt32
    public var value: UInt32
}

public struct WireLabel: Sendable {
    public var name: ByteSpan
    public var value: ByteSpan
}

/// One float sample; the value stays a bit pattern so staleness markers survive exactly.
public struct WireSample: Sendable, Equatable {
    public var timestamp: Int64
    public var valueBits: UInt64
    public init(timestamp: Int64, valueBits: UInt64) {
        self.timestamp = timestamp
        self.valueBits = valueBits
    }
}

public struct WireSeries: Sendable {
    public var labelStart: Int32
    public var labelCount: Int32
    public var sampleStart: Int32
    public var sampleCount: Int32
    public var histogramCount: Int32
    public var histogramStart: Int32 = 0
    public var exemplarStart: Int32 = 0
    public var exemplarCount: Int32 = 0
    /// Set when the label set breaks a rule; none of the series' samples may be stored then.
    public var rejection: SeriesRejection?
    /// The series' `labels` fields exactly as they arrived, when they came back to back (empty
    /// otherwise). Equal bytes decode and validate to the same label set, so a receiver may key
    /// a cache of known series by them.
    public var encodedLabels = ByteSpan(start: 0, count: 0)
}

/// Why a whole series of a request is refused.
public enum SeriesRejection: String, Sendable, CaseIterable {
    case emptyLabelName = "empty_label_name"
    case duplicateLabelName = "duplicate_label_name"
    case invalidUTF8 = "invalid_utf8"
    case missingMetricName = "missing_metric_name"
    /// A label name outside Prometheus' `[a-zA-Z_][a-zA-Z0-9_]*`.
    case invalidLabelName = "invalid_label_name"
    /// A metric name outside Prometheus' `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    case invalidMetricName = "invalid_metric_name"
    case tooManyLabels = "max_label_names_per_series"
    case labelNameTooLong = "max_label_name_length"
    case labelValueTooLong = "max_label_value_length"
    /// Remote-Write 2.0 only: its label references must come sorted by name, each name once.
    case unsortedLabels = "unsorted_labels"
    /// Remote-Write 2.0 only: a label value refers to the empty string (1.0 drops such labels).
    case emptyLabelValue = "empty_label_value"
}

/// Bounds on one series' labels, counted after empty values are dropped; lengths in bytes. The
/// defaults leave room for Kubecost's widest series (`kube_pod_labels` with every pod label copied).
public struct LabelLimits: Sendable, Equatable {
    public var maxLabelNamesPerSeries = 128
    public var maxLabelNameLength = 1024
    public var maxLabelValueLength = 4096

    public init() {}
}
