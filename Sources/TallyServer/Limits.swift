import Foundation
import Synchronization
import TallyStorage
import TallyWire
import Yams

/// What one tenant may send. The defaults are generous but finite: a Kubecost cluster of 200 nodes
/// and 20,000 pods sends about 400,000 series at a few thousand samples a second, far inside them.
public struct TenantLimits: Sendable, Equatable {
    public var labels = LabelLimits()
    public var series = SeriesLimits(maxSeries: 2_000_000, maxSeriesPerMetric: 500_000)
    /// Samples newer than now plus this (ms) are refused (`timestamp_out_of_bounds`).
    public var maxFuture: Int64 = 10 * 60_000
    /// Samples older than now minus this (ms) are refused; 0 leaves only the late-sample window.
    public var maxPast: Int64 = 0
    public var maxSamplesPerRequest = 1_000_000
    /// Token bucket: samples a second, and the most that may arrive at once.
    public var ingestionRate = 1_000_000
    public var ingestionBurst = 10_000_000

    public init() {}

    /// Applies the keys of one YAML mapping (`max_series_per_tenant: 1000`, `max_future: 10m`, ...).
    mutating func apply(_ node: Node, context: String) throws(LimitsConfigError) {
        guard let mapping = node.mapping else { throw LimitsConfigError("\(context): expected a mapping of limit names to values") }
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw LimitsConfigError("\(context): keys must be limit names") }
            func count() throws(LimitsConfigError) -> Int {
                guard let n = value.int, n > 0 else { throw LimitsConfigError("\(context).\(key): expected a positive whole number") }
                return n
            }
            func duration(allowingZero: Bool) throws(LimitsConfigError) -> Int64 {
                guard let text = value.string, let ms = ServerConfiguration.milliseconds(text), ms > 0 || (allowingZero && ms == 0) else {
                    throw LimitsConfigError("\(context).\(key): expected a duration like 10m")
                }
                return ms
            }
            switch key {
            case "max_series_per_tenant": series.maxSeries = try count()
            case "max_series_per_metric": series.maxSeriesPerMetric = try count()
            case "max_label_names_per_series": labels.maxLabelNamesPerSeries = try count()
            case "max_label_name_length": labels.maxLabelNameLength = try count()
            case "max_label_value_length": labels.maxLabelValueLength = try count()
            case "max_samples_per_request": maxSamplesPerRequest = try count()
            case "ingestion_rate": ingestionRate = try count()
            case "ingestion_burst": ingestionBurst = try count()
            case "max_future": maxFuture = try duration(allowingZero: true)
            case "max_past": maxPast = try duration(allowingZero: true)
            default: throw LimitsConfigError("\(context): unknown limit \(key) (known: \(Self.names.joined(separator: ", ")))")
            }
        }
    }

    static let names = ["max_series_per_tenant", "max_series_per_metric", "max_label_names_per_series", "max_label_name_length",
                        "max_label_value_length", "max_samples_per_request", "ingestion_rate", "ingestion_burst", "max_future", "max_past"]
}

public struct LimitsConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// `--limits.config-file`: limits for every tenant and for some, over the flags' defaults.
///
///     defaults:
///       max_series_per_tenant: 1000000
///     tenants:
///       cluster-a:
///         ingestion_rate: 50000
public struct LimitsConfig: Sendable, Equatable {
    public var defaults: TenantLimits
    public var tenants: [String: TenantLimits] = [:]

    public init(defaults: TenantLimits) { self.defaults = defaults }

