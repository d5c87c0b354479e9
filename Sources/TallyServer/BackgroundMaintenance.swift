import NIOPosix
import ServiceLifecycle

/// Work the server repeats in the background (the block scan; compaction and retention), as a
/// lifecycle service: every `interval` it runs `work` on the maintenance pool, a thread of its own
/// that file I/O may hold for seconds without taking one of Swift's cooperative threads or a
/// write's thread.
///
/// At graceful shutdown a wait for the next round ends at once. A round already on the pool is
/// not cut short: the service returns once it is done, and the server waits for that only after it
/// has drained its writes and before it closes the tenants.
struct BackgroundMaintenance: Service {
    let interval: Duration
    let pool: NIOThreadPool
    let work: @Sendable () -> Void

    func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let interval = self.interval
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            try? await pool.runIfActive(work)
        }
    }
}
