import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TallyQuery
import TallyStorage

/// Prometheus' HTTP query API over one tenant's data: `/api/v1/query`, `query_range`, `series`,
/// `labels`, `label/<name>/values`, `metadata`, `query_exemplars`, `status/buildinfo` and `format_query`, answered
/// as Prometheus 2.42 answers them. Work runs on its own pool of `--query.max-concurrency`
/// threads, never on an event loop: queries past that many wait their turn, and their wait counts
/// against their timeout, as in Prometheus' query queue. What reads no data (`buildinfo`,
/// `format_query`, and a query's parameter, parse and type errors) is answered on a pool of its
/// own, so it never waits behind queries that run, as in Prometheus, which queues evaluation only.
final class QueryAPI: Sendable {
    enum Endpoint: Sendable {
        case query, queryRange, series, labels, labelValues, metadata, queryExemplars, buildInfo, formatQuery, tsdbStatus, rules, alerts, remoteRead, federate

        /// Whether the endpoint reads a tenant's data (and so names one).
        var readsTenant: Bool { ![.buildInfo, .formatQuery, .rules, .alerts].contains(self) }
    }

    /// Paths, methods and endpoints, as Prometheus registers them.
    static let endpoints: [(path: String, methods: [HTTPMethod], endpoint: Endpoint)] = [
        ("/api/v1/query", [.GET, .POST], .query),
        ("/api/v1/query_range", [.GET, .POST], .queryRange),
        ("/api/v1/series", [.GET, .POST], .series),
        ("/api/v1/labels", [.GET, .POST], .labels),
        ("/api/v1/label/:name/values", [.GET], .labelValues),
        ("/api/v1/metadata", [.GET], .metadata),
        ("/api/v1/query_exemplars", [.GET, .POST], .queryExemplars),
        ("/api/v1/status/buildinfo", [.GET], .buildInfo),
        ("/api/v1/status/tsdb", [.GET], .tsdbStatus),
        ("/api/v1/read", [.POST], .remoteRead),
        ("/api/v1/rules", [.GET], .rules),
        ("/api/v1/alerts", [.GET], .alerts),
        ("/api/v1/format_query", [.GET, .POST], .formatQuery),
        ("/federate", [.GET], .federate),
    ]

    /// One question, everything read from the request on the event loop.
    struct Question: Sendable {
        let endpoint: Endpoint
        let form: QueryString
        /// nil for endpoints that read no tenant.
        let tenant: String?
        /// The label name of `/api/v1/label/<name>/values`.
        let labelName: String?
        /// When the request came (ms), the default `time` of an instant query.
        let arrived: Int64
        /// Set once the client is gone.
        let cancellation: QueryCancellation
        /// The request's body: a Remote-Read request for `remoteRead`.
        let body: ByteBuffer
        /// The formats the client takes (`Accept`), for `federate`.
        let accept: String?
    }

    let registry: TenantRegistry
    let exemplars: TenantExemplars
    let metadata: TenantMetadata
    let options: QueryOptions
    /// Largest Remote-Read request after snappy decompression.
    let maxDecodedBytes: Int
    private let pool: NIOThreadPool
    /// Threads for what reads no data.
    private let checkPool: NIOThreadPool

    init(registry: TenantRegistry, exemplars: TenantExemplars, metadata: TenantMetadata, options: QueryOptions, maxDecodedBytes: Int,
         pool: NIOThreadPool, checkPool: NIOThreadPool) {
        self.registry = registry
        self.exemplars = exemplars
        self.metadata = metadata
        self.options = options
        self.maxDecodedBytes = maxDecodedBytes
        self.pool = pool
        self.checkPool = checkPool
    }

