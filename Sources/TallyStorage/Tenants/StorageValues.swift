#if canImport(Glibc)
import Glibc
#endif
import Foundation

// The values the storage layer hands across its boundary: options, verdicts, reports, errors and
// samples copied out. TenantDatabase.swift holds the database that makes them.

/// Something storage did or failed to do on its own: what happened, in a few fixed words, and its
/// particulars as named fields, so that a log prints one event a line with fields to filter on.
public struct StorageEvent: Sendable, CustomStringConvertible {
    public let message: String
    public let fields: [String: String]
    /// A failure or repair an operator should look at, not routine work.
    public let isProblem: Bool

    public init(_ message: String, _ fields: [String: String], isProblem: Bool = false) {
        self.message = message
        self.fields = fields
        self.isProblem = isProblem
    }

    public var description: String { message + fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined() }
}

/// How a tenant database behaves: WAL sync and segments, block range, late samples, budgets, hooks.
public struct StorageOptions: Sendable {
    public var syncPolicy: WALSyncPolicy
    public var walSegmentSize: Int
    /// Whether WAL records and checkpoints are written snappy-compressed (Prometheus'
    /// `--storage.tsdb.wal-compression`, on by default since 2.20). Either kind is read either way.
    public var walCompression: Bool
    /// Block range in milliseconds (2h): head chunks never cross it, blocks are cut along it.
    public var blockRange: Int64
    /// How far behind the tenant's newest sample a late sample is still accepted (ms); 0 refuses
    /// every out-of-order sample.
    public var outOfOrderWindow: Int64
    /// Memory the late samples of one tenant may hold before they are flushed into blocks early.
    public var outOfOrderMaxBytes: Int
    /// Observes each WAL fdatasync's duration (self-metrics).
    public var observeSync: @Sendable (Duration) -> Void
    /// Shared by a registry's tenants to bound their open WAL segment files; nil leaves each tenant's
    /// segment open from its first append until a cut or close.
    public var walFileBudget: WALFileBudget?
    /// Receives what background work did or failed to do, one event each (the server logs it).
    public var report: @Sendable (StorageEvent) -> Void
    /// Receives each block cut that wrote blocks or failed, whether background work, `cutBlock` or a
    /// clean stop did it (the server counts, times and logs them).
    public var observeCut: @Sendable (BlockCutOutcome) -> Void

    public init(syncPolicy: WALSyncPolicy = .always, walSegmentSize: Int = 128 * 1024 * 1024, walCompression: Bool = true,
                blockRange: Int64 = 2 * 3600 * 1000,
                outOfOrderWindow: Int64 = 24 * 3600 * 1000,
                outOfOrderMaxBytes: Int = 64 * 1024 * 1024,
                observeSync: @escaping @Sendable (Duration) -> Void = { _ in },
                walFileBudget: WALFileBudget? = nil,
                report: @escaping @Sendable (StorageEvent) -> Void = { _ in },
                observeCut: @escaping @Sendable (BlockCutOutcome) -> Void = { _ in }) {
        self.syncPolicy = syncPolicy
        self.walSegmentSize = walSegmentSize
        self.walCompression = walCompression
        self.blockRange = blockRange
        self.outOfOrderWindow = outOfOrderWindow
        self.outOfOrderMaxBytes = outOfOrderMaxBytes
        self.observeSync = observeSync
        self.walFileBudget = walFileBudget
        self.report = report
        self.observeCut = observeCut
    }
}

/// One block cut of a tenant: how long it took and the blocks it wrote, or why it failed (the head
/// keeps the data then).
public struct BlockCutOutcome: Sendable {
    public let tenant: String
    public let duration: Duration
    public let result: Result<[BlockMeta], any Error>
}

/// A tenant's figures for monitoring, each read at once (`TenantDatabase.figures`).
public struct TenantFigures: Sendable {
    public var headSeries = 0
    /// Memory held by late samples not yet written to blocks.
    public var outOfOrderBytes = 0
    /// The newest in-order sample the head has taken since the open (WAL replay included), in ms;
    /// with none, the end of the newest block; nil for a tenant with neither.
    public var newestSampleTime: Int64?
    public var blocks = 0
    /// Index and chunk bytes of the loaded blocks.
    public var blockBytes = 0
    /// Bytes of the WAL directory: segments and checkpoint.
    public var walBytes = 0
}

