#if canImport(Glibc)
import Glibc
#endif
import Prometheus
import Synchronization
import TallyStorage

/// Who started a compaction or retention run: the server's own schedule or an admin call.
enum MaintenanceTrigger: String, CaseIterable, Sendable {
    case background, admin
}

/// Writes refused whole, before their samples could be counted, by reason.
enum WriteRefusal: String, CaseIterable, Sendable {
    /// Corrupt or framed snappy, or invalid protobuf: 400.
    case malformedBody = "malformed_body"
    /// A native histogram that breaks Prometheus' rules, or has custom buckets: 400, nothing stored.
    case invalidHistogram = "invalid_histogram"
    /// Compressed body over `--max-request-bytes`, or decoded over `--max-decoded-bytes`: 413.
    case bodyTooLarge = "body_too_large"
    /// A Content-Type or Content-Encoding other than Remote-Write 1.0's: 415.
    case unsupportedMediaType = "unsupported_media_type"
    /// An invalid tenant id, or tenant sources that disagree: 400.
    case invalidTenant = "invalid_tenant"
    /// With `--auth.config-file`: no or a wrong credential (401), or one without write access to the
    /// tenant (403); also a write from another site's page (403).
    case unauthorized = "unauthorized"
    case forbidden = "forbidden"
}

