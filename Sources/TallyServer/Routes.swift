import NIOCore
import NIOHTTP1

/// One complete request as a route's handler sees it.
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
    /// The path segment a pattern's `:name` stood for, percent-decoded (`/api/v1/label/:name/values`).
    let parameter: String?

    /// An answer that is ready now, on the request's event loop.
    func now(_ answer: HTTPAnswer) -> EventLoopFuture<HTTPAnswer> { eventLoop.makeSucceededFuture(answer) }

    /// Every query and (for a form POST) body parameter, percent-decoded.
    var form: QueryString { QueryString(uri: head.uri, formBody: body, contentType: head.headers.first(name: "Content-Type")) }
}

/// A path (or a pattern with one `:name` segment), the methods it takes, and what answers it.
struct Route: Sendable {
    let pattern: String
    /// nil takes every method.
    let methods: [HTTPMethod]?
    let handle: @Sendable (Router, RouteRequest) -> EventLoopFuture<HTTPAnswer>

    init(_ pattern: String, _ methods: [HTTPMethod]? = nil, _ handle: @escaping @Sendable (Router, RouteRequest) -> EventLoopFuture<HTTPAnswer>) {
        self.pattern = pattern
        self.methods = methods
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
                guard !actual.isEmpty, let decoded = QueryString.decodePath(actual) else { return nil }
                parameter = decoded
            } else if expected != actual {
                return nil
            }
        }
        return parameter
    }
}

/// Path to handler, in the order given; a known path asked with another method gets 405 with `Allow`.
struct RouteTable: Sendable {
    private let routes: [Route]
    private let exact: [String: Int]

    init(_ routes: [Route]) {
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
                on eventLoop: EventLoop) -> EventLoopFuture<HTTPAnswer> {
        guard let (route, parameter) = find(path) else {
            return eventLoop.makeSucceededFuture(HTTPAnswer(status: 404, body: "not found: \(path)\n"))
        }
        if let methods = route.methods, !methods.contains(head.method) {
            let names = methods.map(\.rawValue)
            var refusal = HTTPAnswer(status: 405, body: "use \(names.joined(separator: " or ")) for \(path)\n")
            refusal.headers.append(("Allow", names.joined(separator: ", ")))
            return eventLoop.makeSucceededFuture(refusal)
        }
        let request = RouteRequest(head: head, path: path, body: body, bodyTooLarge: bodyTooLarge, sender: sender, eventLoop: eventLoop,
                                   parameter: parameter.isEmpty ? nil : parameter)
        return route.handle(router, request)
    }

    /// The handler label for the request metrics: the route's pattern, or "other" for unknown paths,
    /// so the label's values stay a fixed set.
    func handlerName(_ uri: String) -> String {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        return find(path)?.route.pattern ?? "other"
    }
}
