import Logging
import NIOCore

/// `tally_http_requests_total` and `tally_http_request_duration_seconds` for every answered request,
/// labelled with the route's pattern ("other" for a path no route takes, so the label's values stay
/// a fixed set) and the status; the duration counts from the request's head.
struct RequestMetrics: HTTPMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let metrics = self.metrics
        let handler = request.routePattern ?? "other"
        return next(request).map { answer in
            metrics.request(handler: handler, code: answer.status, duration: .nanoseconds((NIODeadline.now() - request.arrived).nanoseconds))
            return answer
        }
    }
}

/// A debug line per answered request (`--log-level debug`); at other levels it costs one comparison.
struct RequestLog: HTTPMiddleware {
    let logger: Logger

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        guard logger.logLevel <= .debug else { return next(request) }
        let logger = self.logger
        let answer = next(request)
        answer.whenSuccess { answer in
            logger.debug("request", metadata: [
                "method": "\(request.head.method)", "path": "\(request.path)", "handler": "\(request.routePattern ?? "other")",
                "status": "\(answer.status)", "duration_ms": "\((NIODeadline.now() - request.arrived).nanoseconds / 1_000_000)",
            ])
        }
        return answer
    }
}
