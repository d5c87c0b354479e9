import TallyStorage

/// Everything `tally serve` can be told; the defaults are the embedded configuration.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 9201
    public var storageRoot = "storage"
    /// Headers that name the tenant, first present wins.
    public var tenantHeaders = ["THANOS-TENANT", "X-Scope-OrgID", "Cloud-Account-Id"]
    public var defaultTenant = "default-tenant"
    /// Largest accepted compressed body.
    public var maxRequestBytes = 16 * 1024 * 1024
    /// Largest accepted body after snappy decompression (as client_golang's 32 MiB, doubled for headroom).
    public var maxDecodedBytes = 64 * 1024 * 1024
    public var syncPolicy: WALSyncPolicy = .always
    /// Late samples up to this far behind a tenant's newest sample are accepted (ms); 0 refuses them.
    public var outOfOrderWindow: Int64 = 24 * 3600 * 1000
    /// Memory one tenant's late samples may hold before they are flushed into blocks.
    public var outOfOrderMaxBytes = 64 * 1024 * 1024
    public var walSegmentSize = 128 * 1024 * 1024
    /// Block time range in milliseconds, aligned to the epoch.
    public var blockRange: Int64 = 2 * 3_600_000
    /// How often the server looks for blocks and tenants added by other processes (`tally import`).
    public var blockScanInterval: Duration = .seconds(5)
    /// How often every tenant's blocks are compacted in the background; nil never.
    public var compactionInterval: Duration? = .seconds(300)
    /// Blocks ending this long (ms) before the newest one are dropped at each compaction run; nil keeps all.
    public var retention: Int64?
    /// How long shutdown waits for in-flight requests.
    public var drainTimeout: Duration = .seconds(30)
    // Connections
    /// A kept-alive connection with no request for this long is closed. Longer than senders keep
    /// theirs idle (Prometheus 5 minutes, Go's default 90 s), so the server is never the one that
    /// closes a connection a sender is just reusing.
    public var idleTimeout: Duration = .seconds(330)
    /// A request whose head and body have not all come within this long of its first byte gets 408.
    public var readTimeout: Duration = .seconds(60)
    /// Connections past this many are closed as soon as they are accepted.
    public var maxConnections = 4096
    /// Request-body bytes held at once over every connection; a body that would go past it gets 503.
    public var maxBufferedBytes = 256 * 1024 * 1024

    public init() {}
}

extension ServerConfiguration {
    /// The tenant of a request, writes and reads alike: the header, else the URL parameter, else
    /// the default tenant; a header and a parameter that disagree are refused.
    func tenant(header: String?, parameter: String?) -> Result<String, HTTPAnswer> {
        if let header, let parameter, header != parameter {
            return .failure(HTTPAnswer(status: 400, body: "tenant header \(header) and tenant parameter \(parameter) disagree\n"))
        }
        return .success(header ?? parameter ?? defaultTenant)
    }
}

extension ServerConfiguration {
    /// A Prometheus-style duration (`500ms`, `30s`, `90m`, `24h`, `2d`, `1w`) in milliseconds.
    public static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isNumber), let n = Int64(number) else { continue }
            let (value, overflow) = n.multipliedReportingOverflow(by: scale)
            return overflow ? nil : value
        }
        return nil
    }
}
