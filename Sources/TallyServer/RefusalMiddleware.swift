import NIOCore

/// 403 for a state-changing request from a web page of another origin (`AdminAccess.crossOriginRefusal`).
struct CrossOriginRefusal: HTTPMiddleware {
    /// Where a refusal is counted (`tally_write_requests_rejected_total`), for writes; nil counts none.
    let refusals: ServerMetrics?

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        guard let refusal = AdminAccess.crossOriginRefusal(request.head) else { return next(request) }
        refusals?.rejected(.forbidden)
        return request.now(refusal)
    }
}

/// 413 for a request whose body was over `--max-request-bytes` (the connection dropped its bytes).
struct BodyLimit: HTTPMiddleware {
    let maxRequestBytes: Int
    /// Where a refusal is counted, for writes; nil counts none.
    let refusals: ServerMetrics?

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        guard request.bodyTooLarge else { return next(request) }
        refusals?.rejected(.bodyTooLarge)
        return request.now(HTTPAnswer(status: 413, body: "request body over the limit of \(maxRequestBytes) bytes\n"))
    }
}

/// 501 for a request sent with a transfer coding other than `chunked` (RFC 9112: one a server does
/// not understand): its body arrives still coded, and would otherwise be read as if it were not.
struct TransferCodingRefusal: HTTPMiddleware {
    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let codings = request.head.headers["Transfer-Encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: " \t").lowercased() }
        guard let unknown = codings.first(where: { $0 != "chunked" }) else { return next(request) }
        return request.now(HTTPAnswer(status: 501, body: "unsupported Transfer-Encoding \(unknown): send the body as it is, or chunked\n"))
    }
}

/// 400 for an HTTP/1.1 request without exactly one `Host` header (RFC 9112 3.2), as Go's server
/// answers it: a request that names no host, or two, is not one a client meant.
struct HostHeaderRefusal: HTTPMiddleware {
    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let hosts = request.head.headers["Host"].count
        guard request.head.version == .http1_1, hosts != 1 else { return next(request) }
        return request.now(HTTPAnswer(status: 400, body: hosts == 0 ? "missing required Host header\n" : "too many Host headers\n"))
    }
}
