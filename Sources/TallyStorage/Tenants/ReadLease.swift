#if canImport(Glibc)
import Glibc
#endif

/// Lets processes that read a tenant without owning it (`tally dump`, `tally costs` beside a running
/// server) see every sample acknowledged before they started. Readers hold a shared `flock` on
/// `<tenant>/.read-lease` while they read the WAL and then the blocks; the writer takes it exclusively
/// around every removal (WAL segments and checkpoints a new checkpoint replaces, merged or expired
/// blocks). Additions need no lock: a block is renamed into place before the checkpoint that drops its
/// samples from the WAL, so a reader that reads the WAL first and lists blocks after finds each sample
/// in one or the other (or both, which reads de-duplicate).
enum ReadLease {
    static let fileName = ".read-lease"

    /// Creates the lease file of a tenant the writer opens.
    static func prepare(_ directory: String) throws(StorageIOError) {
        let file = try OpenFile(path: directory + "/" + fileName, flags: O_RDONLY | O_CREAT)
        withExtendedLifetime(file) {}
    }

    /// Runs `body` holding the lease shared; without a lease file (no writer ever opened the tenant)
    /// nothing can change under the reader.
    static func reading<T>(_ directory: String, _ body: () throws(StorageIOError) -> T) throws(StorageIOError) -> T {
        guard let file = try? OpenFile(path: directory + "/" + fileName, flags: O_RDONLY) else { return try body() }
        try lock(file, LOCK_SH)
        defer { flock(file.fd, LOCK_UN) }
        return try body()
    }

    /// Runs a removal holding the lease exclusively: it waits for every reader that started before.
    static func removing<T>(_ directory: String, _ body: () throws -> T) throws -> T {
        let file = try OpenFile(path: directory + "/" + fileName, flags: O_RDONLY | O_CREAT)
        try lock(file, LOCK_EX)
        defer { flock(file.fd, LOCK_UN) }
        return try body()
    }

    private static func lock(_ file: OpenFile, _ operation: Int32) throws(StorageIOError) {
        while flock(file.fd, operation) != 0 {
            guard errno == EINTR else { throw StorageIOError("flock", file.path) }
        }
    }
}
