import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TallyStorage

/// Where the server is in its life; writes are taken only while `ready`.
enum ServerPhase: UInt8, AtomicRepresentable {
    case starting, ready, draining
}

/// Routes, limits and the ready/draining state, shared by every connection.
final class Router: Sendable {
    let configuration: ServerConfiguration
    let ingester: RemoteWriteIngester
    let costs: CostAPI
    let queries: QueryAPI
    let metrics: ServerMetrics
    let admin: AdminAccess
    /// nil without `--auth.config-file`: every request is let in, as before auth existed.
    let authenticator: Authenticator?
    let logger: Logger
    let maintenance: MaintenanceRecorder
    let phase = Atomic<ServerPhase>(.starting)
    let inFlight = Atomic<Int>(0)
    /// Where writes naming no tenant came from, so the log tells each sender once.
    private let tenantlessSenders = TenantlessSenders()
    let threadPool: NIOThreadPool
    let scheduler: TenantScheduler

    init(configuration: ServerConfiguration, ingester: RemoteWriteIngester, costs: CostAPI, queries: QueryAPI, metrics: ServerMetrics,
         admin: AdminAccess, authenticator: Authenticator?, logger: Logger, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.ingester = ingester
        self.costs = costs
        self.queries = queries
        self.metrics = metrics
        self.admin = admin
        self.authenticator = authenticator
        self.logger = logger
        maintenance = MaintenanceRecorder(metrics: metrics, logger: logger)
        self.threadPool = threadPool
        self.scheduler = TenantScheduler(pool: threadPool, threads: System.coreCount)
    }

    private static let notReady = HTTPAnswer(status: 503, body: "not ready: starting or shutting down\n")
    private static let shuttingDown = HTTPAnswer(status: 503, body: "shutting down\n")

    /// Every path the server answers, with its methods.
    static let routes = RouteTable(
        [Route("/api/v1/write", [.POST]) { $0.write($1) }]
            + CostAPI.paths.map { Route($0, [.GET]) { $0.costs($1) } }
            + [Route("/api/v1/admin/compact", [.POST]) { $0.admin($1) },
               Route("/api/v1/admin/retention", [.POST]) { $0.admin($1) },
               Route(deleteSeriesPath, [.POST, .PUT]) { $0.admin($1) },
               Route("/metrics") { $0.metricsPage($1) },
               Route("/-/healthy") { $1.now(HTTPAnswer(status: 200, body: "Tally is Healthy.\n")) },
               Route("/-/ready") { router, request in
                   let ready = router.phase.load(ordering: .acquiring) == .ready
                   return request.now(HTTPAnswer(status: ready ? 200 : 503, body: ready ? "Tally is Ready.\n" : "Tally is not ready.\n"))
               }]
            + QueryAPI.endpoints.map { path, methods, endpoint in Route(path, methods) { $0.query(endpoint, $1) } })

    /// Answers a complete request from `sender` (the peer's address); the future completes on `eventLoop`.
    func answer(_ head: HTTPRequestHead, body: ByteBuffer, bodyTooLarge: Bool, from sender: SocketAddress?, on eventLoop: EventLoop) -> EventLoopFuture<HTTPAnswer> {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        return Self.routes.answer(self, head, path: path, body: body, bodyTooLarge: bodyTooLarge, from: sender, on: eventLoop)
    }

    /// The handler label for the request metrics (see `RouteTable.handlerName`).
    static func handlerName(_ uri: String) -> String { routes.handlerName(uri) }