/// What replaying a tenant's WAL found.
public struct ReplayReport: Sendable {
    public var segments = 0
    public var records = 0
    public var series = 0
    public var samples = 0
    public var histograms = 0
    /// Chunks taken from the head chunk files (`chunks_head/`), whose samples were not appended again.
    public var headChunks = 0
    /// Samples whose series record was not found (after a corrupt segment).
    public var orphanSamples = 0
    /// Samples with a timestamp outside `StorableTime.range` (written by an older version), skipped.
    public var unstorableSamples = 0
    /// Torn tails cut and corruption found, one readable line each.
    public var problems: [String] = []
    /// The problems that left WAL records or samples out of the head (a corrupt segment or
    /// checkpoint, undecodable or unknown records, samples skipped): a read of the head lacks them.
    /// A torn tail is not among them: its record was never whole, so never acknowledged.
    public var leftOut = 0
    /// The corruption among them, typed: file, section of the format, offset (each also in `problems`).
    public var corruptions: [WALCorruption] = []
    /// Corruption found in the head chunk files (each also in `problems`): the chunks from there on
    /// were rebuilt from the WAL.
    public var headChunkCorruptions: [HeadChunkCorruption] = []
    /// Block directories that could not be opened (each also in `problems`): their data is not read.
    public var unloadedBlocks: [String] = []
    public var duration: Duration = .zero
}

/// A block directory that is on disk but could not be opened: its samples are in no answer until
/// it loads (the server tries again at each block scan).
public struct UnloadedBlock: Sendable, Equatable {
    public let name: String
    /// Its `meta.json`'s [minTime, maxTime), when that much can be read.
    public let minTime: Int64?
    public let maxTime: Int64?
    public let reason: String

    init(name: String, directory: String, reason: String) {
        self.name = name
        self.reason = reason
        let meta = try? BlockMeta.read(directory: directory, block: name)
        minTime = meta?.minTime
        maxTime = meta?.maxTime
    }

    /// Whether its samples may lie in [minTime, maxTime]: always when its own range is unknown.
    public func mayHold(minTime lo: Int64, maxTime hi: Int64) -> Bool {
        guard let minTime, let maxTime else { return true }
        return minTime <= hi && lo < maxTime
    }

    /// What an answer that could have held its samples says.
    public var warning: String {
        let span = minTime.flatMap { lo in maxTime.map { hi in ", for [\(lo), \(hi)) ms," } } ?? ""
        return "block \(name)\(span) is on disk but could not be read, so its samples are left out: \(reason)"
    }
}

/// Whether one sample was taken.
public enum SampleVerdict: Sendable, Equatable {
    case accepted
    /// The same timestamp and value bits are already stored: accepted silently.
    case duplicate
    /// The timestamp is stored with a different value.
    case conflict
    /// Older than the series' newest sample, and out-of-order samples are not accepted (window 0).
    case outOfOrder
    /// Older than the out-of-order window allows.
    case tooOld
    /// Outside `StorableTime.range`: no series can hold it.
    case outOfBounds
    /// A histogram whose bucket counts do not match its spans.
    case malformedHistogram
}

/// Bounds on a tenant's head series: a series that would pass one is not created, and its samples
/// are refused. Existing series keep taking samples.
public struct SeriesLimits: Sendable, Equatable {
    public var maxSeries: Int
    public var maxSeriesPerMetric: Int

    public init(maxSeries: Int = .max, maxSeriesPerMetric: Int = .max) {
        self.maxSeries = maxSeries
        self.maxSeriesPerMetric = maxSeriesPerMetric
    }
}

/// Which series limit refused a new series; the raw value is the refusal reason senders see.
public enum SeriesLimitExceeded: String, Error, Sendable {
    case maxSeries = "max_series_per_tenant"
    case maxSeriesPerMetric = "max_series_per_metric"
}

/// An opaque series id valid within one `append` call.
public struct SeriesHandle: Sendable { let index: Int32 }

/// The hash of a series' encoded label bytes, computed once for the lookup and the remembering.
public struct EncodedLabelsKey: Sendable { let hash: UInt64 }

