#if canImport(Glibc)
import Glibc
#endif

/// The tenant lock: a plain (non-priority-inheriting) pthread mutex.
///
/// `Synchronization.Mutex` takes a priority-inheriting futex on Linux, whose contended path is the
/// kernel's rt_mutex, which spins while the owner runs. An append batch holds this lock for hundreds
/// of microseconds, so two request threads of one tenant burned 12-17% of the server's CPU spinning
/// there (perf, `make bench`). A plain mutex puts the waiter to sleep instead.
final class TenantLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() {
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` holding the lock; the `inout Void` keeps the call sites of `Mutex<Void>`.
    func withLock<R, E: Error>(_ body: (inout Void) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var nothing: Void = ()
        return try body(&nothing)
    }
}
