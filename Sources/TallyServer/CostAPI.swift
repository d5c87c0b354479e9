import Foundation
import Synchronization
import TallyCost
import TallyStorage

/// The cost endpoints: daily cluster costs, allocation, and the Metroculus-compatible summary
/// existing workers call. Each reads one tenant, named the way writes name it.
final class CostAPI: Sendable {
    let configuration: ServerConfiguration
    let registry: TenantRegistry
    let metrics: ServerMetrics
    /// One rollup store per tenant and day offset, shared by concurrent questions.
    private let rollups = Mutex<[String: CostRollupStore]>([:])

    init(configuration: ServerConfiguration, registry: TenantRegistry, metrics: ServerMetrics) {
        self.configuration = configuration
        self.registry = registry
        self.metrics = metrics
    }

    static let paths = ["/api/v1/costs/daily", "/api/v1/costs/allocation", "/metroculus/v2/kubecost_cluster_costs"]

    struct Request {
        let path: String
        let query: QueryString
        let tenantSources: TenantSources
        let credential: Credential?
    }

    func answer(_ request: Request, now: Int64 = wallClockMilliseconds()) -> HTTPAnswer {
        do {
            return try compute(request, now: now)
        } catch let refusal as HTTPAnswer {
            return refusal
        } catch let error as CostQueryError {
            return HTTPAnswer(status: 400, body: error.description + "\n")
        } catch {
            return HTTPAnswer(status: 500, body: "reading the tenant failed: \(error)\n")
        }
    }

    private func compute(_ request: Request, now: Int64) throws -> HTTPAnswer {
        let q = request.query
        if request.path == "/metroculus/v2/kubecost_cluster_costs" {
            return try metroculus(q, sources: request.tenantSources, credential: request.credential, now: now)
        }
        var sources = request.tenantSources
        sources.add("tenant parameter", parameter: "tenant", of: q)
        let tenant = try readableTenant(sources, request.credential)
        guard let calendar = CostCalendar(parsing: q["tz"] ?? "") else { throw CostQueryError("tz: expected Z or an offset like +05:30, got \(q["tz"]!)") }
        let first = try day(q, "start", calendar), last = try day(q, "end", calendar)
        // Every parameter is checked before the tenant is looked up: a bad question is 400 whoever asks it.
        _ = try CostOptions().days(from: first, to: last)
        let format = try reportFormat(q["format"])
        if request.path == "/api/v1/costs/daily" {
            let (engine, querier) = try self.engine(tenant, calendar)
            let rows = try engine.daily(from: first, to: last, cluster: q["cluster"], now: now)
            return flagged(HTTPAnswer(status: 200, body: CostReport.daily(rows, tenant: tenant, format: format), contentType: format.contentType),
                           tenant, engine, querier, format)
        }
        guard let aggregate = AllocationAggregate(rawValue: q["aggregate"] ?? "namespace") else {
            throw CostQueryError("aggregate: expected one of \(AllocationAggregate.allCases.map(\.rawValue).joined(separator: ", ")), got \(q["aggregate"]!)")
        }
        let (engine, querier) = try self.engine(tenant, calendar)
        let rows = try engine.allocation(from: first, to: last, aggregate: aggregate, cluster: q["cluster"], now: now)
        return flagged(HTTPAnswer(status: 200, body: CostReport.allocation(rows, tenant: tenant, aggregate: aggregate, format: format),
                                  contentType: format.contentType), tenant, engine, querier, format)
    }

    /// `GET /metroculus/v2/kubecost_cluster_costs?cloud_account_id=T&start_date=UNIX&end_date=UNIX`: the
    /// tenant's clusters summed, over the UTC days from the one holding `start_date` to the one
    /// holding the last second before `end_date`.
    private func metroculus(_ q: QueryString, sources: TenantSources, credential: Credential?, now: Int64) throws -> HTTPAnswer {
        guard let account = q["cloud_account_id"], !account.isEmpty else { throw CostQueryError("cloud_account_id is required") }
        var sources = sources
        sources.add("cloud_account_id", parameter: "cloud_account_id", of: q)
        sources.add("tenant parameter", parameter: "tenant", of: q)
        let tenant = try readableTenant(sources, credential)
        let seconds = Self.unixSecondsRange
        guard let startText = q["start_date"], let start = Int64(startText), let endText = q["end_date"], let end = Int64(endText) else {
            throw CostQueryError("start_date and end_date are required, as Unix seconds")
        }
        guard seconds.contains(start), seconds.contains(end) else {
            throw CostQueryError("start_date and end_date must be Unix seconds from \(seconds.lowerBound) to \(seconds.upperBound) (years 1 to 9999)")
        }
        guard start < end else { throw CostQueryError("start_date \(start) is not before end_date \(end)") }
        let first = CostCalendar.utc.day(containing: start * 1000), last = CostCalendar.utc.day(containing: end * 1000 - 1)
        _ = try CostOptions().days(from: first, to: last)
        let (engine, querier) = try engine(tenant, .utc)
        let rows = try engine.daily(from: first, to: last, now: now)
        let body = CostReport.metroculus(rows, account: account, start: start, end: end)
        return flagged(HTTPAnswer(status: 200, body: body, contentType: "application/json"), tenant, engine, querier, .json)
    }

