import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Whether the server could listen at an address, found before the storage root and its files are
/// created: a socket is bound there, as the server's will be, and closed again. It never listens:
/// a probe that listened (a NIO server channel) accepted the connections that came in its moment,
/// and they stayed open with no handler, their requests never answered. A client that polls a
/// starting server (a sender retrying, `/-/ready` checks) hit that window.
enum ListenAddressProbe {
    static func check(host: String, port: Int) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family = switch address {
        case .v4: AF_INET
        case .v6: AF_INET6
        case .unixDomainSocket: AF_UNIX
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ProbeFailure(host: host, port: port, step: "socket", errno: errno) }
        defer { close(fd) }
        // As the server's socket: an address whose last connections are in TIME_WAIT is free.
        var one: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw ProbeFailure(host: host, port: port, step: "setsockopt", errno: errno)
        }
        let bound = address.withSockAddr { pointer, size in bind(fd, pointer, socklen_t(size)) }
        guard bound == 0 else { throw ProbeFailure(host: host, port: port, step: "bind", errno: errno) }
    }

    struct ProbeFailure: Error, CustomStringConvertible {
        let host: String
        let port: Int
        let step: String
        let errno: Int32
        var description: String { "cannot listen at \(host):\(port): \(step): \(String(cString: strerror(errno)))" }
    }
}
