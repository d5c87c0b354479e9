import NIOCore
import NIOHTTP1
import TallyQuery
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
    /// Exemplars each tenant keeps in memory (Prometheus' `--storage.tsdb.max-exemplars`); 0 keeps none.
    public var maxExemplars = 100_000
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
    /// Limits of every tenant unless `limitsConfigFile` says otherwise for it.
    public var limits = TenantLimits()
    /// YAML with `defaults:` and per-tenant `tenants:` limits, reloaded on change and on SIGHUP.
    public var limitsConfigFile: String?
    /// Tenants that may exist; a write that would create one more gets 400 `max_tenants`.
    public var maxTenants = 10_000
    /// Whether the admin endpoints answer requests from the network (the CLI on the storage's own
    /// machine reaches them with the storage's admin token either way).
    public var enableAdminAPI = false
    /// YAML listing credentials, their tenants and scopes; nil lets every request in.
    public var authConfigFile: String?
    /// HTTPS instead of HTTP when set.
    public var tls: TLSFiles?
    /// Web pages of the origins this regex (RE2, fully anchored) matches may read the query and cost
    /// API from a browser (CORS), as Prometheus' `--web.cors.origin`; ".*" answers every origin with
    /// `Access-Control-Allow-Origin: *`, "" none.
    public var corsOrigin = ".*"
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
    // Descriptors
    /// Tenants whose WAL segment file stays open between appends; past it the least recently written
    /// tenant's segment is closed, and its next append starts a new one. nil derives it from the soft
    /// RLIMIT_NOFILE (`WALFileBudget.limit(forDescriptorLimit:)`).
    public var maxOpenTenants: Int?
    // Queries
    /// Lookback delta, most samples a query may hold and the longest a query may run (with its
    /// wait for a thread), as Prometheus' `--query.*` flags.
    public var queryOptions = QueryOptions()
    /// Queries evaluated at once; more wait for a thread, their wait counted against their timeout.
    public var queryMaxConcurrency = System.coreCount

    public init() {}
}

/// Everything in one request that names a tenant: each configured header (every value it was sent
/// with) and the URL parameters that name one (`tenant`, `cloud_account_id`).
struct TenantSources: Sendable {
    private(set) var named: [(source: String, tenant: String)] = []
    /// Why a parameter that may name a tenant could not be read, if one could not.
    private var unreadable: String?

    /// The tenants named by each of `headers` (the configured tenant headers), every value of each,
    /// without the white space around it (HTTP's optional white space, on both sides).
    init(_ head: HTTPRequestHead, headers: [String]) {
        for name in headers {
            for value in head.headers[name] { add(name, value.trimmingCharacters(in: " \t")) }
        }
    }

    mutating func add(_ source: String, _ tenant: String?) {
        if let tenant { named.append((source, tenant)) }
    }

    /// Every value a parameter was given: `?tenant=a&tenant=b` disagrees with itself, so a proxy
    /// that appends its own `tenant=` cannot be outvoted by one the client put first.
    mutating func add(_ source: String, _ tenants: [String]) {
        for tenant in tenants { named.append((source, tenant)) }
    }

    /// Every value of the parameter `name`; a pair that may have named it but could not be read
    /// (a `;`, a broken escape) makes the tenant unknown: refused, rather than taken for absent.
    mutating func add(_ source: String, parameter name: String, of query: QueryString) {
        add(source, query.all(name))
        if unreadable == nil, query.mayHaveLeftOut(name) { unreadable = "\(source) unreadable: \(query.parseError ?? "")" }
    }

    /// The tenant all sources name, or the default when none does. Sources that disagree are refused:
    /// a proxy may set one header and trust it, so a second one that names another tenant must not win.
    /// A name that is not a valid tenant id is refused here, for every endpoint alike, before
    /// anything looks it up (an endpoint that only reads memory would otherwise answer it as empty).
    func resolve(default defaultTenant: String) -> Result<String, HTTPAnswer> {
        if let unreadable { return .failure(HTTPAnswer(status: 400, body: unreadable + "\n")) }
        guard let first = named.first else { return .success(defaultTenant) }
        if named.contains(where: { $0.tenant != first.tenant }) {
            let listed = named.map { "\($0.source)=\(GoFormat.quote(String($0.tenant.prefix(64))))" }.joined(separator: ", ")
            return .failure(HTTPAnswer(status: 400, body: "tenant sources disagree: \(listed)\n"))
        }
        guard TenantID.isValid(first.tenant) else { return .failure(HTTPAnswer(status: 400, body: TenantError.invalidName(first.tenant).description + "\n")) }
        return .success(first.tenant)
    }

    /// The tenant a read names (the credential's only tenant, else `defaultTenant`, when none does),
    /// checked against the credential's read scope.
    func readableTenant(_ credential: Credential?, default defaultTenant: String) -> Result<String, HTTPAnswer> {
        resolve(default: credential?.onlyTenant ?? defaultTenant).flatMap { tenant in
            accessRefusal(credential, .read, tenant: tenant).map { .failure($0) } ?? .success(tenant)
        }
    }
}

extension ServerConfiguration {
    /// A duration flag or parameter in milliseconds, read as Prometheus reads its own (`500ms`, `90m`,
    /// `1h30m`, `2d`, `1w`, `1y` = 365d; at most about 292 years), so every flag takes what a PromQL
    /// duration takes.
    public static func milliseconds(_ text: String) -> Int64? { PromQL.parseDuration(text) }
}