    /// Parses the file's text over `base` (the flags).
    public static func parse(_ text: String, over base: TenantLimits) throws(LimitsConfigError) -> LimitsConfig {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw LimitsConfigError("not YAML: \(error)") }
        var config = LimitsConfig(defaults: base)
        guard let root else { return config }
        guard let mapping = root.mapping else { throw LimitsConfigError("expected a mapping with defaults: and tenants:") }
        if let defaults = mapping["defaults"] { try config.defaults.apply(defaults, context: "defaults") }
        if let tenants = mapping["tenants"] {
            guard let entries = tenants.mapping else { throw LimitsConfigError("tenants: expected a mapping of tenant names") }
            for (name, limits) in entries {
                guard let tenant = name.string, TenantID.isValid(tenant) else {
                    throw LimitsConfigError("tenants: \(name.string.map(GoFormat.quote) ?? "a key that is not a string") is not a valid tenant id")
                }
                var own = config.defaults
                try own.apply(limits, context: "tenants.\(tenant)")
                config.tenants[tenant] = own
            }
        }
        for key in mapping.keys where !["defaults", "tenants"].contains(key.string ?? "") {
            throw LimitsConfigError("unknown section \(key.string ?? "?") (known: defaults, tenants)")
        }
        return config
    }

    public func limits(for tenant: String) -> TenantLimits { tenants[tenant] ?? defaults }
}

/// A configuration file kept in force: parsed at start-up (a bad file stops the start), re-read when
/// its modification time or size changes or on SIGHUP. A file that no longer parses keeps the
/// previous configuration (and says so), so a typo never lifts a limit or opens a door.
final class ReloadingFile<Value: Sendable>: Sendable {
    let path: String
    private let parse: @Sendable (String) throws -> Value
    private let state: Mutex<(value: Value, stamp: FileStamp)>

    init(path: String, parse: @escaping @Sendable (String) throws -> Value) throws {
        self.path = path
        self.parse = parse
        let stamp = FileStamp(path: path)
        state = Mutex((try Self.load(path, parse), stamp))
    }

    var value: Value { state.withLock { $0.value } }

    /// Re-reads the file if it changed (or always, when `force`); a line saying what happened, or nil.
    func reload(force: Bool = false) -> String? {
        let stamp = FileStamp(path: path)
        guard force || stamp != state.withLock({ $0.stamp }) else { return nil }
        do {
            let value = try Self.load(path, parse)
            state.withLock { $0 = (value, stamp) }
            return "reloaded \(path)"
        } catch {
            state.withLock { $0.stamp = stamp }
            return "\(path) not reloaded, the previous configuration stays: \(error)"
        }
    }

    private static func load(_ path: String, _ parse: (String) throws -> Value) throws -> Value {
        guard let data = FileManager.default.contents(atPath: path) else { throw LimitsConfigError("cannot read \(path)") }
        return try parse(String(decoding: data, as: UTF8.self))
    }
}

/// A file's modification time and size, to notice edits without reading it.
struct FileStamp: Equatable, Sendable {
    let modified: Date?
    let size: Int?

    init(path: String) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        modified = attributes?[.modificationDate] as? Date
        size = (attributes?[.size] as? NSNumber)?.intValue
    }
}

/// The limits in force: the flags, with `--limits.config-file` over them when given.
final class LimitsStore: Sendable {
    private let base: TenantLimits
    private let file: ReloadingFile<LimitsConfig>?

    init(base: TenantLimits, path: String?) throws {
        self.base = base
        file = try path.map { path in try ReloadingFile(path: path) { try LimitsConfig.parse($0, over: base) } }
    }

    func limits(for tenant: String) -> TenantLimits { file?.value.limits(for: tenant) ?? base }

    func reload(force: Bool = false) -> String? { file?.reload(force: force) }
}

/// Per-tenant token buckets of samples. A request is let through when the bucket holds its samples;
/// one larger than the burst passes only on a full bucket, and leaves it in debt.
final class IngestionRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])
    private let clock = ContinuousClock()

    /// nil when `samples` may be stored now; else the whole seconds to wait (for `Retry-After`).
    func admit(_ samples: Int, tenant: String, rate: Int, burst: Int) -> Int? {
        let now = clock.now
        return buckets.withLock { all in
            var bucket = all[tenant] ?? Bucket(tokens: Double(burst), updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(Double(burst), bucket.tokens + seconds * Double(rate))
            bucket.updated = now
            let needed = Double(min(samples, burst))
            guard bucket.tokens >= needed else {
                all[tenant] = bucket
                return max(1, Int(((needed - bucket.tokens) / Double(rate)).rounded(.up)))
            }
            bucket.tokens -= Double(samples)
            all[tenant] = bucket
            return nil
        }
    }
}
