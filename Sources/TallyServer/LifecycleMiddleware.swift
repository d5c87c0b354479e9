import NIOCore

/// 503 until the server is ready (WAL replay) and once it drains, for the routes that read or write
/// tenants.
struct Readiness: HTTPMiddleware {
    static let notReady = HTTPAnswer(status: 503, body: "not ready: starting or shutting down\n")
    let state: ServerState

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        state.isReady ? next(request) : request.now(Self.notReady)
    }
}

/// Counts writes and queries being worked on, until their answer: shutdown waits for the count to
/// reach 0 before it closes the tenants.
struct InFlightCount: HTTPMiddleware {
    let state: ServerState

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let state = self.state
        state.inFlight.wrappingAdd(1, ordering: .relaxed)
        let answer = next(request)
        answer.whenComplete { _ in state.inFlight.wrappingSubtract(1, ordering: .relaxed) }
        return answer
    }
}
