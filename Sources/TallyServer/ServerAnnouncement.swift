import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the server that holds a storage can be asked, published inside that storage as
/// `<storage>/.server` once the server listens and removed when it stops cleanly.
///
/// The maintenance commands find a running server only through this file, never by a port alone,
/// so a command names a storage and reaches the server of that storage or none. A server killed
/// before its clean stop leaves the file behind: its `pid` is gone and nothing answers at its
/// address, and the storage lock, not this file, says whether a server holds the store.
public struct ServerAnnouncement: Codable, Sendable, Equatable {
    public static let fileName = ".server"
    /// The response header naming the canonical storage root of the server that answered.
    public static let storageHeader = "Tally-Storage"
    /// Longest file read back; anything longer is not ours.
    static let maximumBytes = 4096

    /// IPv4 address to connect to: the bound host, or 127.0.0.1 for a wildcard or loopback one.
    public var host: String
    public var port: Int
    public var pid: Int32
    /// The storage root as `realpath(3)` gives it.
    public var storage: String
    /// Whether the server speaks HTTPS (`--tls.*`).
    public var tls: Bool

    public init(host: String, port: Int, pid: Int32, storage: String, tls: Bool) {
        self.host = host
        self.port = port
        self.pid = pid
        self.storage = storage
        self.tls = tls
    }

    /// The canonical form of a storage root; nil when it does not exist.
    public static func canonicalRoot(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The host a client on this machine connects to for a server bound to `host`.
    static func connectableHost(boundTo host: String) -> String {
        ["", "0.0.0.0", "::", "localhost"].contains(host) || host.hasPrefix("127.") ? "127.0.0.1" : host
    }

    /// Replaces the file in one rename, so a reader sees the old or the new contents.
    func publish(in root: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(self) + Data("\n".utf8)).write(to: URL(fileURLWithPath: root + "/" + Self.fileName), options: .atomic)
    }

    /// Removes the file if it is still this server's (a second server never got the lock, so it
    /// never replaced it; the check keeps a stop from removing a successor's all the same).
    func withdraw(from root: String) {
        let path = root + "/" + Self.fileName
        if (try? Self.read(path)) == self { unlink(path) }
    }

    /// The file as written, checked field by field.
    public static func read(_ path: String) throws -> ServerAnnouncement {
        let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? file.close() }
        let data = try file.read(upToCount: maximumBytes + 1) ?? Data()
        guard data.count <= maximumBytes else { throw AnnouncementError("\(path): longer than \(maximumBytes) bytes") }
        let announced = try JSONDecoder().decode(ServerAnnouncement.self, from: data)
        guard (1...65535).contains(announced.port), announced.pid > 0, announced.storage.hasPrefix("/"), !announced.host.isEmpty else {
            throw AnnouncementError("\(path): not a server announcement")
        }
        return announced
    }

    /// Whether a process with the announced pid exists (it may be another one that reused the pid,
    /// which the answer's storage header then tells apart).
    public var processExists: Bool { kill(pid, 0) == 0 || errno == EPERM }
}

public struct AnnouncementError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