    /// Answers what reads no data on the check pool, the rest on the query pool; 503 once a pool
    /// has stopped.
    func answer(_ question: Question, on eventLoop: EventLoop) -> EventLoopFuture<HTTPAnswer> {
        let arrived = NIODeadline.now()
        let check: @Sendable () -> HTTPAnswer?
        switch question.endpoint {
        case .buildInfo, .formatQuery, .rules, .alerts:
            check = { [self] in
                do throws(PrometheusAPIError) { return try compute(question, waitedMilliseconds: 0) } catch { return PrometheusJSON.failure(error) }
            }
        case .query, .queryRange:
            let kind: QueryEvaluation.Kind = question.endpoint == .query ? .instant : .range
            check = { [options] in QueryEvaluation.refusal(kind, question.form, now: question.arrived, options: options) }
        default:
            return queued(question, since: arrived, on: eventLoop)
        }
        // A question that passes its check goes from the check thread to the query pool directly:
        // back through the event loop, it waited for one more thread to wake (a fifth of a
        // millisecond on an idle machine).
        let promise = eventLoop.makePromise(of: HTTPAnswer.self)
        checkPool.submit { [self] state in
            guard case .active = state else { return promise.succeed(Self.shuttingDown) }
            if let answer = check() { promise.succeed(answer) } else { promise.completeWith(queued(question, since: arrived, on: eventLoop)) }
        }
        return promise.futureResult
    }

    private static let shuttingDown = PrometheusJSON.failure(PrometheusAPIError(.unavailable, "shutting down"))

    /// Answers on the query pool. A query still waiting for a thread when its timeout (counted from
    /// `since`) passes is answered then, and is not run when its turn comes.
    private func queued(_ question: Question, since queued: NIODeadline, on eventLoop: EventLoop) -> EventLoopFuture<HTTPAnswer> {
        let promise = eventLoop.makePromise(of: HTTPAnswer.self)
        let turn = Turn()
        let timer: Scheduled<Void>? = { [options] in
            guard question.endpoint == .query || question.endpoint == .queryRange else { return nil }
            // A timeout that does not parse is reported when the question runs, in its place among the parameters.
            let timeout = (try? QueryEvaluation.timeout(options, QueryParameters(question.form))) ?? options.timeout
            return eventLoop.scheduleTask(deadline: queued + .milliseconds(max(timeout, 0))) {
                if turn.take() { promise.succeed(PrometheusJSON.failure(QueryEvaluation.queueTimeout)) }
            }
        }()
        pool.runIfActive(eventLoop: eventLoop) { [self] () -> HTTPAnswer? in
            guard turn.take() else { return nil }
            timer?.cancel()
            // Its client went away while it waited: nobody reads the answer.
            if question.cancellation.isCanceled { return PrometheusJSON.failure(PrometheusAPIError(.canceled, "query was canceled in query queue")) }
            let waited = (NIODeadline.now() - queued).nanoseconds / 1_000_000
            do throws(PrometheusAPIError) {
                return try compute(question, waitedMilliseconds: waited)
            } catch {
                return PrometheusJSON.failure(error)
            }
        }.whenComplete { result in
            switch result {
            case let .success(answer?): promise.succeed(answer)
            case .success(nil): break
            case .failure:
                timer?.cancel()
                if turn.take() { promise.succeed(Self.shuttingDown) }
            }
        }
        return promise.futureResult
    }

    /// Whichever comes first, a question's thread or its timeout, takes the question.
    private final class Turn: Sendable {
        private let taken = Atomic<Bool>(false)
        func take() -> Bool { !taken.exchange(true, ordering: .acquiringAndReleasing) }
    }