    /// `POST /api/v1/write`: checks on the event loop, the work on the tenant's scheduler queue.
    private func write(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        let head = request.head
        if let refusal = AdminAccess.crossOriginRefusal(head) {
            metrics.rejected(.forbidden)
            return request.now(refusal)
        }
        if request.bodyTooLarge {
            metrics.rejected(.bodyTooLarge)
            return request.now(HTTPAnswer(status: 413, body: "request body over the limit of \(configuration.maxRequestBytes) bytes\n"))
        }
        guard phase.load(ordering: .acquiring) == .ready else { return request.now(Self.notReady) }
        let credential: Credential?
        switch authenticate(head) {
        case let .success(found): credential = found
        case let .failure(refusal):
            metrics.rejected(refusal.status == 401 ? .unauthorized : .forbidden)
            return request.now(refusal)
        }
        var sources = tenantSources(head)
        sources.add("tenant parameter", Self.queryParameter("tenant", in: head.uri))
        let tenant: String
        switch sources.resolve(default: credential?.onlyTenant ?? configuration.defaultTenant) {
        case let .success(name): tenant = name
        case let .failure(refusal):
            metrics.rejected(.invalidTenant)
            return request.now(refusal)
        }
        if let refusal = accessRefusal(credential, .write, tenant: tenant) {
            metrics.rejected(.forbidden)
            return request.now(refusal)
        }
        if sources.named.isEmpty && credential?.onlyTenant == nil { notedTenantless(from: request.sender, tenant: tenant) }
        inFlight.wrappingAdd(1, ordering: .relaxed)
        let headers = RemoteWriteIngester.RequestHeaders(contentType: head.headers.first(name: "Content-Type"),
                                                         contentEncoding: head.headers.first(name: "Content-Encoding"))
        let promise = request.eventLoop.makePromise(of: HTTPAnswer.self)
        let ingester = self.ingester
        let body = request.body
        scheduler.submit(tenant: tenant) { state in
            guard case .active = state else { return promise.succeed(Self.shuttingDown) }
            ingester.ingest(tenant: tenant, headers, body: body) { promise.succeed($0) }
        }
        promise.futureResult.whenComplete { _ in self.inFlight.wrappingSubtract(1, ordering: .relaxed) }
        return promise.futureResult
    }

    /// The cost endpoints (GET), computed on the thread pool.
    private func costs(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        guard phase.load(ordering: .acquiring) == .ready else { return request.now(Self.notReady) }
        let credential: Credential?
        switch authenticate(request.head) {
        case let .success(found): credential = found
        case let .failure(refusal): return request.now(refusal)
        }
        let question = CostAPI.Request(path: request.path, query: QueryString(uri: request.head.uri), tenantSources: tenantSources(request.head),
                                       credential: credential)
        let costs = self.costs
        return threadPool.runIfActive(eventLoop: request.eventLoop) { costs.answer(question) }
            .recover { _ in Self.shuttingDown }
    }

    /// Prometheus' query API: the tenant named as for writes (or `--default-tenant`), read with the
    /// read scope; the work on the query pool.
    private func query(_ endpoint: QueryAPI.Endpoint, _ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        guard phase.load(ordering: .acquiring) == .ready else { return request.now(Self.notReady) }
        if request.bodyTooLarge {
            return request.now(HTTPAnswer(status: 413, body: "request body over the limit of \(configuration.maxRequestBytes) bytes\n"))
        }
        let credential: Credential?
        switch authenticate(request.head) {
        case let .success(found): credential = found
        case let .failure(refusal): return request.now(refusal)
        }
        let form = request.form
        var tenant: String?
        if endpoint.readsTenant {
            var sources = tenantSources(request.head)
            sources.add("tenant parameter", form["tenant"])
            switch sources.readableTenant(credential, default: configuration.defaultTenant) {
            case let .success(name): tenant = name
            case let .failure(refusal):
                // Disagreeing sources are the client's mistake, said the way Prometheus' clients read it.
                guard refusal.status == 400 else { return request.now(refusal) }
                let message = String(decoding: refusal.body, as: UTF8.self).trimmingCharacters(in: .newlines)
                return request.now(PrometheusJSON.failure(PrometheusAPIError(.badData, message)))
            }
        }
        let question = QueryAPI.Question(endpoint: endpoint, form: form, tenant: tenant, labelName: request.parameter,
                                         arrived: wallClockMilliseconds())
        inFlight.wrappingAdd(1, ordering: .relaxed)
        let answer = queries.answer(question, on: request.eventLoop)
        answer.whenComplete { _ in self.inFlight.wrappingSubtract(1, ordering: .relaxed) }
        return answer
    }

    /// `/metrics`, behind an admin credential when the auth file protects it.
    private func metricsPage(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        if let authenticator, authenticator.protectsMetrics {
            switch authenticator.authenticate(request.head) {
            case let .success(credential):
                guard credential.scopes.contains(.admin) else {
                    return request.now(HTTPAnswer(status: 403, body: "credential \(GoFormat.quote(credential.name)) may not read /metrics: it needs the admin scope\n"))
                }
            case let .failure(refusal): return request.now(refusal)
            }
        }
        let page = metrics.page(tenants: ingester.registry.openDatabases, exemplars: ingester.exemplars.counts, storageRoot: configuration.storageRoot)
        return request.now(HTTPAnswer(status: 200, body: page, contentType: "text/plain; version=0.0.4; charset=utf-8"))
    }

