import NIOCore

/// A step a request takes on its way to a route's handler: it answers the request itself (a
/// refusal), or passes it on to `next`, perhaps with something attached for the steps after it (the
/// credential, the tenant), and may watch the answer come back. Every chain is declared with the
/// routes, in `Router.routeTable`.
protocol HTTPMiddleware: Sendable {
    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer>
}

extension ArraySlice where Element == any HTTPMiddleware {
    /// The request through each middleware in order, then to `handler`.
    func run(_ request: RouteRequest, then handler: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        guard let first else { return handler(request) }
        return first.handle(request) { dropFirst().run($0, then: handler) }
    }
}
