import NIOPosix
import Synchronization

/// Runs each tenant's ingest work on the shared thread pool, in arrival order, at most
/// `perTenant` pieces at once: all threads but one, and at least one. A tenant's further requests
/// wait in its own queue instead of taking pool threads to wait on the tenant lock, so however many
/// expensive requests one tenant sends, a thread stays free for every other tenant's next request.
final class TenantScheduler: Sendable {
    typealias Work = @Sendable (NIOThreadPool.WorkItemState) -> Void

    private struct Queue {
        var running = 0
        var waiting: [Work] = []
        var head = 0
    }

    private let pool: NIOThreadPool
    private let perTenant: Int
    private let queues = Mutex<[String: Queue]>([:])

    init(pool: NIOThreadPool, threads: Int) {
        self.pool = pool
        perTenant = max(1, threads - 1)
    }

    func submit(tenant: String, _ work: @escaping Work) {
        let runNow = queues.withLock { all -> Bool in
            var queue = all[tenant] ?? Queue()
            defer { all[tenant] = queue }
            if queue.running >= perTenant {
                queue.waiting.append(work)
                return false
            }
            queue.running += 1
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

    /// The tenant's next piece of work, or nil after giving its slot back (an idle tenant's queue is dropped).
    private func next(_ tenant: String) -> Work? {
        queues.withLock { all -> Work? in
            guard var queue = all[tenant] else { return nil }
            guard queue.head < queue.waiting.count else {
                queue.running -= 1
                all[tenant] = queue.running == 0 ? nil : queue
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