    /// The admin endpoints: allowed methods, the cross-origin rule, who may call (`AdminAccess`), an
    /// audit line per call, then the work on one tenant (or, named by none, every open tenant).
    private func admin(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        let access = admin
        return maintain(request).map { access.naming($0, for: request.head) }
    }

    private func maintain(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        let (head, path, eventLoop) = (request.head, request.path, request.eventLoop)
        let now = request.now
        let isDeletion = path == Self.deleteSeriesPath
        if let refusal = AdminAccess.crossOriginRefusal(head) { return now(refusal) }
        var caller: String
        var credential: Credential?
        switch admin.authorise(head) {
        case let .success(who): caller = who
        case let .failure(refusal):
            logger.warning("admin call refused", metadata: ["path": "\(path)", "status": "\(refusal.status)"])
            return now(refusal)
        }
        if head.headers.first(name: AdminAccess.tokenHeader) == nil {
            switch authenticate(head) {
            case let .success(found):
                credential = found
                if let found { caller = "credential \(GoFormat.quote(found.name))" }
            case let .failure(refusal):
                logger.warning("admin call refused", metadata: ["path": "\(path)", "status": "\(refusal.status)"])
                return now(refusal)
            }
        }
        guard phase.load(ordering: .acquiring) == .ready else { return now(Self.notReady) }
        let query = isDeletion ? request.form : QueryString(uri: head.uri)
        var sources = tenantSources(head)
        sources.add("tenant parameter", query["tenant"])
        let tenant: String?
        switch sources.resolve(default: "") {
        case let .success(name): tenant = name.isEmpty ? nil : name
        case let .failure(refusal): return now(refusal)
        }
        if let refusal = accessRefusal(credential, .admin, tenant: isDeletion ? tenant ?? configuration.defaultTenant : tenant) {
            logger.warning("admin call refused", metadata: ["path": "\(path)", "by": "\(caller)", "status": "403"])
            return now(refusal)
        }
        let work: @Sendable (TenantDatabase) throws -> String
        switch path {
        case "/api/v1/admin/compact":
            let maintenance = self.maintenance
            work = { db in
                let report = try maintenance.compact(db, .admin)
                let json = report.json(tenant: db.tenant, by: "the server")
                // Some groups could not be merged: the caller must not read this as success.
                guard report.failures.isEmpty else { throw MaintenanceFailure(description: json) }
                return json
            }
        case "/api/v1/admin/retention":
            guard let keep = query["keep"].flatMap(ServerConfiguration.milliseconds), keep > 0 else {
                return now(HTTPAnswer(status: 400, body: "keep: expected a positive duration like 400d\n"))
            }
            let maintenance = self.maintenance
            work = { RetentionPolicy.json(try maintenance.applyRetention($0, keep: keep, .admin), tenant: $0.tenant, by: "the server") }
        default:
            // As writes: a request that names no tenant means the default one, never every tenant.
            let request: DeleteSeriesRequest
            switch DeleteSeriesRequest.parse(query, tenant: tenant ?? configuration.defaultTenant) {
            case let .success(parsed): request = parsed
            case let .failure(answer): return now(answer)
            }
            work = { try $0.deleteSeries(request.arguments.selectors, in: request.arguments.interval, dryRun: request.dryRun).json(tenant: $0.tenant, by: "the server") }
        }
        logger.notice("admin call", metadata: ["by": "\(caller)", "method": "\(head.method)", "uri": "\(head.uri)",
                                               "tenant": "\(tenant ?? "every tenant")"])
        let registry = ingester.registry
        let target = isDeletion ? tenant ?? configuration.defaultTenant : tenant
        return threadPool.runIfActive(eventLoop: eventLoop) { Self.maintain(registry, tenant: target, work) }
            .recover { _ in Self.shuttingDown }
    }

    /// Counts a write that named no tenant and logs it once per sender address.
    private func notedTenantless(from sender: SocketAddress?, tenant: String) {
        metrics.writesWithoutTenant.increment()
        let address = sender?.ipAddress ?? "unknown"
        switch tenantlessSenders.note(address) {
        case .new:
            logger.notice("a write named no tenant and was stored under --default-tenant; senders name theirs with a tenant header or ?tenant=",
                          metadata: ["tenant": "\(tenant)", "sender": "\(address)"])
        case .full:
            logger.notice("more senders wrote without naming a tenant than are remembered; further ones are counted in tally_writes_without_tenant_total, not logged",
                          metadata: ["remembered": "\(TenantlessSenders.capacity)"])
        case .known, .unremembered:
            break
        }
    }

