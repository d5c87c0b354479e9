import NIOCore
import NIOHTTP1
import TallyStorage

/// Which web origins may read the query and cost API from a browser, and the CORS headers that say
/// so, as Prometheus' `--web.cors.origin` sets them: a request with an `Origin` gets the
/// `Access-Control-*` headers, and `Access-Control-Allow-Origin` only when the fully anchored regex
/// matches that origin (`*` when the regex is `.*`). The tenant headers are allowed besides
/// Prometheus' list, so that a page can name its tenant.
struct CrossOriginPolicy: Sendable {
    private let pattern: String
    private let regex: LinearRegex
    private let allowedHeaders: String

    init?(pattern: String, tenantHeaders: [String]) {
        guard let regex = LinearRegex(pattern) else { return nil }
        self.pattern = pattern
        self.regex = regex
        allowedHeaders = (["Accept", "Authorization", "Content-Type", "Origin"] + tenantHeaders).joined(separator: ", ")
    }

    /// The headers an answer to a request from `origin` carries, for a route taking `methods`.
    func headers(origin: String, methods: [HTTPMethod]) -> [(String, String)] {
        var headers = [("Access-Control-Allow-Headers", allowedHeaders),
                       ("Access-Control-Allow-Methods", methods.map(\.rawValue).joined(separator: ", ")),
                       ("Access-Control-Expose-Headers", "Date"),
                       ("Vary", "Origin")]
        if pattern == ".*" {
            headers.append(("Access-Control-Allow-Origin", "*"))
        } else if regex.matches(origin) {
            headers.append(("Access-Control-Allow-Origin", origin))
        }
        return headers
    }
}

/// CORS on a read route: the answer to a request with an `Origin`, refusals included, carries the
/// policy's headers, and a preflight (`OPTIONS`) is answered 204 here, before readiness and
/// authentication, because browsers send no credential with it. Writes and admin calls never pass
/// through it: a page of another origin may read, never change, what the server holds
/// (`CrossOriginRefusal`).
struct CrossOriginReads: HTTPMiddleware {
    let policy: CrossOriginPolicy
    /// The route's methods, `OPTIONS` among them.
    let methods: [HTTPMethod]

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let headers = request.head.headers.first(name: "Origin").map { policy.headers(origin: $0, methods: methods) } ?? []
        if request.head.method == .OPTIONS {
            var answer = HTTPAnswer(status: 204, body: "")
            answer.headers = headers
            return request.now(answer)
        }
        guard !headers.isEmpty else { return next(request) }
        return next(request).map { answer in
            var answer = answer
            answer.headers += headers
            return answer
        }
    }
}
