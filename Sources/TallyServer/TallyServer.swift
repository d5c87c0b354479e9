import Dispatch
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import TallyStorage

/// The Tally server as a lifecycle service: binds, replays every tenant's WAL while answering 503,
/// turns ready, and on SIGTERM/SIGINT stops accepting, drains in-flight writes and closes the WALs.
public final class TallyServer: Service, Sendable {
    public let configuration: ServerConfiguration
    let logger: Logger
    let metrics = ServerMetrics()
    private let boundAddress = Mutex<String?>(nil)

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// `host:port` actually bound (useful with port 0), once listening.
    public var listeningAddress: String? { boundAddress.withLock { $0 } }

    public func run() async throws {
        let metrics = self.metrics
        let logger = self.logger
        let maintenance = MaintenanceRecorder(metrics: metrics, logger: logger)
        // One event a line, its particulars as fields.
        let log: @Sendable (StorageEvent) -> Void = { event in
            logger.log(level: event.isProblem ? .warning : .info, "\(event.message)", metadata: event.fields.mapValues { .string($0) })
        }
        let descriptorLimit = WALFileBudget.processDescriptorLimit
        let walFileBudget = WALFileBudget(limit: configuration.maxOpenTenants ?? WALFileBudget.limit(forDescriptorLimit: descriptorLimit),
                                          openFilesChanged: { metrics.openWALFiles.set(Int64($0)) },
                                          closedForBudget: { metrics.walFilesClosedForBudget.increment() })
        logger.info("descriptor budget", metadata: ["max_open_tenants": "\(walFileBudget.limit)", "rlimit_nofile": "\(descriptorLimit)"])
        let options = StorageOptions(syncPolicy: configuration.syncPolicy, walSegmentSize: configuration.walSegmentSize,
                                     blockRange: configuration.blockRange,
                                     outOfOrderWindow: configuration.outOfOrderWindow,
                                     outOfOrderMaxBytes: configuration.outOfOrderMaxBytes,
                                     observeSync: { metrics.walFsync.record($0) },
                                     walFileBudget: walFileBudget,
                                     report: { log($0) },
                                     observeCut: { maintenance.blockCut($0) })
        let limits = try LimitsStore(base: configuration.limits, path: configuration.limitsConfigFile)
        let authenticator = try configuration.authConfigFile.map { try Authenticator(path: $0) }
        let tls = try configuration.tls.map { try $0.serverContext() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        if configuration.port != 0 {
            // A taken address fails the start before the storage root and its files are created.
            try ListenAddressProbe.check(host: configuration.host, port: configuration.port)
        }
        let registry = try TenantRegistry(root: configuration.storageRoot, options: options, maxTenants: configuration.maxTenants)
        let rootLock = try StorageRootLock(root: configuration.storageRoot)
        let admin = try AdminAccess.create(storageRoot: configuration.storageRoot, enabledForNetwork: configuration.enableAdminAPI)
        let threadPool = NIOThreadPool(numberOfThreads: System.coreCount)
        threadPool.start()
        // Queries get threads of their own: however many run, writes keep theirs.
        let queryPool = NIOThreadPool(numberOfThreads: configuration.queryMaxConcurrency)
        queryPool.start()
        // A query's parameter and parse errors, `buildinfo` and `format_query` read no data: they
        // are answered at once, not behind queries that run.
        let queryCheckPool = NIOThreadPool(numberOfThreads: 2)
        queryCheckPool.start()
        // Replay, block scans, compaction and retention read and write files for seconds at a time: a
        // thread of their own, so they never hold one of Swift's cooperative threads (as many as
        // cores) and never take a write's thread.
        let maintenancePool = NIOThreadPool(numberOfThreads: 1)
        maintenancePool.start()
        let ingester = RemoteWriteIngester(configuration: configuration, registry: registry, metrics: metrics, limits: limits)
        let router = Router(configuration: configuration, ingester: ingester,
                            costs: CostAPI(configuration: configuration, registry: registry, metrics: metrics),
                            queries: QueryAPI(registry: registry, exemplars: ingester.exemplars, metadata: ingester.metadata, options: configuration.queryOptions,
                                              maxDecodedBytes: configuration.maxDecodedBytes, pool: queryPool,
                                              checkPool: queryCheckPool),
                            metrics: metrics, admin: admin, authenticator: authenticator, logger: logger, threadPool: threadPool)
        let connectionLimits = ConnectionLimits(configuration: configuration, metrics: metrics)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A remote-write body is about 100 KiB: read in one piece rather than NIO's default of
            // at most 64 KiB a read, each read going through the whole pipeline. The buffer adapts
            // to what the connection sends, so a small request still takes a small one.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024))
            // A client that shuts down its sending side after a request still reads the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(logger: logger)) }
            }
            .childChannelInitializer { channel in
                // A refused connection is closed by NIO without being registered.
                guard connectionLimits.admitConnection() else { return channel.eventLoop.makeFailedFuture(ConnectionRefusal.maxConnections) }
                channel.closeFuture.whenComplete { _ in connectionLimits.connectionClosed() }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(RawConnectionHandler())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(ProtocolErrorAnswer())
                    try ResponseCompression.add(to: channel.pipeline.syncOperations)
                    try channel.pipeline.syncOperations.addHandler(HTTPConnectionHandler(router: router, limits: connectionLimits))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        let boundPort = channel.localAddress?.port ?? configuration.port
        let address = "\(configuration.host):\(boundPort)"
        let announcement = ServerAnnouncement(host: ServerAnnouncement.connectableHost(boundTo: configuration.host), port: boundPort,
                                              pid: getpid(), storage: admin.storage, tls: tls != nil)
        do { try announcement.publish(in: configuration.storageRoot) } catch {
            logger.error("could not publish the server's address in the storage; tally compact, retention and delete-series cannot reach this server",
                         metadata: ["error": "\(error)"])
        }
        boundAddress.withLock { $0 = address }
        logger.info("listening", metadata: ["address": "\(address)", "storage": "\(configuration.storageRoot)"])
        if authenticator == nil && !Self.isLoopback(configuration.host) {
            logger.warning("listening beyond loopback without authentication: anyone who reaches \(address) can write and read every tenant; see docs/security.md")
        }
        // SIGHUP reloads the limits and auth files at once (they are also re-read when they change).
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangup.setEventHandler {
            for line in [limits.reload(force: true), authenticator?.reload(force: true)].compactMap({ $0 }) { logger.notice("\(line)") }
        }
        hangup.resume()
        defer { hangup.cancel() }

        // The block scan, compaction and retention, once the WALs are replayed.
        var background: Task<Void, Never>?
        do {
            try await maintenancePool.runIfActive { Self.holdReplayForTest(); return try registry.openExisting { db in
                let r = db.replay
                logger.info("replayed WAL", metadata: [
                    "tenant": "\(db.tenant)", "segments": "\(r.segments)", "series": "\(r.series)",
                    "samples": "\(r.samples)", "head_chunks": "\(r.headChunks)", "duration": "\(r.duration)"])
                for problem in r.problems { logger.warning("WAL repair", metadata: ["tenant": "\(db.tenant)", "problem": "\(problem)"]) }
                if r.orphanSamples > 0 {
                    logger.warning("samples without a series record", metadata: ["tenant": "\(db.tenant)", "count": "\(r.orphanSamples)"])
                }
            } }
            router.state.phase.store(.ready, ordering: .releasing)
            logger.info("ready")
            // Imports and other writers of the storage root show up within a scan interval.
            var services = [ServiceGroupConfiguration.ServiceConfiguration(service: BackgroundMaintenance(
                interval: configuration.blockScanInterval, pool: maintenancePool) {
                    registry.scan(log)
                    for line in [limits.reload(), authenticator?.reload()].compactMap({ $0 }) { logger.notice("\(line)") }
                })]
            // Retention still runs (every 5 minutes) when background compaction is turned off.
            if let interval = configuration.compactionInterval ?? (configuration.retention == nil ? nil : .seconds(300)) {
                let (retention, compacts) = (configuration.retention, configuration.compactionInterval != nil)
                services.append(.init(service: BackgroundMaintenance(interval: interval, pool: maintenancePool) {
                    // Failures are counted and logged by `maintenance`; the next round tries again.
                    for db in registry.openDatabases {
                        if let keep = retention { _ = try? maintenance.applyRetention(db, keep: keep, .background) }
                        if compacts { _ = try? maintenance.compact(db, .background) }
                    }
                }))
            }
            let backgroundGroup = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
            background = Task { try? await backgroundGroup.run() }
            try? await gracefulShutdown()
            await backgroundGroup.triggerGracefulShutdown()
        } catch {
            logger.error("startup failed", metadata: ["error": "\(error)"])
            await stop(channel: channel, router: router, registry: registry, group: group, background: nil,
                       threadPools: [threadPool, queryPool, queryCheckPool, maintenancePool])
            announcement.withdraw(from: configuration.storageRoot)
            throw error
        }
        logger.info("shutting down: no new writes; draining")
        await stop(channel: channel, router: router, registry: registry, group: group, background: background,
                   threadPools: [threadPool, queryPool, queryCheckPool, maintenancePool])
        announcement.withdraw(from: configuration.storageRoot)
        withExtendedLifetime(rootLock) {}
        logger.info("stopped")
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Stops accepting, drains in-flight requests, waits for a background round in progress (told
    /// to stop already), then closes the tenants and the threads.
    private func stop(channel: Channel, router: Router, registry: TenantRegistry, group: MultiThreadedEventLoopGroup,
                      background: Task<Void, Never>?, threadPools: [NIOThreadPool]) async {
        router.state.phase.store(.draining, ordering: .releasing)
        try? await channel.close()
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.drainTimeout
        while router.state.inFlight.load(ordering: .relaxed) > 0 && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let left = router.state.inFlight.load(ordering: .relaxed)
        if left > 0 { logger.warning("drain timed out", metadata: ["in_flight": "\(left)"]) }
        await background?.value
        for problem in registry.closeAll() { logger.error("closing WAL failed", metadata: ["problem": "\(problem)"]) }
        for pool in threadPools { try? await pool.shutdownGracefully() }
        try? await group.shutdownGracefully()
    }

    /// `TALLY_TEST_HOLD_REPLAY=<path>`: the WAL replay waits while that file exists (at most 60 s),
    /// so a test can see the server answer before it is ready. Unset, as in production, nothing waits.
    private static func holdReplayForTest() {
        guard let path = getenv("TALLY_TEST_HOLD_REPLAY").map({ String(cString: $0) }), !path.isEmpty else { return }
        for _ in 0..<60_000 where access(path, F_OK) == 0 { usleep(1_000) }
    }
}