    /// The request's credential; nil when auth is off; the 401 answer when it is on and none is proven.
    private func authenticate(_ head: HTTPRequestHead) -> Result<Credential?, HTTPAnswer> {
        guard let authenticator else { return .success(nil) }
        return authenticator.authenticate(head).map { $0 }
    }

    /// The tenant named by each configured header, every value of each.
    private func tenantSources(_ head: HTTPRequestHead) -> TenantSources {
        var sources = TenantSources()
        for name in configuration.tenantHeaders {
            for value in head.headers[name] { sources.add(name, value) }
        }
        return sources
    }

    static let deleteSeriesPath = "/api/v1/admin/tsdb/delete_series"
    /// Runs maintenance on one tenant (or every open one) now; one JSON line per tenant.
    static func maintain(_ registry: TenantRegistry, tenant: String?, _ work: (TenantDatabase) throws -> String) -> HTTPAnswer {
        var databases: [TenantDatabase]
        do {
            if let tenant {
                guard let db = try registry.existingDatabase(for: tenant) else { return HTTPAnswer(status: 404, body: "no tenant \(tenant)\n") }
                databases = [db]
            } else {
                databases = registry.openDatabases
            }
        } catch {
            return HTTPAnswer(status: 400, body: "\(error)\n")
        }
        // Every tenant is tried; one that fails makes the answer 500 without stopping the others.
        var out = ""
        var failed = false
        for db in databases {
            do { out += try work(db) + "\n" } catch {
                out += error is MaintenanceFailure ? "\(error)\n" : "\(db.tenant) failed: \(error)\n"
                failed = true
            }
        }
        return HTTPAnswer(status: failed ? 500 : 200, body: out, contentType: "application/json")
    }

    /// A query parameter's raw value. Not percent-decoded: valid tenant ids need no escaping, and an
    /// escaped one is refused as invalid rather than decoded into something else.
    static func queryParameter(_ name: String, in uri: String) -> String? {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first == Substring(name) { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }

}

/// Maintenance that did part of its work; the description says what (a JSON line).
struct MaintenanceFailure: Error, CustomStringConvertible {
    let description: String
}

/// `POST /api/v1/admin/tsdb/delete_series?match[]=...&start=...&end=...` as Prometheus takes it
/// (query or form body; times RFC 3339 or Unix seconds; no start or end means all time), plus
/// `dry_run=1` to count without deleting. The tenant is chosen as for writes and reads.
struct DeleteSeriesRequest: Sendable {
    let tenant: String
    let arguments: DeletionArguments
    let dryRun: Bool

    static func parse(_ query: QueryString, tenant: String) -> Result<DeleteSeriesRequest, HTTPAnswer> {
        func refuse(_ message: String) -> Result<DeleteSeriesRequest, HTTPAnswer> { .failure(HTTPAnswer(status: 400, body: message + "\n")) }
        guard TenantID.isValid(tenant) else { return refuse(TenantError.invalidName(tenant).description) }
        do {
            let arguments = try DeletionArguments(selectors: query.all("match[]"), start: query["start"], end: query["end"])
            return .success(DeleteSeriesRequest(tenant: tenant, arguments: arguments, dryRun: ["1", "true"].contains(query["dry_run"] ?? "")))
        } catch {
            return refuse(error.description)
        }
    }
}

/// One connection: collects a request (bounded in size, in bytes held over every connection and in
/// time), asks the router, writes the answer; closes the connection when it idles.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the connection waits for; each has its own deadline.
    private enum Waiting {
        /// A request's first byte: closed without a word after the idle timeout.
        case request
        /// The rest of a request, head and body: answered 408 after the read timeout.
        case requestEnd
        /// The router's answer, or nothing after an early one: no deadline (shutdown drains answers).
        case answer
    }

