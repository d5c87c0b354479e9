import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TallyQuery
import TallyStorage

/// Where the server is in its life; writes are taken only while `ready`.
enum ServerPhase: UInt8, AtomicRepresentable {
    case starting, ready, draining
}

/// The ready/draining state and the requests being worked on, read by the middleware and by shutdown.
final class ServerState: Sendable {
    let phase = Atomic<ServerPhase>(.starting)
    /// Writes and queries not yet answered (`InFlightCount`): shutdown waits for them.
    let inFlight = Atomic<Int>(0)

    var isReady: Bool { phase.load(ordering: .acquiring) == .ready }
}

/// Routes, limits and the ready/draining state, shared by every connection.
final class Router: Sendable {
    let configuration: ServerConfiguration
    let ingester: RemoteWriteIngester
    let costs: CostAPI
    let queries: QueryAPI
    let metrics: ServerMetrics
    /// nil without `--auth.config-file`: every request is let in, as before auth existed.
    let authenticator: Authenticator?
    let logger: Logger
    let maintenance: MaintenanceRecorder
    let state = ServerState()
    let routes: RouteTable
    let threadPool: NIOThreadPool
    let scheduler: TenantScheduler

    init(configuration: ServerConfiguration, ingester: RemoteWriteIngester, costs: CostAPI, queries: QueryAPI, metrics: ServerMetrics,
         admin: AdminAccess, authenticator: Authenticator?, logger: Logger, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.ingester = ingester
        self.costs = costs
        self.queries = queries
        self.metrics = metrics
        self.authenticator = authenticator
        self.logger = logger
        maintenance = MaintenanceRecorder(metrics: metrics, logger: logger)
        routes = Self.routeTable(configuration: configuration, state: state, metrics: metrics, authenticator: authenticator, admin: admin, logger: logger)
        self.threadPool = threadPool
        self.scheduler = TenantScheduler(pool: threadPool, threads: System.coreCount)
    }

    private static let shuttingDown = HTTPAnswer(status: 503, body: "shutting down\n")

    /// Answers a complete request from `sender` (the peer's address) whose head came at `arrived`; the
    /// future completes on `eventLoop`.
    /// `cancellation` is set if the connection closes before the answer is written.
    func answer(_ head: HTTPRequestHead, body: ByteBuffer, bodyTooLarge: Bool, from sender: SocketAddress?, arrived: NIODeadline,
                cancellation: QueryCancellation, on eventLoop: EventLoop) -> EventLoopFuture<HTTPAnswer> {
        return routes.answer(self, head, path: RouteRequest.path(of: head.uri), body: body, bodyTooLarge: bodyTooLarge, from: sender, arrived: arrived,
                             cancellation: cancellation, on: eventLoop)
    }

    /// `POST /api/v1/write`, checked and its tenant named by its middleware: the work on the tenant's
    /// scheduler queue.
    func write(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        guard let tenant = request.tenant else { preconditionFailure("the write route's middleware names the tenant") }
        // A header sent twice with different values is their list, which names no one type or
        // coding (415), never the first alone.
        func value(_ name: String) -> String? {
            var distinct: [String] = []
            for value in request.head.headers[name] where !distinct.contains(value) { distinct.append(value) }
            return distinct.isEmpty ? nil : distinct.joined(separator: ", ")
        }
        let headers = RemoteWriteIngester.RequestHeaders(contentType: value("Content-Type"), contentEncoding: value("Content-Encoding"))
        let promise = request.eventLoop.makePromise(of: HTTPAnswer.self)
        let ingester = self.ingester
        let body = request.body
        scheduler.submit(tenant: tenant) { state in
            guard case .active = state else { return promise.succeed(Self.shuttingDown) }
            ingester.ingest(tenant: tenant, headers, body: body) { promise.succeed($0) }
        }
        return promise.futureResult
    }

    /// The cost endpoints (GET), computed on the thread pool; `CostAPI` names the tenant (the
    /// Metroculus path takes it from `cloud_account_id` too).
    func costs(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        let question = CostAPI.Request(path: request.path, query: QueryString(uri: request.head.uri),
                                       tenantSources: TenantSources(request.head, headers: configuration.tenantHeaders), credential: request.credential)
        let costs = self.costs
        return threadPool.runIfActive(eventLoop: request.eventLoop) { costs.answer(question) }
            .recover { _ in Self.shuttingDown }
    }

    /// Prometheus' query API, the tenant named by the middleware (for the endpoints that read one):
    /// the work on the query pool.
    func query(_ endpoint: QueryAPI.Endpoint, _ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        let question = QueryAPI.Question(endpoint: endpoint, form: request.form, tenant: request.tenant, labelName: request.parameter,
                                         arrived: wallClockMilliseconds(), cancellation: request.cancellation, body: request.body,
                                         accept: request.head.headers.first(name: "Accept"))
        return queries.answer(question, on: request.eventLoop)
    }

