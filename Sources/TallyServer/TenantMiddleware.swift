import Foundation
import Logging
import NIOCore
import TallyStorage

/// The tenant a write is for, attached for the handler: every configured header and the raw
/// `?tenant=` must agree (400, `TenantSources`); none means the credential's only tenant, else
/// `--default-tenant`; the credential must have the write scope for it (403). Refusals are counted
/// as writes refused; a stored write that named no tenant is counted, and logged once per sender.
struct WriteTenant: HTTPMiddleware {
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    private let tenantlessSenders = TenantlessSenders()

    init(configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        var sources = TenantSources(request.head, headers: configuration.tenantHeaders)
        sources.add("tenant parameter", parameter: "tenant", of: QueryString(uri: request.head.uri))
        let tenant: String
        switch sources.resolve(default: request.credential?.onlyTenant ?? configuration.defaultTenant) {
        case let .success(name): tenant = name
        case let .failure(refusal):
            metrics.rejected(.invalidTenant)
            return request.now(refusal)
        }
        if let refusal = accessRefusal(request.credential, .write, tenant: tenant) {
            metrics.rejected(.forbidden)
            return request.now(refusal)
        }
        var request = request
        request.tenant = tenant
        guard sources.named.isEmpty && request.credential?.onlyTenant == nil else { return next(request) }
        // Noted once the write is stored: one refused went nowhere, and the log says "stored".
        let sender = request.sender
        return next(request).map { answer in
            if (200..<300).contains(answer.status) { notedTenantless(from: sender, tenant: tenant) }
            return answer
        }
    }

    private func notedTenantless(from sender: SocketAddress?, tenant: String) {
        metrics.writesWithoutTenant.increment()
        let address = sender?.ipAddress ?? "unknown"
        switch tenantlessSenders.note(address) {
        case .new:
            logger.notice("a write named no tenant and was stored under --default-tenant; senders name theirs with a tenant header or ?tenant=",
                          metadata: ["tenant": "\(tenant)", "sender": "\(address)"])
        case .full:
            logger.notice("more senders wrote without naming a tenant than are remembered; further ones are counted in tally_writes_without_tenant_total, not logged",
                          metadata: ["remembered": "\(TenantlessSenders.capacity)"])
        case .known, .unremembered:
            break
        }
    }
}

/// The tenant a query reads, attached for the handler: the headers and the `tenant` form parameter
/// must agree; none means the credential's only tenant, else `--default-tenant`; the credential must
/// have the read scope for it. Disagreeing sources are the client's mistake, said the way Prometheus'
/// clients read it (`bad_data`).
struct ReadTenant: HTTPMiddleware {
    let configuration: ServerConfiguration

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        var sources = TenantSources(request.head, headers: configuration.tenantHeaders)
        sources.add("tenant parameter", parameter: "tenant", of: request.form)
        switch sources.readableTenant(request.credential, default: configuration.defaultTenant) {
        case let .success(name):
            var request = request
            request.tenant = name
            return next(request)
        case let .failure(refusal):
            guard refusal.status == 400 else { return request.now(refusal) }
            let message = String(decoding: refusal.body, as: UTF8.self).trimmingCharacters(in: .newlines)
            return request.now(PrometheusJSON.failure(PrometheusAPIError(.badData, message)))
        }
    }
}

/// The tenant an admin call names, if any (nil: every open tenant, or for deletion the default
/// one), attached for the handler, which checks the credential's admin scope for it.
struct AdminTenant: HTTPMiddleware {
    let tenantHeaders: [String]

    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        var sources = TenantSources(request.head, headers: tenantHeaders)
        sources.add("tenant parameter", parameter: "tenant", of: request.form)
        switch sources.resolve(default: "") {
        case let .success(name):
            var request = request
            request.tenant = name.isEmpty ? nil : name
            return next(request)
        case let .failure(refusal):
            return request.now(refusal)
        }
    }
}