    private let router: Router
    private let limits: ConnectionLimits
    private var waiting = Waiting.request
    private var deadline: Scheduled<Void>?
    private var head: HTTPRequestHead?
    /// When the request's head came, for the request duration histogram.
    private var started = NIODeadline.now()
    /// The request body so far, in one buffer: the ingester decodes it in place.
    private var body = ByteBuffer()
    /// Bytes of `body` taken from the server-wide budget, given back when the answer is done or the
    /// connection closes.
    private var reservedBytes = 0
    private var tooLarge = false
    /// The request was answered 408 or 503 before its end: its remaining parts are dropped.
    private var answeredEarly = false

    init(router: Router, limits: ConnectionLimits) {
        self.router = router
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        expect(.request, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        releaseBody()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is RawConnectionHandler.BytesArrived else { return context.fireUserInboundEventTriggered(event) }
        // Part of a request came, maybe of its head only, which the decoder keeps until it is complete.
        if waiting == .request { expect(.requestEnd, context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answeredEarly else { return }
        switch unwrapInboundIn(data) {
        case let .head(requestHead):
            if waiting == .request { expect(.requestEnd, context: context) }
            head = requestHead
            started = .now()
            let declared = requestHead.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
            tooLarge = declared > router.configuration.maxRequestBytes
            // Address space only: pages count (and are reserved) as bytes arrive.
            if !tooLarge && declared > 0 { body = context.channel.allocator.buffer(capacity: declared) }
        case var .body(buffer):
            guard !tooLarge else { return }
            if body.readableBytes + buffer.readableBytes > router.configuration.maxRequestBytes {
                tooLarge = true
                releaseBody()
                return
            }
            guard limits.reserve(buffer.readableBytes) else {
                answerEarly(.bufferedBytes, RawConnectionHandler.Answer(
                    status: .serviceUnavailable, message: "the server holds all the request bytes it may; retry later\n", retryAfterSeconds: 2),
                            context: context)
                return
            }
            reservedBytes += buffer.readableBytes
            body.writeBuffer(&buffer)
        case .end:
            guard let requestHead = head else { return }
            expect(.answer, context: context)
            head = nil
            let requestBody = body
            let heldBytes = reservedBytes
            body = ByteBuffer()
            reservedBytes = 0
            let keepAlive = requestHead.isKeepAlive && !tooLarge
            let handler = Router.handlerName(requestHead.uri)
            let started = self.started
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let limits = self.limits
            let answer = router.answer(requestHead, body: requestBody, bodyTooLarge: tooLarge, from: context.channel.remoteAddress, on: context.eventLoop)
            // The body is held (by the ingester too) until the answer is ready, whether or not the
            // connection is still there to take it.
            answer.whenComplete { _ in limits.release(heldBytes) }
            answer.whenSuccess { answer in
                let (this, context) = bound.value
                this.router.metrics.request(handler: handler, code: answer.status, duration: .nanoseconds((NIODeadline.now() - started).nanoseconds))
                this.write(answer, version: requestHead.version, keepAlive: keepAlive, context: context)
            }
        }
    }

    /// Sets what the connection waits for next and the deadline that goes with it.
    private func expect(_ next: Waiting, context: ChannelHandlerContext) {
        waiting = next
        deadline?.cancel()
        deadline = nil
        switch next {
        case .request:
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: limits.idleTimeout) { context.close(promise: nil) }
        case .requestEnd:
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: limits.readTimeout) { [self] in
                answerEarly(.readTimeout, RawConnectionHandler.Answer(
                    status: .requestTimeout, message: "request not complete within \(limits.readTimeout.nanoseconds / 1_000_000) ms\n"),
                            context: context)
            }
        case .answer:
            break
        }
    }

    private func answerEarly(_ reason: ConnectionRefusal, _ answer: RawConnectionHandler.Answer, context: ChannelHandlerContext) {
        answeredEarly = true
        expect(.answer, context: context)
        head = nil
        releaseBody()
        limits.refused(reason)
        context.triggerUserOutboundEvent(answer, promise: nil)
    }

    /// Drops the body being collected and gives its bytes back to the budget.
    private func releaseBody() {
        body = ByteBuffer()
        limits.release(reservedBytes)
        reservedBytes = 0
    }

    private func write(_ answer: HTTPAnswer, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        let bytes = answer.body
        headers.add(name: "Content-Length", value: String(bytes.count))
        if !bytes.isEmpty { headers.add(name: "Content-Type", value: answer.contentType) }
        for (name, value) in answer.headers { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: answer.status), headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if !bytes.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        }
        // Before the end goes out: writing it may hand over a pipelined request already read.
        if keepAlive && context.channel.isActive { expect(.request, context: context) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