/// Tally's own metrics, served on /metrics in the Prometheus text format.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let walFsync: DurationHistogram

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tally", metricName: metric, unitName: unit, helpText: help)
    }

    private static var requests: MetricNameDescriptor { name("http_requests", "total", "HTTP requests by handler and status code.") }
    private static var requestDuration: MetricNameDescriptor {
        name("http_request_duration", "seconds", "Time from a request's head to its answer, by handler and status code.")
    }
    private static var appendedSamples: MetricNameDescriptor { name("samples_appended", "total", "Samples and native histograms stored, per tenant.") }
    private static var createdSeries: MetricNameDescriptor { name("series_created", "total", "Series created, per tenant.") }
    private static var rejectedSamples: MetricNameDescriptor { name("samples_rejected", "total", "Samples refused with 4xx, per tenant and reason.") }
    private static var notStored: MetricNameDescriptor { name("received_not_stored", "total", "Metadata and exemplars parsed but not stored, per tenant.") }
    private static var exemplarsAppended: MetricNameDescriptor { name("exemplars_appended", "total", "Exemplars added to the tenant's in-memory exemplar storage.") }
    private static var exemplarsOutOfOrder: MetricNameDescriptor {
        name("exemplars_out_of_order", "total", "Exemplars not newer than their series' newest exemplar, not stored.")
    }
    private static var exemplarsInStorage: MetricNameDescriptor { name("exemplars_in_storage", "", "Exemplars the tenant's in-memory exemplar storage holds.") }
    private static var refusedConnections: MetricNameDescriptor {
        name("http_connections_refused", "total", "Connections closed by the server before their request was answered, by reason.")
    }

    // Per tenant, set from the tenant's storage at each scrape.
    private static var headSeries: MetricNameDescriptor { name("head_series", "", "Series in the tenant's head.") }
    private static var outOfOrderBytes: MetricNameDescriptor { name("head_out_of_order", "bytes", "Memory held by late samples not yet in blocks, per tenant.") }
    private static var newestSample: MetricNameDescriptor {
        name("newest_sample_timestamp", "seconds", "Newest in-order sample the tenant's head took (else its newest block's end), Unix time.")
    }
    private static var walBytes: MetricNameDescriptor { name("wal", "bytes", "Bytes of the tenant's WAL directory (segments and checkpoint).") }
    private static var blocks: MetricNameDescriptor { name("blocks_loaded", "", "Blocks the tenant has loaded.") }
    private static var blockBytes: MetricNameDescriptor { name("blocks", "bytes", "Index and chunk bytes of the tenant's loaded blocks.") }

    let openConnections: Gauge
    let openWALFiles: Gauge
    let walFilesClosedForBudget: Counter
    let bufferedRequestBytes: Gauge
    /// Writes that named no tenant and went to `--default-tenant`.
    let writesWithoutTenant: Counter
    /// By `ConnectionRefusal`, made once: refusals come in floods.
    let refusedConnectionCounters: [ConnectionRefusal: Counter]
    private let refusedWrites: [WriteRefusal: Counter]
    private let compactions: [MaintenanceTrigger: RunHandles]
    private let retentionRuns: [MaintenanceTrigger: RunHandles]
    private let blockCuts: RunHandles
    private let storageAvailableBytes: Gauge
    private let storageSizeBytes: Gauge

    /// A kind of work's runs, failed runs and durations.
    private struct RunHandles: Sendable {
        let runs: Counter
        let failures: Counter
        let duration: DurationHistogram

        /// `failed` completes "that failed": what else counts as a failure.
        init(_ registry: PrometheusCollectorRegistry, counter: String, histogram: String, what: String, failed: String = "", labels: [(String, String)]) {
            runs = registry.makeCounter(descriptor: ServerMetrics.name(counter, "total", "\(what), failed or not."), labels: labels)
            failures = registry.makeCounter(descriptor: ServerMetrics.name(counter + "_failed", "total", "\(what) that failed\(failed)."), labels: labels)
            duration = registry.makeDurationHistogram(descriptor: ServerMetrics.name(histogram, "seconds", "Duration of \(what.lowercased())."),
                                                      labels: labels, buckets: ServerMetrics.maintenanceBuckets)
        }

        func record(_ duration: Duration, failed: Bool) {
            runs.increment()
            if failed { failures.increment() }
            self.duration.record(duration)
        }
    }

    private static let maintenanceBuckets: [Duration] = [.milliseconds(10), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
                                                         .seconds(10), .seconds(30), .seconds(60), .seconds(300)]
    private static let requestBuckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                                     .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                                                     .seconds(5), .seconds(10), .seconds(30)]

    init() {
        walFsync = registry.makeDurationHistogram(
            descriptor: Self.name("wal_fsync_duration", "seconds", "Duration of WAL fdatasync calls (one covers every request waiting for it)."),
            buckets: [.microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
                      .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1)])
        registry.makeGauge(descriptor: Self.name("build_info", "", "Always 1; the labels say which release runs."), labels: [("version", TallyVersion.version)]).set(1.0)
        openConnections = registry.makeGauge(descriptor: Self.name("http_open_connections", "", "HTTP connections open now."))
        bufferedRequestBytes = registry.makeGauge(
            descriptor: Self.name("http_buffered_request", "bytes", "Request body bytes held by the server now, over every connection."))
        openWALFiles = registry.makeGauge(
            descriptor: Self.name("wal_open_segment_files", "", "Tenants whose WAL segment file is open now (at most --max-open-tenants, plus appends in flight)."))
        walFilesClosedForBudget = registry.makeCounter(
            descriptor: Self.name("wal_segments_closed_for_budget", "total",
                                  "WAL segments finished early because more tenants wrote than --max-open-tenants keeps open."))
        writesWithoutTenant = registry.makeCounter(
            descriptor: Self.name("writes_without_tenant", "total", "Writes that named no tenant and were stored under --default-tenant."))
        storageAvailableBytes = registry.makeGauge(
            descriptor: Self.name("storage_available", "bytes", "Bytes free to Tally on the storage root's filesystem."))
        storageSizeBytes = registry.makeGauge(descriptor: Self.name("storage_size", "bytes", "Size of the storage root's filesystem."))
        var counters: [ConnectionRefusal: Counter] = [:]
        for reason in ConnectionRefusal.allCases {
            counters[reason] = registry.makeCounter(descriptor: Self.refusedConnections, labels: [("reason", reason.rawValue)])
        }
        refusedConnectionCounters = counters
        var refused: [WriteRefusal: Counter] = [:]
        for reason in WriteRefusal.allCases {
            refused[reason] = registry.makeCounter(
                descriptor: Self.name("write_requests_rejected", "total", "Writes refused whole before their samples could be counted, by reason."),
                labels: [("reason", reason.rawValue)])
        }
        refusedWrites = refused
        // Made at start, at zero: an alert on their increase sees the first failure.
        var compactions: [MaintenanceTrigger: RunHandles] = [:], retentionRuns: [MaintenanceTrigger: RunHandles] = [:]
        for trigger in MaintenanceTrigger.allCases {
            let labels = [("trigger", trigger.rawValue)]
            compactions[trigger] = RunHandles(registry, counter: "compactions", histogram: "compaction_duration", what: "Compaction runs of one tenant",
                                              failed: " or left a group of blocks as they were", labels: labels)
            retentionRuns[trigger] = RunHandles(registry, counter: "retention_runs", histogram: "retention_run_duration",
                                                what: "Retention runs of one tenant", labels: labels)
        }
        self.compactions = compactions
        self.retentionRuns = retentionRuns
        blockCuts = RunHandles(registry, counter: "block_cuts", histogram: "block_cut_duration", what: "Block cuts of one tenant's head", labels: [])
    }

    /// One handler's counter and histogram for one code, made once: the registry builds and looks
    /// up the name and labels on every `make...` call, which showed up per request in the ingest profile.
    private struct RequestHandles: Sendable {
        let count: Counter
        let duration: DurationHistogram
    }

    private struct TenantHandles: Sendable {
        let appendedSamples: Counter
        let createdSeries: Counter
    }

    private let tenantHandles = Mutex<[String: TenantHandles]>([:])
    private let requestHandles = Mutex<[String: RequestHandles]>([:])

    /// `handler` is one of a fixed set (a route pattern or "other", `RequestMetrics`), so the label sets stay bounded.
    func request(handler: String, code: Int, duration: Duration) {
        let handles = requestHandles.withLock { cache in
            let key = "\(handler) \(code)"
            if let handles = cache[key] { return handles }
            let labels = [("handler", handler), ("code", String(code))]
            let handles = RequestHandles(count: registry.makeCounter(descriptor: Self.requests, labels: labels),
                                         duration: registry.makeDurationHistogram(descriptor: Self.requestDuration, labels: labels, buckets: Self.requestBuckets))
            cache[key] = handles
            return handles
        }
        handles.count.increment()
        handles.duration.record(duration)
    }

    func appended(tenant: String, samples: Int, series: Int) {
        let handles = tenantHandles.withLock { cache in
            if let handles = cache[tenant] { return handles }
            let labels = [("tenant", tenant)]
            let handles = TenantHandles(appendedSamples: registry.makeCounter(descriptor: Self.appendedSamples, labels: labels),
                                        createdSeries: registry.makeCounter(descriptor: Self.createdSeries, labels: labels))
            cache[tenant] = handles
            return handles
        }
        if samples > 0 { handles.appendedSamples.increment(by: Int64(samples)) }
        if series > 0 { handles.createdSeries.increment(by: Int64(series)) }
    }

    /// `tenant` is "" for a tenant that does not exist (yet): a sender cannot make series by naming new ones.
    func rejected(tenant: String, reason: String, samples: Int) {
        registry.makeCounter(descriptor: Self.rejectedSamples, labels: [("tenant", tenant), ("reason", reason)]).increment(by: Int64(samples))
    }

    func rejected(_ refusal: WriteRefusal) {
        refusedWrites[refusal]?.increment()
    }

    /// Series the tenant's latest cost or allocation answer left out for a missing join label.
    func costSeriesLeftOut(tenant: String, count: Int) {
        registry.makeGauge(descriptor: Self.name("cost_series_left_out", "",
                                                 "Series left out of the tenant's latest cost answer: a label they are joined on (cluster_id, node, namespace, ...) is missing."),
                           labels: [("tenant", tenant)]).set(Int64(count))
    }

    func exemplars(tenant: String, appended: Int, outOfOrder: Int) {
        if appended > 0 { registry.makeCounter(descriptor: Self.exemplarsAppended, labels: [("tenant", tenant)]).increment(by: Int64(appended)) }
        if outOfOrder > 0 { registry.makeCounter(descriptor: Self.exemplarsOutOfOrder, labels: [("tenant", tenant)]).increment(by: Int64(outOfOrder)) }
    }

    func notStored(tenant: String, kind: String, count: Int) {
        guard count > 0 else { return }
        registry.makeCounter(descriptor: Self.notStored, labels: [("tenant", tenant), ("kind", kind)]).increment(by: Int64(count))
    }

    func compaction(_ trigger: MaintenanceTrigger, _ duration: Duration, failed: Bool) {
        compactions[trigger]?.record(duration, failed: failed)
    }

    func retention(_ trigger: MaintenanceTrigger, _ duration: Duration, failed: Bool) {
        retentionRuns[trigger]?.record(duration, failed: failed)
    }

    func blockCut(_ duration: Duration, failed: Bool) {
        blockCuts.record(duration, failed: failed)
    }

    /// The /metrics page: the figures read now (each tenant's storage, the storage filesystem, the
    /// process), then every metric. Tenants are at most `--limits.max-tenants`.
    func page(tenants: [TenantDatabase], exemplars: [(tenant: String, exemplars: Int)], storageRoot: String) -> String {
        for (tenant, count) in exemplars {
            registry.makeGauge(descriptor: Self.exemplarsInStorage, labels: [("tenant", tenant)]).set(Int64(count))
        }
        for db in tenants {
            let figures = db.figures
            let labels = [("tenant", db.tenant)]
            registry.makeGauge(descriptor: Self.headSeries, labels: labels).set(Int64(figures.headSeries))
            registry.makeGauge(descriptor: Self.outOfOrderBytes, labels: labels).set(Int64(figures.outOfOrderBytes))
            registry.makeGauge(descriptor: Self.walBytes, labels: labels).set(Int64(figures.walBytes))
            registry.makeGauge(descriptor: Self.blocks, labels: labels).set(Int64(figures.blocks))
            registry.makeGauge(descriptor: Self.blockBytes, labels: labels).set(Int64(figures.blockBytes))
            if let newest = figures.newestSampleTime {
                registry.makeGauge(descriptor: Self.newestSample, labels: labels).set(Double(newest) / 1000)
            }
        }
        var filesystem = statvfs()
        if statvfs(storageRoot, &filesystem) == 0 {
            // In Double: exact below 8 PiB, and no product can overflow.
            let blockSize = Double(filesystem.f_frsize)
            storageAvailableBytes.set(Double(filesystem.f_bavail) * blockSize)
            storageSizeBytes.set(Double(filesystem.f_blocks) * blockSize)
        }
        return registry.emitToString() + ProcessFigures.read().exposition
    }
}
