import Logging
import NIOCore
import TallyStorage

/// The credential the request's `Authorization` proves, attached for the steps after it; nil when
/// auth is off (no `--auth.config-file`); 401 when it is on and none is proven.
struct Authentication: HTTPMiddleware {
    let authenticator: Authenticator?
    /// Where a refusal is counted, for writes; nil counts none.
    let refusals: ServerMetrics?

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        switch Authenticator.credential(for: request.head, authenticator) {
        case let .success(credential):
            var request = request
            request.credential = credential
            return next(request)
        case let .failure(refusal):
            refusals?.rejected(refusal.status == 401 ? .unauthorized : .forbidden)
            return request.now(refusal)
        }
    }
}

/// Who may call an admin endpoint (`AdminAccess`): the storage owner's token, or from the network
/// with `--web.enable-admin-api` a credential when auth is on. Attaches the caller, for the audit
/// log, and the credential; a refusal is logged.
struct AdminAuthorisation: HTTPMiddleware {
    let admin: AdminAccess
    let authenticator: Authenticator?
    let logger: Logger

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        var request = request
        switch admin.authorise(request.head) {
        case let .success(caller): request.adminCaller = caller
        case let .failure(refusal): return refuse(request, refusal)
        }
        // The token proves the storage's owner; only a network caller needs a credential too.
        if request.head.headers.first(name: AdminAccess.tokenHeader) == nil {
            switch Authenticator.credential(for: request.head, authenticator) {
            case let .success(found):
                request.credential = found
                if let found { request.adminCaller = "credential \(GoFormat.quote(found.name))" }
            case let .failure(refusal): return refuse(request, refusal)
            }
        }
        return next(request)
    }

    private func refuse(_ request: RouteRequest, _ refusal: HTTPAnswer) -> EventLoopFuture<HTTPAnswer> {
        logger.warning("admin call refused", metadata: ["path": "\(request.path)", "status": "\(refusal.status)"])
        return request.now(refusal)
    }
}

/// Names this server's storage in every answer of an admin endpoint to a caller that presented a
/// token (`AdminAccess.naming`), refusals included.
struct AdminStorageNaming: HTTPMiddleware {
    let admin: AdminAccess

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let admin = self.admin
        return next(request).map { admin.naming($0, for: request.head) }
    }
}
