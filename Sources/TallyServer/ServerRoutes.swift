import Logging
import NIOHTTP1

extension Router {
    /// Every path the server answers, with its methods, and the middleware every request passes
    /// through: first the table's (every request, unknown paths and refused methods included), then
    /// the route's, in the order listed, then the handler.
    static func routeTable(configuration: ServerConfiguration, state: ServerState, metrics: ServerMetrics, authenticator: Authenticator?,
                           admin: AdminAccess, logger: Logger) -> RouteTable {
        let ready = Readiness(state: state)
        let inFlight = InFlightCount(state: state)
        let bodyLimit = BodyLimit(maxRequestBytes: configuration.maxRequestBytes, refusals: nil)
        let authentication = Authentication(authenticator: authenticator, refusals: nil)
        // Writes count each refusal by reason. A cross-origin or oversized write is refused the same
        // whether or not the server is ready.
        let write: [any HTTPMiddleware] = [
            CrossOriginRefusal(refusals: metrics),
            BodyLimit(maxRequestBytes: configuration.maxRequestBytes, refusals: metrics),
            ready,
            Authentication(authenticator: authenticator, refusals: metrics),
            WriteTenant(configuration: configuration, metrics: metrics, logger: logger),
            inFlight,
        ]
        // Reads a browser page of an allowed origin may make: their preflight is answered before
        // readiness and authentication. A pattern that does not compile allows no origin.
        let crossOrigin = CrossOriginPolicy(pattern: configuration.corsOrigin, tenantHeaders: configuration.tenantHeaders)
        /// A read route's methods, with OPTIONS for the preflight when pages of other origins may read.
        func readMethods(_ methods: [HTTPMethod]) -> [HTTPMethod] { crossOrigin == nil ? methods : methods + [.OPTIONS] }
        func crossOriginReads(_ methods: [HTTPMethod]) -> [any HTTPMiddleware] {
            crossOrigin.map { [CrossOriginReads(policy: $0, methods: readMethods(methods))] } ?? []
        }
        let costs: [any HTTPMiddleware] = crossOriginReads([.GET]) + [ready, authentication]
        // The caller is settled before readiness, so a refused call is in the audit log even while starting.
        let maintenance: [any HTTPMiddleware] = [
            AdminStorageNaming(admin: admin),
            CrossOriginRefusal(refusals: nil),
            AdminAuthorisation(admin: admin, authenticator: authenticator, logger: logger),
            ready,
            AdminTenant(tenantHeaders: configuration.tenantHeaders),
        ]
        func query(_ endpoint: QueryAPI.Endpoint, _ methods: [HTTPMethod]) -> [any HTTPMiddleware] {
            crossOriginReads(methods) + [ready, bodyLimit, authentication] + (endpoint.readsTenant ? [ReadTenant(configuration: configuration)] : []) + [inFlight]
        }
        return RouteTable(
            middleware: [RequestMetrics(metrics: metrics), RequestLog(logger: logger), HostHeaderRefusal(), TransferCodingRefusal(), PathCleaning()],
            routes: [Route("/api/v1/write", [.POST], write) { $0.write($1) }]
                + CostAPI.paths.map { Route($0, readMethods([.GET]), costs) { $0.costs($1) } }
                + [Route("/api/v1/admin/compact", [.POST], maintenance) { $0.maintain($1) },
                   Route("/api/v1/admin/retention", [.POST], maintenance) { $0.maintain($1) },
                   Route(deleteSeriesPath, [.POST, .PUT], maintenance) { $0.maintain($1) },
                   Route(cleanTombstonesPath, [.POST, .PUT], maintenance) { $0.maintain($1) },
                   Route(snapshotPath, [.POST, .PUT], maintenance) { $0.maintain($1) },
                   // GET and HEAD, as Prometheus' own: another method is a client's mistake (405).
                   Route("/metrics", [.GET, .HEAD]) { $0.metricsPage($1) },
                   Route("/-/healthy", [.GET, .HEAD]) { $1.now(HTTPAnswer(status: 200, body: "Tally is Healthy.\n")) },
                   Route("/-/ready", [.GET, .HEAD]) { router, request in
                       let ready = router.state.isReady
                       return request.now(HTTPAnswer(status: ready ? 200 : 503, body: ready ? "Tally is Ready.\n" : "Tally is not ready.\n"))
                   }]
                + QueryAPI.endpoints.map { path, methods, endpoint in
                    Route(path, readMethods(methods), query(endpoint, methods)) { $0.query(endpoint, $1) }
                })
    }
}
