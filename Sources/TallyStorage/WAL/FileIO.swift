#if canImport(Glibc)
import Glibc
#endif

/// An error from the file system, with the path and the operation, for logs and 5xx answers.
public struct StorageIOError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let errno: Int32
    public var description: String {
        // What O_NOFOLLOW's refusal means here: the storage's own files are never reached through a link.
        let reason = switch errno {
        case ELOOP: "a symbolic link, which is not followed inside the storage"
        case ESPIPE: "not a regular file (a FIFO, socket or device), which is never read inside the storage"
        default: String(cString: strerror(errno))
        }
        return "\(operation) \(path): \(reason)"
    }
    /// The process or the system has no file descriptor left (EMFILE, ENFILE): retrying later can
    /// succeed, once connections or other tenants' files have closed.
    public var isOutOfDescriptors: Bool { errno == EMFILE || errno == ENFILE }

    init(_ operation: String, _ path: String, errno code: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = code
    }
}

/// A small file only its owner may read or write (mode 0600 even when it existed with wider
/// permissions), for secrets such as the storage's admin token.
public enum OwnerOnlyFile {
    public static func write(_ path: String, _ text: String) throws(StorageIOError) {
        let file = try OpenFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        if fchmod(file.fd, 0o600) != 0 { throw StorageIOError("chmod", path) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(file.fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw StorageIOError("write", path) }
    }

    public static func read(_ path: String) throws(StorageIOError) -> String {
        let file = try OpenFile(path: path, flags: O_RDONLY)
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = bytes.withUnsafeMutableBytes { Glibc.read(file.fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw StorageIOError("read", path) }
        return String(decoding: bytes[..<count], as: UTF8.self)
    }
}

/// An open file descriptor closed when the last reference goes, so a syncer may keep fsyncing a
/// segment that the writer has already moved past.
final class OpenFile: @unchecked Sendable {
    let fd: Int32
    let path: String

    /// Opens only regular files and directories: a FIFO, socket or device put in the storage is
    /// refused, naming it, rather than waited on (opening a FIFO blocks until a writer comes, and
    /// reading a device need never end). O_NONBLOCK is what keeps the open itself from blocking; it
    /// changes nothing for regular files and directories.
    init(path: String, flags: Int32, mode: mode_t = 0o644) throws(StorageIOError) {
        let fd = open(path, flags | O_CLOEXEC | O_NONBLOCK, mode)
        if fd < 0 { throw StorageIOError("open", path) }
        var st = stat()
        guard fstat(fd, &st) == 0, [S_IFREG, S_IFDIR].contains(st.st_mode & S_IFMT) else {
            close(fd)
            throw StorageIOError("open", path, errno: ESPIPE)
        }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(StorageIOError) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageIOError("write", path)
            }
            offset += n
        }
    }

    func writeAll(_ bytes: [UInt8]) throws(StorageIOError) {
        try bytes.withUnsafeBytes { b in Result { () throws(StorageIOError) in try writeAll(b) } }.get()
    }

    func sync() throws(StorageIOError) {
        if fdatasync(fd) != 0 { throw StorageIOError("fdatasync", path) }
    }

    func truncate(to size: Int) throws(StorageIOError) {
        if ftruncate(fd, off_t(size)) != 0 { throw StorageIOError("ftruncate", path) }
    }

    func size() throws(StorageIOError) -> Int { Int(try status().st_size) }

    func isRegular() throws(StorageIOError) -> Bool { try status().st_mode & S_IFMT == S_IFREG }

    private func status() throws(StorageIOError) -> stat {
        var st = stat()
        if fstat(fd, &st) != 0 { throw StorageIOError("fstat", path) }
        return st
    }
}