/// What `AppendBatch.knownSeries(encodedLabels:)` found: the series, or the key to remember the
/// bytes by once the series is made.
public enum EncodedLabelsLookup: Sendable {
    case known(SeriesHandle)
    case unknown(EncodedLabelsKey)
}

/// What one append wrote; `position` is what `whenDurable` waits for.
public struct AppendCommit: Sendable {
    public let position: UInt64
    public let createdSeries: Int
    /// Float samples logged, then native histograms.
    public let appendedSamples: Int
    public let appendedHistograms: Int
}

public enum StorageError: Error, CustomStringConvertible, Sendable {
    case io(StorageIOError)
    case readOnly
    case closed

    public var description: String {
        switch self {
        case let .io(e): e.description
        case .readOnly: "the database is open read-only"
        case .closed: "the database is closed"
        }
    }
}

/// What one `compact` call did.
public struct CompactionReport: Sendable {
    public var blocksBefore = 0
    public var blocksAfter = 0
    public var groups: [CompactionGroup] = []
    /// Per group its child; nil when every sample of the parents was deleted, so none was written.
    public var written: [BlockMeta?] = []
    /// Groups that could not be merged, each with the reason; their blocks are left as they were.
    public var failures: [String] = []
}

/// What one `deleteSeries` call deleted (or, on a dry run, would delete), per block and the head.
public struct DeletionReport: Sendable {
    public struct Part: Sendable {
        /// A block's ULID, or "head".
        public var place: String
        public var series: Int
        public var samples: Int
    }

    public var dryRun: Bool
    public var parts: [Part] = []

    public var samples: Int { parts.reduce(0) { $0 + $1.samples } }
}

/// Samples of one series, copied out of storage for a caller.
public struct SeriesSamples: Sendable {
    public let labels: Labels
    public let samples: [Sample]
    public init(labels: Labels, samples: [Sample]) {
        self.labels = labels
        self.samples = samples
    }
}

/// A native histogram (integer or float) and its time, copied out of storage (made only by storage).
public struct HistogramSample: Sendable, Equatable {
    public let timestamp: Int64
    public let histogram: HistogramValue

    init(timestamp: Int64, histogram: HistogramValue) {
        self.timestamp = timestamp
        self.histogram = histogram
    }

    init<H: StoredHistogram>(timestamp: Int64, histogram: H) {
        self.init(timestamp: timestamp, histogram: histogram.value)
    }
}

/// Histograms of one series, copied out of storage for a caller (made only by storage).
public struct SeriesHistograms: Sendable {
    public let labels: Labels
    public let histograms: [HistogramSample]
}

/// One series' stored sample count and time span.
public struct SeriesSpan: Sendable {
    public let labels: Labels
    public var samples: Int
    public var minTime: Int64
    public var maxTime: Int64
}

/// What Prometheus' `/api/v1/status/tsdb` reports of a tenant's head: its size and span, and the
/// largest of four cardinality counts, each largest first, ties in byte order of the name.
public struct HeadCardinality: Sendable {
    public struct Count: Sendable, Equatable {
        public let name: String
        public let count: Int
    }

    public var series = 0
    /// Distinct label pairs (name and value) of the head's series.
    public var labelPairs = 0
    /// Float chunks, closed and open, and histogram chunks.
    public var chunks = 0
    /// The head's span: `.max` and `.min` while it holds nothing, as Prometheus' empty head.
    public var minTime = Int64.max
    public var maxTime = Int64.min
    /// Series per metric name.
    public var seriesByMetricName: [Count] = []
    /// Distinct values per label name.
    public var valuesByLabelName: [Count] = []
    /// Bytes of the distinct values per label name (Prometheus' `memoryInBytesByLabelName`).
    public var valueBytesByLabelName: [Count] = []
    /// Series per label pair, named `name=value`.
    public var seriesByLabelPair: [Count] = []

    public init() {}
}

/// A (timestamp, value bits) pair.
public struct Sample: Sendable, Equatable {
    public let timestamp: Int64
    public let valueBits: UInt64
    public init(timestamp: Int64, valueBits: UInt64) {
        self.timestamp = timestamp
        self.valueBits = valueBits
    }
}

