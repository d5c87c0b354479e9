import Prometheus
import Synchronization

/// Tally's own metrics, served on /metrics in the Prometheus text format.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let walFsync: DurationHistogram

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tally", metricName: metric, unitName: unit, helpText: help)
    }

    private static var requests: MetricNameDescriptor { name("http_requests", "total", "HTTP requests by handler and status code.") }
    private static var appendedSamples: MetricNameDescriptor { name("samples_appended", "total", "Samples stored, per tenant.") }
    private static var createdSeries: MetricNameDescriptor { name("series_created", "total", "Series created, per tenant.") }
    private static var headSeries: MetricNameDescriptor { name("head_series", "", "Series in the tenant's head.") }
    private static var outOfOrderBytes: MetricNameDescriptor { name("head_out_of_order", "bytes", "Memory held by late samples not yet in blocks, per tenant.") }
    private static var rejectedSamples: MetricNameDescriptor { name("samples_rejected", "total", "Samples refused with 4xx, per tenant and reason.") }
    private static var notStored: MetricNameDescriptor { name("received_not_stored", "total", "Metadata and exemplars parsed but not stored, per tenant.") }
    private static var refusedConnections: MetricNameDescriptor {
        name("http_connections_refused", "total", "Connections closed by the server before their request was answered, by reason.")
    }

    let openConnections: Gauge
    let openWALFiles: Gauge
    let walFilesClosedForBudget: Counter
    let bufferedRequestBytes: Gauge
    /// By `ConnectionRefusal`, made once: refusals come in floods.
    let refusedConnectionCounters: [ConnectionRefusal: Counter]

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
        var counters: [ConnectionRefusal: Counter] = [:]
        for reason in ConnectionRefusal.allCases {
            counters[reason] = registry.makeCounter(descriptor: Self.refusedConnections, labels: [("reason", reason.rawValue)])
        }
        refusedConnectionCounters = counters
    }

    /// One tenant's handles, made once: the registry builds and looks up the name and labels on
    /// every `make...` call, which showed up per request in the ingest profile.
    private struct TenantHandles: Sendable {
        let outOfOrderBytes: Gauge
        let appendedSamples: Counter
        let createdSeries: Counter
        let headSeries: Gauge
    }

    private let tenantHandles = Mutex<[String: TenantHandles]>([:])
    private let requestCounters = Mutex<[String: Counter]>([:])

    func request(handler: String, code: Int) {
        let counter = requestCounters.withLock { cache in
            let key = "\(handler) \(code)"
            if let counter = cache[key] { return counter }
            let counter = registry.makeCounter(descriptor: Self.requests, labels: [("handler", handler), ("code", String(code))])
            cache[key] = counter
            return counter
        }
        counter.increment()
    }

    func appended(tenant: String, samples: Int, series: Int, headSeries: Int, outOfOrderBytes: Int) {
        let handles = tenantHandles.withLock { cache in
            if let handles = cache[tenant] { return handles }
            let labels = [("tenant", tenant)]
            let handles = TenantHandles(outOfOrderBytes: registry.makeGauge(descriptor: Self.outOfOrderBytes, labels: labels),
                                        appendedSamples: registry.makeCounter(descriptor: Self.appendedSamples, labels: labels),
                                        createdSeries: registry.makeCounter(descriptor: Self.createdSeries, labels: labels),
                                        headSeries: registry.makeGauge(descriptor: Self.headSeries, labels: labels))
            cache[tenant] = handles
            return handles
        }
        handles.outOfOrderBytes.set(Int64(outOfOrderBytes))
        if samples > 0 { handles.appendedSamples.increment(by: Int64(samples)) }
        if series > 0 { handles.createdSeries.increment(by: Int64(series)) }
        handles.headSeries.set(Int64(headSeries))
    }

    func rejected(tenant: String, reason: String, samples: Int) {
        registry.makeCounter(descriptor: Self.rejectedSamples, labels: [("tenant", tenant), ("reason", reason)]).increment(by: Int64(samples))
    }

    /// Series the tenant's latest cost or allocation answer left out for a missing join label.
    func costSeriesLeftOut(tenant: String, count: Int) {
        registry.makeGauge(descriptor: Self.name("cost_series_left_out", "",
                                                 "Series left out of the tenant's latest cost answer: a label they are joined on (cluster_id, node, namespace, ...) is missing."),
                           labels: [("tenant", tenant)]).set(Int64(count))
    }

    func notStored(tenant: String, kind: String, count: Int) {
        guard count > 0 else { return }
        registry.makeCounter(descriptor: Self.notStored, labels: [("tenant", tenant), ("kind", kind)]).increment(by: Int64(count))
    }
}
