import NIOPosix
import Synchronization

/// Runs each tenant's ingest work one piece at a time on the shared thread pool, in arrival order.
/// A tenant's second request waits in its own queue instead of taking a pool thread to wait on the
/// tenant lock, so one tenant sending many expensive requests holds at most one thread, and every
/// other tenant's next request is queued behind at most one piece of work per busy tenant.
final class TenantScheduler: Sendable {
    typealias Work = @Sendable (NIOThreadPool.WorkItemState) -> Void

    private struct Queue {
        var running = false
        var waiting: [Work] = []
        var head = 0
    }

    private let pool: NIOThreadPool
    private let queues = Mutex<[String: Queue]>([:])

    init(pool: NIOThreadPool) { self.pool = pool }

    func submit(tenant: String, _ work: @escaping Work) {
        let runNow = queues.withLock { all -> Bool in
            var queue = all[tenant] ?? Queue()
            defer { all[tenant] = queue }
            if queue.running {
                queue.waiting.append(work)
                return false
            }
            queue.running = true
            return true
        }
        if runNow { run(tenant, work) }
    }

    private func run(_ tenant: String, _ work: @escaping Work) {
        pool.submit { state in
            work(state)
            if let next = self.next(tenant) { self.run(tenant, next) }
        }
    }

    /// The tenant's next piece of work, or nil after marking it idle (its queue is then dropped).
    private func next(_ tenant: String) -> Work? {
        queues.withLock { all -> Work? in
            guard var queue = all[tenant] else { return nil }
            guard queue.head < queue.waiting.count else {
                all[tenant] = nil
                return nil
            }
            let work = queue.waiting[queue.head]
            queue.head += 1
            if queue.head == queue.waiting.count {
                queue.waiting.removeAll(keepingCapacity: true)
                queue.head = 0
            }
            all[tenant] = queue
            return work
        }
    }
}
