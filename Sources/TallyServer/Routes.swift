import NIOCore
import NIOHTTP1
import TallyQuery

/// One complete request as a route's middleware and handler see it.
struct RouteRequest {
    let head: HTTPRequestHead
    /// The URI without its query string.
    let path: String
    let body: ByteBuffer
    /// The body was over `--max-request-bytes` and was dropped.
    let bodyTooLarge: Bool
    /// The peer's address.
    let sender: SocketAddress?
    let eventLoop: EventLoop
    /// When the request's head came: request durations count from it.
    let arrived: NIODeadline
    /// The pattern of the route the path matched; nil for a path no route takes.
    let routePattern: String?
    /// The path segment a pattern's `:name` stood for, percent-decoded (`/api/v1/label/:name/values`),
    /// or as sent where it does not decode.
    let parameter: String?
    /// Set once the client is gone: a query asked by the request stops.
    let cancellation: QueryCancellation
    // What the route's middleware found out, for the steps after it and the handler:
    /// The credential proven (`Authentication`, `AdminAuthorisation`); nil when auth is off.
    var credential: Credential?
    /// The tenant named (`WriteTenant`, `ReadTenant`, `AdminTenant`).
    var tenant: String?
    /// Who calls an admin endpoint, for the audit log (`AdminAuthorisation`).
    var adminCaller: String?

    /// An answer that is ready now, on the request's event loop.
    func now(_ answer: HTTPAnswer) -> EventLoopFuture<HTTPAnswer> { eventLoop.makeSucceededFuture(answer) }

    /// The path of a request target: before the query string, and after the scheme and authority of
    /// the absolute form (`GET http://host/api/v1/query`, RFC 9112 3.2.2), which Go's server takes
    /// too; there an empty path is "" (which `PathCleaning` sends to `/`).
    static func path(of target: String) -> String {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        for scheme in ["http://", "https://"] where path.lowercased().hasPrefix(scheme) {
            let authorityAndPath = path.dropFirst(scheme.count)
            return authorityAndPath.firstIndex(of: "/").map { String(authorityAndPath[$0...]) } ?? ""
        }
        return String(path)
    }

    /// Every query and (for a form POST, PUT or PATCH) body parameter, percent-decoded.
    var form: QueryString { QueryString(uri: head.uri, method: head.method, formBody: body, contentType: head.headers.first(name: "Content-Type")) }
}

/// A path (or a pattern with one `:name` segment), the methods it takes, the middleware its requests
/// pass through in order, and what answers it.
struct Route: Sendable {
    let pattern: String
    /// nil takes every method.
    let methods: [HTTPMethod]?
    let middleware: [any HTTPMiddleware]
    let handle: @Sendable (Router, RouteRequest) -> EventLoopFuture<HTTPAnswer>

    init(_ pattern: String, _ methods: [HTTPMethod]? = nil, _ middleware: [any HTTPMiddleware] = [],
         _ handle: @escaping @Sendable (Router, RouteRequest) -> EventLoopFuture<HTTPAnswer>) {
        self.pattern = pattern
        self.methods = methods
        self.middleware = middleware
        self.handle = handle
    }

    /// The parameter segment when `path` matches a pattern with one, "" for an exact match, nil otherwise.
    fileprivate func match(_ path: String) -> String? {
        guard pattern.contains(":") else { return path == pattern ? "" : nil }
        let want = pattern.split(separator: "/", omittingEmptySubsequences: false)
        let have = path.split(separator: "/", omittingEmptySubsequences: false)
        guard want.count == have.count else { return nil }
        var parameter: String?
        for (expected, actual) in zip(want, have) {
            if expected.hasPrefix(":") {
                guard !actual.isEmpty else { return nil }
                // A segment that does not decode (a bad escape, or bytes that are not UTF-8) is
                // still this route's, kept as sent, for the handler to refuse as it refuses any bad value.
                parameter = QueryString.decodePath(actual) ?? String(actual)
            } else if expected != actual {
                return nil
            }
        }
        return parameter
    }
}

/// Path to handler, in the order given; a known path asked with another method gets 405 with `Allow`.
/// Every request, whatever its path, first passes through the table's own middleware.
struct RouteTable: Sendable {
    private let middleware: [any HTTPMiddleware]
    private let routes: [Route]
    private let exact: [String: Int]

    init(middleware: [any HTTPMiddleware], routes: [Route]) {
        self.middleware = middleware
        self.routes = routes
        var exact: [String: Int] = [:]
        for (index, route) in routes.enumerated() where !route.pattern.contains(":") { exact[route.pattern] = index }
        self.exact = exact
    }

    private func find(_ path: String) -> (route: Route, parameter: String)? {
        if let index = exact[path] { return (routes[index], "") }
        for route in routes where route.pattern.contains(":") {
            if let parameter = route.match(path) { return (route, parameter) }
        }
        return nil
    }

    func answer(_ router: Router, _ head: HTTPRequestHead, path: String, body: ByteBuffer, bodyTooLarge: Bool, from sender: SocketAddress?,
                arrived: NIODeadline, cancellation: QueryCancellation, on eventLoop: EventLoop) -> EventLoopFuture<HTTPAnswer> {
        let found = find(path)
        let request = RouteRequest(head: head, path: path, body: body, bodyTooLarge: bodyTooLarge, sender: sender, eventLoop: eventLoop,
                                   arrived: arrived, routePattern: found?.route.pattern,
                                   parameter: found.flatMap { $0.parameter.isEmpty ? nil : $0.parameter }, cancellation: cancellation)
        return middleware[...].run(request) { request in
            guard let route = found?.route else { return request.now(HTTPAnswer(status: 404, body: "not found: \(path)\n")) }
            if let methods = route.methods, !methods.contains(head.method) {
                // A read route's OPTIONS is a browser's CORS preflight, not a method to use instead.
                let names = methods.filter { $0 != .OPTIONS }.map(\.rawValue)
                var refusal = HTTPAnswer(status: 405, body: "use \(names.joined(separator: " or ")) for \(path)\n")
                refusal.headers.append(("Allow", names.joined(separator: ", ")))
                return request.now(refusal)
            }
            return route.middleware[...].run(request) { route.handle(router, $0) }
        }
    }
}