enum FileSystem {
    static func readFile(_ path: String) throws(StorageIOError) -> [UInt8] {
        let file = try OpenFile(path: path, flags: O_RDONLY)
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: size)
        var offset = 0
        while offset < size {
            let n = bytes.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress! + offset, size - offset, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageIOError("read", path)
            }
            if n == 0 { break }
            offset += n
        }
        return offset == size ? bytes : Array(bytes[..<offset])
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws(StorageIOError) {
        let file = try OpenFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.writeAll(bytes)
        try file.sync()
    }

    /// Replaces a file so a crash leaves the old or the new contents, never a mix: written to
    /// `<path>.tmp`, fsynced, renamed over `path`, then the directory fsynced. `beforeRename` is
    /// where a crash test kills the process with the `.tmp` written.
    static func replaceFile(_ path: String, _ bytes: [UInt8], beforeRename: () -> Void = {}) throws(StorageIOError) {
        try writeFile(path + ".tmp", bytes)
        beforeRename()
        try rename(path + ".tmp", path)
        try syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]))
    }

    /// Publishes a directory written under a temporary name: its entries synced, renamed to `final`
    /// inside `parent`, the parent synced. A crash leaves the temporary directory or the published
    /// one, never half of it. `beforeRename` is where crash tests kill the process.
    static func publishDirectory(_ temporary: String, as final: String, in parent: String,
                                 beforeRename: () -> Void = {}) throws(StorageIOError) {
        try syncDirectory(temporary)
        beforeRename()
        try rename(temporary, final)
        try syncDirectory(parent)
    }

    /// Removes a directory so that a crash midway leaves `<path>.tmp`, which the next open deletes,
    /// never a half-deleted directory under its real name. `afterRename` is where crash tests kill.
    static func withdrawDirectory(_ path: String, in parent: String, afterRename: () -> Void = {}) throws(StorageIOError) {
        try rename(path, path + ".tmp")
        try syncDirectory(parent)
        afterRename()
        try removeTree(path + ".tmp")
    }

    /// Makes a directory entry durable (after creating, renaming or removing files in it).
    static func syncDirectory(_ path: String) throws(StorageIOError) {
        let dir = try OpenFile(path: path, flags: O_RDONLY | O_DIRECTORY)
        if fsync(dir.fd) != 0 { throw StorageIOError("fsync", path) }
    }

    static func makeDirectory(_ path: String) throws(StorageIOError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw StorageIOError("mkdir", path) }
        guard isDirectory(path) else { throw StorageIOError("mkdir", path, errno: ENOTDIR) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `realpath(3)`: the path with every link resolved; nil if it does not resolve.
    static func resolved(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// A directory itself, not a symbolic link to one: what a tenant directory must be, so that
    /// nothing written for a tenant lands outside the storage root.
    static func isRealDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func rename(_ from: String, _ to: String) throws(StorageIOError) {
        if Glibc.rename(from, to) != 0 { throw StorageIOError("rename", from + " -> " + to) }
    }

    /// Removes a file or a directory tree (no error if absent).
    static func removeTree(_ path: String) throws(StorageIOError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try listDirectory(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 { throw StorageIOError("rmdir", path) }
        } else if unlink(path) != 0 {
            throw StorageIOError("unlink", path)
        }
    }

    /// Bytes available to this process on the file system holding `path`.
    static func freeBytes(_ path: String) -> Int {
        var st = statvfs()
        return statvfs(path, &st) == 0 ? Int(st.f_bavail) * Int(st.f_frsize) : 0
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func listDirectory(_ path: String) throws(StorageIOError) -> [String] {
        guard let dir = opendir(path) else { throw StorageIOError("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// Appends to a new file through a 1 MiB buffer, tracking the file position; `finish` flushes and
/// syncs. Big-endian helpers match the Prometheus formats.
final class BufferedFileWriter {
    let file: OpenFile
    private var buffer: [UInt8] = []
    private(set) var position = 0

    init(path: String) throws(StorageIOError) {
        file = try OpenFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ bytes: some Collection<UInt8>) throws(StorageIOError) {
        buffer.append(contentsOf: bytes)
        position += bytes.count
        if buffer.count >= 1 << 20 { try flush() }
    }

    func writeBigEndian(_ v: UInt32) throws(StorageIOError) {
        try write([UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)])
    }

    func writeBigEndian(_ v: UInt64) throws(StorageIOError) {
        try writeBigEndian(UInt32(v >> 32))
        try writeBigEndian(UInt32(v & 0xffff_ffff))
    }

    /// Zero bytes up to the next multiple of `alignment`.
    func pad(to alignment: Int) throws(StorageIOError) {
        let rest = position % alignment
        if rest != 0 { try write([UInt8](repeating: 0, count: alignment - rest)) }
    }

    private func flush() throws(StorageIOError) {
        try file.writeAll(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws(StorageIOError) {
        try flush()
        try file.sync()
    }
}

/// Varint encodings of Go's encoding/binary, appended to a byte array.
extension Array where Element == UInt8 {
    mutating func appendUvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }

    mutating func appendVarint(_ v: Int64) { appendUvarint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    mutating func appendBigEndian(_ v: UInt32) {
        Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) }
    }

    mutating func appendBigEndian(_ v: UInt64) {
        Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) }
    }
}