    private func compute(_ question: Question, waitedMilliseconds: Int64) throws(PrometheusAPIError) -> HTTPAnswer {
        let parameters = QueryParameters(question.form)
        switch question.endpoint {
        case .query, .queryRange:
            var options = options
            options.cancellation = question.cancellation
            return try QueryEvaluation.answer(question.endpoint == .query ? .instant : .range, question.form, now: question.arrived,
                                              options: options, waitedMilliseconds: waitedMilliseconds) { () throws(PrometheusAPIError) in
                try database(question)
            }
        case .series:
            if let error = question.form.parseError { throw PrometheusAPIError(.badData, "error parsing form values: \(error)") }
            guard !question.form.all("match[]").isEmpty else { throw PrometheusAPIError(.badData, "no match[] parameter provided") }
            let (start, end) = try span(parameters)
            let sets: [[TallyStorage.LabelMatcher]]
            do { sets = try parameters.matcherSets() } catch { throw .invalidParameter("match[]", error.message) }
            let limit = try parameters.limit()
            let (found, leftOut) = try read(question, start, end) { querier in try querier.seriesLabels(sets, minTime: start, maxTime: end) }
            let (kept, warnings) = Self.truncated(found, to: limit)
            return PrometheusJSON.success(PrometheusJSON.labelSets(kept), warnings: leftOut + warnings)
        case .labels:
            let (start, end) = try span(parameters)
            let sets = try parameters.matcherSets()
            let limit = try parameters.limit()
            let (names, leftOut) = try read(question, start, end) { querier in
                sets.isEmpty ? try querier.labelNames([]) : Self.union(try sets.map { try querier.labelNames($0) })
            }
            let (kept, warnings) = Self.truncated(names, to: limit)
            return PrometheusJSON.success(PrometheusJSON.strings(kept), warnings: leftOut + warnings)
        case .labelValues:
            let name = question.labelName ?? ""
            guard PromQL.isValidLabelName(name) else { throw PrometheusAPIError(.badData, "invalid label name: \(GoFormat.quote(name))") }
            let (start, end) = try span(parameters)
            let sets = try parameters.matcherSets()
            let limit = try parameters.limit()
            let (values, leftOut) = try read(question, start, end) { querier in
                sets.isEmpty ? try querier.labelValues(name, []) : Self.union(try sets.map { try querier.labelValues(name, $0) })
            }
            let (kept, warnings) = Self.truncated(values, to: limit)
            return PrometheusJSON.success(PrometheusJSON.strings(kept), warnings: leftOut + warnings)
        case .metadata:
            return try metricMetadata(question, parameters)
        case .queryExemplars:
            return try queryExemplars(question, parameters)
        case .buildInfo:
            return PrometheusJSON.success(Self.buildInfo)
        // Tally evaluates no rules (Prometheus, vmalert or Thanos Ruler evaluate them against this
        // API): no group and no alert, as from a Prometheus without rule files, so that clients
        // that list rules (Grafana's alerting pages) show none rather than an error.
        case .rules:
            let type = (question.form["type"] ?? "").lowercased()
            guard ["", "alert", "record"].contains(type) else { throw .invalidParameter("type", "not supported value \(GoFormat.quote(type))") }
            return PrometheusJSON.success(JSONText(#"{"groups":[]}"#))
        case .alerts:
            return PrometheusJSON.success(JSONText(#"{"alerts":[]}"#))
        case .remoteRead:
            return RemoteReadAPI.answer(question.body, database: try database(question), sampleLimit: options.maxSamples, maxDecodedBytes: maxDecodedBytes)
        case .federate:
            return Federation.answer(question.form, accept: question.accept, database: { () throws(PrometheusAPIError) in try database(question) },
                                     now: question.arrived, lookbackDelta: options.lookbackDelta)
        case .tsdbStatus:
            return PrometheusJSON.success(PrometheusJSON.tsdbStatus(try database(question).headCardinality()))
        case .formatQuery:
            do {
                return PrometheusJSON.success(JSONText.string(try PromQL.parse(question.form["query"] ?? "").prettified))
            } catch {
                throw .invalidParameter("query", error.description)
            }
        }
    }

    /// `metadata` as Prometheus 2.42's `metricMetadata`, over what the tenant's senders sent: `limit`
    /// metrics at most (all when negative or absent), only `metric`'s when given. Metrics come in name
    /// order (Go writes a map's keys sorted), each entry once.
    private func metricMetadata(_ question: Question, _ parameters: QueryParameters) throws(PrometheusAPIError) -> HTTPAnswer {
        var limit = -1
        if let text = parameters.value("limit") {
            guard let number = Int(text) else { throw PrometheusAPIError(.badData, "limit must be a number") }
            limit = number
        }
        let metric = parameters.value("metric").flatMap { $0.isEmpty ? nil : $0 }
        let found = metadata.metadata(of: question.tenant ?? "", metric: metric, limit: limit)
        return PrometheusJSON.success(JSONText { out in
            out.append("{")
            for (index, (name, entries)) in found.enumerated() {
                if index > 0 { out.append(",") }
                out.appendString(name)
                out.append(":")
                out.appendList(entries) { entry, out in out.appendObject([("type", entry.type), ("help", entry.help), ("unit", entry.unit)]) }
            }
            out.append("}")
        })
    }

    /// `query_exemplars` as Prometheus 2.42's `queryExemplars`: the exemplars in `[start, end]` of
    /// the series any vector selector of `query` selects, from the tenant's in-memory storage;
    /// `null` for a query without selectors.
    private func queryExemplars(_ question: Question, _ parameters: QueryParameters) throws(PrometheusAPIError) -> HTTPAnswer {
        let (start, end) = try span(parameters)
        guard end >= start else { throw PrometheusAPIError(.badData, "end timestamp must not be before start timestamp") }
        let selectors: [VectorSelector]
        do { selectors = PromQL.vectorSelectors(in: try PromQL.parse(question.form["query"] ?? "")) } catch {
            throw PrometheusAPIError(.badData, error.description)
        }
        // Prometheus answers a query without selectors with no body at all.
        guard !selectors.isEmpty else { return HTTPAnswer(status: 204, body: "") }
        let sets: [[TallyStorage.LabelMatcher]]
        do {
            sets = try selectors.map { selector throws(SelectorError) in try selector.allMatchers.map { matcher throws(SelectorError) in try matcher.storageMatcher() } }
        } catch {
            throw PrometheusAPIError(.badData, "\(error)")
        }
        let found = exemplars.storage(of: question.tenant ?? "")?.select(start: start, end: end, sets) ?? []
        return PrometheusJSON.success(PrometheusJSON.exemplars(found))
    }

    /// `status/buildinfo`: the Prometheus release whose API Tally answers as (clients such as
    /// Grafana choose what to ask by it), and Tally's own release as the revision. No `features`.
    static let buildInfo = PrometheusJSON.object([
        ("version", "2.42.0"), ("revision", "tally-\(TallyVersion.version)"), ("branch", "tally"),
        ("buildUser", ""), ("buildDate", ""), ("goVersion", ""),
    ])

    /// `start` and `end` of the metadata endpoints, Prometheus' whole range when absent.
    private func span(_ parameters: QueryParameters) throws(PrometheusAPIError) -> (Int64, Int64) {
        (try parameters.time("start", default: TimeParameter.prometheusMinTime, rounding: .down),
         try parameters.time("end", default: TimeParameter.prometheusMaxTime, rounding: .down))
    }

    /// The question's tenant, or an empty read-only one when it has never written here: an unknown
    /// tenant is answered as one with no series, never with another tenant's.
    private func database(_ question: Question) throws(PrometheusAPIError) -> TenantDatabase {
        let tenant = question.tenant ?? ""
        do {
            if let db = try registry.existingDatabase(for: tenant) { return db }
        } catch {
            if case .io = error { throw PrometheusAPIError(.internal, "reading the tenant failed: \(error)") }
            throw PrometheusAPIError(.badData, error.description)
        }
        // A path under the root that no tenant can have (ids start with a letter or digit) and no
        // read-only open creates: it opens as a tenant with nothing stored.
        do {
            return try TenantDatabase.open(directory: registry.root + "/.no-tenant", tenant: tenant, readOnly: true)
        } catch {
            throw PrometheusAPIError(.internal, "opening an empty tenant failed: \(error)")
        }
    }

    /// Runs `body` on a querier over the question's span of its tenant, with the querier's warnings; storage errors are
    /// `execution` errors, as Prometheus reports a failed series set.
    private func read<T>(_ question: Question, _ start: Int64, _ end: Int64,
                         _ body: (TenantQuerier) throws -> T) throws(PrometheusAPIError) -> (T, warnings: [String]) {
        let db = try database(question)
        // Released (and its blocks unpinned) when the answer is made.
        let querier = db.querier(minTime: start, maxTime: end)
        do {
            let answer = try body(querier)
            return (answer, querier.warnings)
        } catch {
            throw PrometheusAPIError(.execution, "\(error)")
        }
    }

    /// The names or values of several `match[]` sets, once each, in byte order as Go sorts strings.
    private static func union(_ lists: [[String]]) -> [String] {
        Set(lists.joined().map { ByteString($0) }).sorted().map(\.string)
    }

    /// The first `limit` values, and Prometheus' warning when some were left out.
    private static func truncated<T>(_ values: [T], to limit: Int?) -> ([T], [String]) {
        guard let limit, values.count > limit else { return (values, []) }
        return (Array(values.prefix(limit)), ["results truncated due to limit"])
    }
}

/// A PromQL query against one tenant's database, its parameters read and its answer written in
/// Prometheus' JSON: what `/api/v1/query` and `/api/v1/query_range` send, and what `tally query`
/// prints for a stopped store, from the same parameters.
public enum QueryEvaluation {
    public enum Kind: Sendable {
        /// `/api/v1/query`: `query`, `time`, `timeout`.
        case instant
        /// `/api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`.
        case range
    }

    /// The answer to the parameters (names and values as a request's form holds them) over
    /// `database`; `now` (ms) is the default `time`.
    public static func answer(_ kind: Kind, parameters: [(name: String, value: String)], database: TenantDatabase,
                              options: QueryOptions, now: Int64) -> HTTPAnswer {
        do {
            return try answer(kind, QueryString(pairs: parameters), now: now, options: options, waitedMilliseconds: 0) { database }
        } catch {
            return PrometheusJSON.failure(error)
        }
    }

    /// Every parameter is checked, in Prometheus' order, before the database is asked for.
    static func answer(_ kind: Kind, _ form: QueryString, now: Int64, options: QueryOptions, waitedMilliseconds: Int64,
                       database: () throws(PrometheusAPIError) -> TenantDatabase) throws(PrometheusAPIError) -> HTTPAnswer {
        answer(try prepared(kind, form, now: now, options: options, waitedMilliseconds: waitedMilliseconds).evaluate(try database()))
    }

    /// The answer a request gets before any data is read (a parameter, parse or type error), if
    /// any: it needs no query thread, so it is not kept waiting behind queries that run.
    static func refusal(_ kind: Kind, _ form: QueryString, now: Int64, options: QueryOptions) -> HTTPAnswer? {
        do {
            return try prepared(kind, form, now: now, options: options, waitedMilliseconds: 0).refusal().map { PrometheusJSON.failure(PrometheusAPIError($0)) }
        } catch {
            return PrometheusJSON.failure(error)
        }
    }

    /// The parameters checked in Prometheus' order; then the query's own errors, and its evaluation.
    private static func prepared(_ kind: Kind, _ form: QueryString, now: Int64, options: QueryOptions, waitedMilliseconds: Int64) throws(PrometheusAPIError)
        -> (refusal: () -> QueryError?, evaluate: (TenantDatabase) -> Result<QueryResult, QueryError>) {
        let parameters = QueryParameters(form)
        let query = form["query"] ?? ""
        switch kind {
        case .instant:
            let time = try parameters.time("time", default: now, rounding: .towardZero)
            let engine = QueryEngine(options: try limits(options, parameters, waitedMilliseconds: waitedMilliseconds))
            return ({ QueryEngine.refusal(instant: query) }, { engine.instantQuery(query, time: time, database: $0) })
        case .range:
            let (start, end, step) = try parameters.range()
            let engine = QueryEngine(options: try limits(options, parameters, waitedMilliseconds: waitedMilliseconds))
            return ({ QueryEngine.refusal(range: query, start: start, end: end, step: step) },
                    { engine.rangeQuery(query, start: start, end: end, step: step, database: $0) })
        }
    }

    /// The server's limits, with the timeout the request asks for (never longer than the
    /// server's) less the time it waited for a thread.
    private static func limits(_ options: QueryOptions, _ parameters: QueryParameters, waitedMilliseconds: Int64) throws(PrometheusAPIError) -> QueryOptions {
        var options = options
        options.timeout = try timeout(options, parameters)
        options.timeout -= min(max(waitedMilliseconds, 0), max(options.timeout, 0))
        guard options.timeout > 0 else { throw queueTimeout }
        return options
    }

    /// The query's timeout (ms): the server's, or the request's `timeout` when that is shorter.
    static func timeout(_ options: QueryOptions, _ parameters: QueryParameters) throws(PrometheusAPIError) -> Int64 {
        guard let asked = try parameters.duration("timeout") else { return options.timeout }
        return min(options.timeout, asked)
    }

    /// Prometheus' answer to a query whose time ran out before it got a thread.
    static let queueTimeout = PrometheusAPIError(.timeout, "query timed out in query queue")

    private static func answer(_ result: Result<QueryResult, QueryError>) -> HTTPAnswer {
        switch result {
        case let .success(result): PrometheusJSON.success(PrometheusJSON.queryData(result.value), warnings: result.warnings)
        case let .failure(error): PrometheusJSON.failure(PrometheusAPIError(error))
        }
    }
}
