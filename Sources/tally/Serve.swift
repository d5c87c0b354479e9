import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import TallyServer
import TallyStorage

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive Prometheus remote-write on POST /api/v1/write and store it per tenant.")

    @Option(help: "Address to listen on, host:port (port 0 picks a free port; :port listens on every interface).")
    var listen = "127.0.0.1:9201"

    @Option(help: "Storage root; each tenant gets <storage>/<tenant>/ with its own WAL.")
    var storage = "storage"

    @Option(name: .customLong("tenant-header"), parsing: .singleValue,
            help: "Header naming the tenant; repeat for several, the first present wins. (default: THANOS-TENANT, X-Scope-OrgID, Cloud-Account-Id)")
    var tenantHeaders: [String] = []

    @Option(help: "Tenant for requests that name none.")
    var defaultTenant = "default-tenant"

    @Option(help: ArgumentHelp(
        "WAL durability before a write is acknowledged: always or interval.",
        discussion: """
        always (default): fdatasync before answering 2xx; concurrent requests share one sync (group commit). \
        A power loss loses nothing that was acknowledged.
        interval: answer after write(2) and sync every --wal-sync-interval. Faster, but a machine crash or \
        power loss can lose up to one interval of acknowledged samples (a process crash loses nothing).
        """))
    var walSync = "always"

    @Option(help: "Sync period for --wal-sync interval, in milliseconds.")
    var walSyncIntervalMs = 1000

    @Option(help: "WAL segment size in bytes, 64 KiB to 1 GiB (Prometheus' default: 128 MiB).")
    var walSegmentBytes = 128 * 1024 * 1024

    @Option(help: ArgumentHelp(
        "How far behind a tenant's newest sample a late or out-of-order sample is still accepted (e.g. 24h, 90m, 0s).",
        discussion: "Older samples get 400 too_old; 0s refuses every out-of-order sample (400 out_of_order)."))
    var oooWindow = "24h"

    @Option(help: ArgumentHelp(
        "Time range of a block, aligned to the Unix epoch (e.g. 2h, Prometheus' default).",
        discussion: "The head is cut into a block once it spans 1.5 ranges."))
    var blockRange = "2h"

    @Option(help: "How often to compact every tenant's blocks in the background (e.g. 5m; 0s never).")
    var compactionInterval = "5m"

    @Option(help: "Drop blocks ending this long or more before the newest block (e.g. 400d), at each --compaction-interval (every 5m when that is 0s). Default: keep everything.")
    var retention: String?

    @Option(help: "Memory one tenant's late samples may hold before they are written to blocks early, in bytes.")
    var oooMaxBytes = 64 * 1024 * 1024

    @Option(help: "Largest compressed request body in bytes; larger ones get 413.")
    var maxRequestBytes = 16 * 1024 * 1024

    @Option(help: "Largest request body after snappy decompression in bytes; larger ones get 413.")
    var maxDecodedBytes = 64 * 1024 * 1024

    @Option(help: "Exemplars each tenant keeps in memory, newest first out of a ring of this size (as Prometheus' --storage.tsdb.max-exemplars); 0 keeps none. Not persisted.")
    var maxExemplars = 100_000

    @Option(help: "How often to look for blocks and tenants added by `tally import`, in milliseconds.")
    var blockScanIntervalMs = 5000

    @Option(name: .customLong("http.idle-timeout"),
            help: "Close a kept-alive connection with no request for this long (e.g. 330s: longer than senders keep theirs idle, Prometheus 5m).")
    var httpIdleTimeout = "330s"

    @Option(name: .customLong("http.read-timeout"),
            help: "Answer 408 and close when a request's head and body have not all come within this long of its first byte.")
    var httpReadTimeout = "60s"

    @Option(help: "Most connections open at once; more are closed as soon as they are accepted.")
    var maxConnections = 4096

    @Option(help: "Most request-body bytes held at once over all connections, at least --max-request-bytes; a body that would go past it gets 503 with Retry-After.")
    var maxBufferedBytes = 256 * 1024 * 1024

    @Option(help: ArgumentHelp(
        "Most tenants whose WAL segment file stays open between writes. Default: (ulimit -n - 32) / 2, at least 4.",
        discussion: "Past it, the least recently written tenant's segment is padded, synced and closed; its next write starts a new segment."))
    var maxOpenTenants: Int?

    @Option(name: .customLong("web.cors.origin"),
            help: "Regex (RE2, fully anchored) of the web origins whose pages may read the query and cost API from a browser (CORS), as Prometheus' flag; '' allows none. Writes and admin calls from other origins are refused whatever it says.")
    var corsOrigin = ".*"

    @Option(name: .customLong("query.timeout"), help: "Longest a PromQL query may run, its wait for a thread included (Prometheus' --query.timeout).")
    var queryTimeout = "2m"

    @Option(name: .customLong("query.max-samples"), help: "Most samples one query may hold in memory at once; past it the query fails with 422 (Prometheus' --query.max-samples).")
    var queryMaxSamples = 50_000_000

    @Option(name: .customLong("query.lookback-delta"), help: "How far back an instant selector looks for a series' latest sample (Prometheus' --query.lookback-delta).")
    var queryLookbackDelta = "5m"

    @Option(name: .customLong("query.max-concurrency"), help: "Queries evaluated at once; more wait for a thread. (default: the number of cores)")
    var queryMaxConcurrency: Int?

    @OptionGroup(title: "Limits and access")
    var limits: LimitOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard ["always", "interval"].contains(walSync) else { throw ValidationError("--wal-sync must be always or interval") }
        guard Self.milliseconds(oooWindow) != nil else { throw ValidationError("--ooo-window must be a duration like 24h, 90m or 0s") }
        guard let range = Self.milliseconds(blockRange), range >= 60_000, range <= 31 * 86_400_000, range % 60_000 == 0 else {
            throw ValidationError("--block-range must be a whole number of minutes from 1m to 31d (e.g. 2h)")
        }
        guard Self.milliseconds(compactionInterval) != nil else { throw ValidationError("--compaction-interval must be a duration like 5m or 0s") }
        if let retention { guard let keep = Self.milliseconds(retention), keep > 0 else { throw ValidationError("--retention must be a positive duration like 400d") } }
        guard oooMaxBytes > 0 else { throw ValidationError("--ooo-max-bytes must be positive") }
        guard blockScanIntervalMs > 0 else { throw ValidationError("--block-scan-interval-ms must be positive") }
        guard (1...86_400_000).contains(walSyncIntervalMs) else { throw ValidationError("--wal-sync-interval-ms must be from 1 to 86400000 (a day)") }
        guard (65_536...(1 << 30)).contains(walSegmentBytes) else { throw ValidationError("--wal-segment-bytes must be from 65536 (64 KiB) to 1073741824 (1 GiB)") }
        guard TenantID.isValid(defaultTenant) else { throw ValidationError("--default-tenant is not a valid tenant id") }
        guard maxRequestBytes > 0, maxDecodedBytes > 0 else { throw ValidationError("request limits must be positive") }
        guard maxExemplars >= 0 else { throw ValidationError("--max-exemplars must be 0 or more") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        _ = try parseListen()
        for (flag, value) in [("--http.idle-timeout", httpIdleTimeout), ("--http.read-timeout", httpReadTimeout)] {
            guard let duration = Self.milliseconds(value), duration > 0 else { throw ValidationError("\(flag) must be a positive duration like 60s or 5m") }
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        guard maxBufferedBytes >= maxRequestBytes else { throw ValidationError("--max-buffered-bytes must be at least --max-request-bytes") }
        if let maxOpenTenants { guard maxOpenTenants > 0 else { throw ValidationError("--max-open-tenants must be positive") } }
        for (flag, value) in [("--query.timeout", queryTimeout), ("--query.lookback-delta", queryLookbackDelta)] {
            guard let duration = Self.milliseconds(value), duration > 0 else { throw ValidationError("\(flag) must be a positive duration like 2m or 5m") }
        }
        guard LinearRegex(corsOrigin) != nil else {
            throw ValidationError("--web.cors.origin \(corsOrigin) is not a regular expression in RE2's syntax")
        }
        guard queryMaxSamples > 0 else { throw ValidationError("--query.max-samples must be positive") }
        if let queryMaxConcurrency { guard (1...1024).contains(queryMaxConcurrency) else { throw ValidationError("--query.max-concurrency must be from 1 to 1024") } }
    }

    static func milliseconds(_ text: String) -> Int64? { ServerConfiguration.milliseconds(text) }

    private func parseListen() throws -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw ValidationError("--listen \(listen): expected host:port, :port or [IPv6]:port, with a port from 0 to 65535")
        }
        // `:9201` means every interface, as Prometheus' --web.listen-address takes it; `[::1]:9201`
        // is an IPv6 address in the URL form.
        var host = listen[..<colon].isEmpty ? "0.0.0.0" : String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // Checked before the storage is created: a bind to a host that does not resolve fails late.
        guard Self.resolves(host) else { throw ValidationError("--listen \(listen): \(host) is not an address or a name this machine resolves") }
        return (host, port)
    }

    private static func resolves(_ host: String) -> Bool {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        defer { if let found { freeaddrinfo(found) } }
        return getaddrinfo(host, nil, &hints, &found) == 0
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tally")
        var config = ServerConfiguration()
        (config.host, config.port) = try parseListen()
        config.storageRoot = storage
        if !tenantHeaders.isEmpty { config.tenantHeaders = tenantHeaders }
        config.defaultTenant = defaultTenant
        config.syncPolicy = walSync == "always" ? .always : .interval(.milliseconds(walSyncIntervalMs))
        config.walSegmentSize = walSegmentBytes
        config.maxRequestBytes = maxRequestBytes
        config.maxDecodedBytes = maxDecodedBytes
        config.maxExemplars = maxExemplars
        config.blockScanInterval = .milliseconds(blockScanIntervalMs)
        config.outOfOrderWindow = Self.milliseconds(oooWindow)!
        config.outOfOrderMaxBytes = oooMaxBytes
        config.blockRange = Self.milliseconds(blockRange)!
        let compaction = Self.milliseconds(compactionInterval)!
        config.compactionInterval = compaction > 0 ? .milliseconds(compaction) : nil
        config.retention = retention.flatMap(Self.milliseconds)
        limits.apply(to: &config)
        config.idleTimeout = .milliseconds(Self.milliseconds(httpIdleTimeout)!)
        config.readTimeout = .milliseconds(Self.milliseconds(httpReadTimeout)!)
        config.maxConnections = maxConnections
        config.maxBufferedBytes = maxBufferedBytes
        config.maxOpenTenants = maxOpenTenants
        config.corsOrigin = corsOrigin
        config.queryOptions.timeout = Self.milliseconds(queryTimeout)!
        config.queryOptions.maxSamples = queryMaxSamples
        config.queryOptions.lookbackDelta = Self.milliseconds(queryLookbackDelta)!
        if let queryMaxConcurrency { config.queryMaxConcurrency = queryMaxConcurrency }
        let server = TallyServer(configuration: config, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