    /// The tenant the request names, checked against its credential's read scope.
    private func readableTenant(_ sources: TenantSources, _ credential: Credential?) throws -> String {
        try sources.readableTenant(credential, default: configuration.defaultTenant).get()
    }

    /// Unix seconds of 0001-01-01 to 9999-12-31, the dates `YYYY-MM-DD` can name: inside it, day
    /// arithmetic in milliseconds cannot overflow.
    static let unixSecondsRange: ClosedRange<Int64> = -62_135_596_800 ... 253_402_300_799

    /// An answer computed with data left out (unreadable, or series without a label they are joined
    /// on) says so: `Tally-Warning` headers, and for JSON a top-level `warnings` list as Prometheus'
    /// API has, so a worker never takes a partial day for a whole one. The left-out series are also
    /// the tenant's `tally_cost_series_left_out`.
    private func flagged(_ answer: HTTPAnswer, _ tenant: String, _ engine: CostEngine, _ querier: SkippingQuerier,
                         _ format: CostReportFormat) -> HTTPAnswer {
        metrics.costSeriesLeftOut(tenant: tenant, count: engine.leftOut.count)
        let warnings = querier.warnings + engine.leftOut.warnings
        guard !warnings.isEmpty else { return answer }
        var flagged = answer
        for warning in warnings { flagged.headers.append(("Tally-Warning", warning)) }
        if format == .json, flagged.body.first == UInt8(ascii: "{") {
            let list = warnings.map(CostReport.quoted).joined(separator: ",")
            flagged.body = Array("{\"warnings\":[\(list)],".utf8) + flagged.body.dropFirst()
        }
        return flagged
    }

    /// The tenant's engine and the reader it reads through. A tenant that has never written is 404,
    /// in the shape of Prometheus' API errors, and no directory is made for it by asking.
    private func engine(_ tenant: String, _ calendar: CostCalendar) throws -> (CostEngine, SkippingQuerier) {
        let found: TenantDatabase?
        do {
            found = try registry.existingDatabase(for: tenant)
        } catch {
            if case let .io(failure) = error { throw HTTPAnswer.storageFailure(failure, "reading the tenant failed: \(error)\n", root: registry.root) }
            throw HTTPAnswer(status: 400, body: error.description + "\n")
        }
        guard let db = found else {
            let message = "unknown tenant \(tenant): it has never written to this server"
            throw HTTPAnswer(status: 404, body: "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\(CostReport.quoted(message))}\n",
                             contentType: "application/json")
        }
        let options = CostOptions()
        let store = rollups.withLock { stores in
            let key = tenant + " " + calendar.label
            if let store = stores[key] { return store }
            let store = CostRollupStore(tenantDirectory: registry.root + "/" + tenant, calendar: calendar, options: options)
            stores[key] = store
            return store
        }
        let querier = SkippingQuerier(db)
        return (CostEngine(querier: querier, options: options, rollups: store), querier)
    }

    private func day(_ q: QueryString, _ name: String, _ calendar: CostCalendar) throws -> CostDay {
        guard let text = q[name] else { throw CostQueryError("\(name) is required, as YYYY-MM-DD") }
        guard let day = CostDay(parsing: text, calendar: calendar) else { throw CostQueryError("\(name): expected a date YYYY-MM-DD, got \(text)") }
        return day
    }

    private func reportFormat(_ text: String?) throws -> CostReportFormat {
        guard let text else { return .json }
        guard let format = CostReportFormat(rawValue: text), format != .table else {
            throw CostQueryError("format: expected json, csv or focus, got \(text)")
        }
        return format
    }
}