    /// `/metrics`, behind an admin credential when the auth file protects it.
    func metricsPage(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
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

    /// The admin endpoints, the caller and tenant settled by the middleware: the credential's admin
    /// scope for the tenant, an audit line per call, then the work on one tenant (or, named by none,
    /// every open tenant).
    func maintain(_ request: RouteRequest) -> EventLoopFuture<HTTPAnswer> {
        let (head, path, tenant, now) = (request.head, request.path, request.tenant, request.now)
        guard let caller = request.adminCaller else { preconditionFailure("the admin routes' middleware names the caller") }
        let isDeletion = path == Self.deleteSeriesPath
        if let refusal = accessRefusal(request.credential, .admin, tenant: isDeletion ? tenant ?? configuration.defaultTenant : tenant) {
            logger.warning("admin call refused", metadata: ["path": "\(path)", "by": "\(caller)", "status": "403"])
            return now(refusal)
        }
        // From the URL or a form body, as Prometheus reads its admin calls' parameters.
        let query = request.form
        let work: @Sendable (TenantDatabase) throws -> String
        // What the caller gets: the tenants' report lines, or for a snapshot Prometheus' answer.
        var answered: @Sendable (HTTPAnswer) -> HTTPAnswer = { $0 }
        switch path {
        case "/api/v1/admin/compact", Self.cleanTombstonesPath:
            let maintenance = self.maintenance
            let cleaning = path == Self.cleanTombstonesPath
            work = { db in
                let report = try maintenance.compact(db, .admin, cleaningTombstones: cleaning)
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
        case Self.snapshotPath:
            // Go's `strconv.ParseBool`, as Prometheus reads the parameter.
            let skipHead = query["skip_head"] ?? ""
            guard let skipping = goBool(skipHead) else {
                return now(PrometheusJSON.failure(PrometheusAPIError(.badData,
                    "unable to parse boolean 'skip_head' argument: strconv.ParseBool: parsing \(GoFormat.quote(skipHead)): invalid syntax")))
            }
            // One name for every tenant of the call, so that the answer is Prometheus' own.
            let name = TenantDatabase.snapshotName()
            work = { db in
                _ = try db.snapshot(name: name, includingHead: !skipping)
                return ""
            }
            answered = { $0.status == 200 ? PrometheusJSON.success(JSONText { $0.append(#"{"name":"#); $0.appendString(name); $0.append("}") }) : $0 }
        default:
            // As writes: a request that names no tenant means the default one, never every tenant.
            let deletion: DeleteSeriesRequest
            switch DeleteSeriesRequest.parse(query, tenant: tenant ?? configuration.defaultTenant) {
            case let .success(parsed): deletion = parsed
            case let .failure(answer): return now(answer)
            }
            work = { try $0.deleteSeries(deletion.arguments.selectors, in: deletion.arguments.interval, dryRun: deletion.dryRun).json(tenant: $0.tenant, by: "the server") }
        }
        logger.notice("admin call", metadata: ["by": "\(caller)", "method": "\(head.method)", "uri": "\(head.uri)",
                                               "tenant": "\(tenant ?? "every tenant")"])
        let registry = ingester.registry
        let target = isDeletion ? tenant ?? configuration.defaultTenant : tenant
        return threadPool.runIfActive(eventLoop: request.eventLoop) { [answered] in answered(Self.maintain(registry, tenant: target, work)) }
            .recover { _ in Self.shuttingDown }
    }

    static let deleteSeriesPath = "/api/v1/admin/tsdb/delete_series"
    /// Prometheus' name for a compaction that also rewrites every block holding a deletion.
    static let cleanTombstonesPath = "/api/v1/admin/tsdb/clean_tombstones"
    /// Prometheus' snapshot of the data as it is now (`TenantDatabase.snapshot`).
    static let snapshotPath = "/api/v1/admin/tsdb/snapshot"
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
}

/// Maintenance that did part of its work; the description says what (a JSON line).
struct MaintenanceFailure: Error, CustomStringConvertible {
    let description: String
}

/// Go's `strconv.ParseBool`, as Prometheus reads its boolean parameters, with an absent or empty one
/// false; nil for anything else (a typo must not pass for "no", as `dry_run=yes` would).
func goBool(_ text: String) -> Bool? {
    switch text {
    case "", "0", "f", "F", "FALSE", "false", "False": false
    case "1", "t", "T", "TRUE", "true", "True": true
    default: nil
    }
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
        if let error = query.parseError { return refuse("error parsing form values: \(error)") }
        do {
            let arguments = try DeletionArguments(selectors: query.all("match[]"), start: query["start"], end: query["end"])
            guard let dryRun = goBool(query["dry_run"] ?? "") else {
                return refuse("dry_run: expected a boolean (1, t, true, 0, f, false, ...), got \(GoFormat.quote(query["dry_run"] ?? ""))")
            }
            return .success(DeleteSeriesRequest(tenant: tenant, arguments: arguments, dryRun: dryRun))
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
    /// When the request's head came: request durations count from it.
    private var started = NIODeadline.now()
    /// The request body so far, in one buffer: the ingester decodes it in place.
    private var body = ByteBuffer()
    /// Bytes of `body` taken from the server-wide budget, given back when the answer is done or the
    /// connection closes.
    private var reservedBytes = 0
    private var tooLarge = false
    /// The request was answered 408 or 503 before its end: its remaining parts are dropped.
    private var answeredEarly = false
    /// The request being answered: set if the connection closes first, so a query stops.
    private var answering: QueryCancellation?
    /// An answer said `Connection: close`: a request pipelined behind it is neither run nor answered.
    private var closing = false
    /// The client sent its last byte (see `userInboundEventTriggered`): the answer under way is the last.
    private var inputClosed = false
    private var date = HTTPDate()

    init(router: Router, limits: ConnectionLimits) {
        self.router = router
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        expect(.request, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        answering?.cancel()
        deadline?.cancel()
        deadline = nil
        releaseBody()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The client sends nothing more: a half-close (`shutdown(SHUT_WR)`, `nc -N`) looks the
            // same as a close here. As Go's server does, a query under way stops as on a close, and
            // the request being answered is still answered; then the connection closes.
            inputClosed = true
            answering?.cancel()
            if waiting != .answer { context.close(promise: nil) }
            return
        }
        guard event is RawConnectionHandler.BytesArrived else { return context.fireUserInboundEventTriggered(event) }
        // Part of a request came, maybe of its head only, which the decoder keeps until it is complete.
        if waiting == .request { expect(.requestEnd, context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answeredEarly && !closing else { return }
        switch unwrapInboundIn(data) {
        case let .head(requestHead):
            if waiting == .request { expect(.requestEnd, context: context) }
            head = requestHead
            started = .now()
            let declared = requestHead.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
            tooLarge = declared > router.configuration.maxRequestBytes
            // Answered now (413), not once a body that will be dropped has come: a client that
            // waits for `100 Continue`, or sends less than it declared, would otherwise wait for
            // the read timeout.
            if tooLarge { return dispatch(context: context) }
            // Address space only: pages count (and are reserved) as bytes arrive.
            if declared > 0 { body = context.channel.allocator.buffer(capacity: declared) }
            // A client that asks first (curl does past 1 MiB) sends the body on this, not after a
            // wait, as Go's server answers it.
            if requestHead.version == .http1_1 && requestHead.headers["Expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.triggerUserOutboundEvent(RawConnectionHandler.Continue(), promise: nil)
            }
        case var .body(buffer):
            if body.readableBytes + buffer.readableBytes > router.configuration.maxRequestBytes {
                tooLarge = true
                releaseBody()
                return dispatch(context: context)
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
            dispatch(context: context)
        }
    }

    /// Hands the request to the router, at its end or, for a body over the limit, as soon as that
    /// is known (the rest of it is then dropped, and the connection closed after the answer).
    private func dispatch(context: ChannelHandlerContext) {
        guard let requestHead = head else { return }
        expect(.answer, context: context)
        head = nil
        let requestBody = body
        let heldBytes = reservedBytes
        body = ByteBuffer()
        reservedBytes = 0
        let keepAlive = requestHead.isKeepAlive && !tooLarge
        let bodyRefused = tooLarge
        if !keepAlive { closing = true }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let limits = self.limits
        let cancellation = QueryCancellation()
        answering = cancellation
        let answer = router.answer(requestHead, body: requestBody, bodyTooLarge: tooLarge, from: context.channel.remoteAddress, arrived: started,
                                   cancellation: cancellation, on: context.eventLoop)
        // The body is held (by the ingester too) until the answer is ready, whether or not the
        // connection is still there to take it.
        answer.whenComplete { _ in limits.release(heldBytes) }
        answer.whenSuccess { answer in
            let (this, context) = bound.value
            this.answering = nil
            this.write(answer, version: requestHead.version, keepAlive: keepAlive, bodyRefused: bodyRefused, context: context)
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

    private func write(_ answer: HTTPAnswer, version: HTTPVersion, keepAlive: Bool, bodyRefused: Bool, context: ChannelHandlerContext) {
        let keepAlive = keepAlive && !inputClosed
        var headers = HTTPHeaders()
        let bytes = answer.body
        headers.add(name: "Date", value: date.now())
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
        if bodyRefused {
            // Its body may still be coming: closed at once, the bytes left unread would reset the
            // connection, maybe before the client has read the answer.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in bound.value.triggerUserOutboundEvent(RawConnectionHandler.Linger(), promise: nil) }
        } else if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
