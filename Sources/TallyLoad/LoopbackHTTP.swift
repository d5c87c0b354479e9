import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for 127.0.0.1, one request per connection, with a timeout
/// (`LoopbackConnection` keeps one open, as a remote-write sender does).
/// Tests and benchmarks need the exact status and body, nothing more; the server is measured, not
/// the client.
public struct LoopbackHTTP: Sendable {
    public struct Response: Sendable {
        public let status: Int
        /// Header names in lower case.
        public let headers: [String: String]
        public let bytes: [UInt8]
        public var body: String { String(decoding: bytes, as: UTF8.self) }
    }

    public enum Failure: Error { case connect(Int32), io(String), malformed(String) }

    public let port: Int
    public var timeoutSeconds = 10
    /// An IPv4 address of this machine; loopback unless a server announced another it is bound to.
    public let host: String
    /// The loopback address to connect from (any of 127.0.0.0/8), as another sender would; nil lets the kernel pick.
    public var source: String?

    public init(port: Int, timeoutSeconds: Int = 10, host: String = "127.0.0.1", source: String? = nil) {
        self.port = port
        self.timeoutSeconds = timeoutSeconds
        self.host = host
        self.source = source
    }

    /// Percent-encodes all but unreserved characters, for a query parameter or form value.
    public static func escaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? text
    }

    public func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []) throws -> Response {
        let fd = try connect()
        defer { close(fd) }
        try Self.sendAll(fd, Self.requestBytes(method, path, headers: headers, body: body, keepAlive: false))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while try Self.receive(fd, into: &received, buffer: &buffer) {}
        guard let split = received.firstRange(of: Self.headerEnd) else { throw Failure.malformed("no header end") }
        let (status, headers) = try Self.parseHead(received[..<split.lowerBound])
        var body = Array(received[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = try Self.dechunk(body) }
        return Response(status: status, headers: headers, bytes: body)
    }

    /// A connected socket with the send and receive timeouts set.
    public func connect() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.io("socket") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func address(_ host: String, _ port: Int) throws -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            guard let port16 = UInt16(exactly: port) else {
                close(fd)
                throw Failure.io("not a port: \(port)")
            }
            address.sin_port = in_port_t(port16.bigEndian)
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
                close(fd)
                throw Failure.io("not an IPv4 address: \(host)")
            }
            return address
        }
        func call(_ syscall: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32, _ address: sockaddr_in) -> Int32 {
            withUnsafePointer(to: address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { syscall(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        let bound = try source.map { call(Glibc.bind, try address($0, 0)) } ?? 0
        let connected = bound == 0 ? call(Glibc.connect, try address(host, port)) : bound
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw Failure.connect(error)
        }
        return fd
    }

    public static let headerEnd = Array("\r\n\r\n".utf8)

    public static func requestBytes(_ method: String, _ path: String, headers: [(String, String)], body: [UInt8], keepAlive: Bool) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// Appends what one recv(2) returns; false once the peer has closed.
    public static func receive(_ fd: Int32, into received: inout [UInt8], buffer: inout [UInt8]) throws -> Bool {
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Failure.io("recv errno \(errno)") }
            received.append(contentsOf: buffer[..<n])
            return n > 0
        }
    }

    /// The status and the headers (names in lower case) of an answer's head.
    public static func parseHead(_ bytes: ArraySlice<UInt8>) throws -> (Int, [String: String]) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n")
        let parts = (lines.first ?? "").split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure.malformed(String(lines.first ?? "")) }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers)
    }

    /// The body of a `Transfer-Encoding: chunked` answer (large Go answers come this way).
    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var rest = bytes[...]
        while true {
            guard let lineEnd = rest.firstRange(of: Array("\r\n".utf8)),
                  let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? "", radix: 16),
                  rest.distance(from: lineEnd.upperBound, to: rest.endIndex) >= size else { throw Failure.malformed("bad chunk") }
            if size == 0 { return out }
            out += rest[lineEnd.upperBound..<(lineEnd.upperBound + size)]
            rest = rest[(lineEnd.upperBound + size)...].dropFirst(2)
        }
    }

    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw Failure.io("send errno \(errno)") }
            offset += n
        }
    }

    /// A free loopback port: bind port 0, read it back, release it.
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// One kept-alive connection, used by one thread at a time, as each of Prometheus' remote-write
/// shards keeps one: the server is measured on requests, not on accepting connections. Answers are
/// read by their Content-Length; a server that closes the connection gets a new one on the next
/// request.
public final class LoopbackConnection {
    private let client: LoopbackHTTP
    private var fd: Int32 = -1
    private var buffer = [UInt8](repeating: 0, count: 65536)
    /// Connections opened so far: 1 when the server kept the first one open throughout.
    public private(set) var connectionsOpened = 0

    public init(_ client: LoopbackHTTP) { self.client = client }

    deinit { if fd >= 0 { close(fd) } }

    public func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []) throws -> LoopbackHTTP.Response {
        if fd < 0 {
            fd = try client.connect()
            connectionsOpened += 1
        }
        do {
            return try exchange(LoopbackHTTP.requestBytes(method, path, headers: headers, body: body, keepAlive: true), method: method)
        } catch {
            close(fd)
            fd = -1
            throw error
        }
    }

    private func exchange(_ request: [UInt8], method: String) throws -> LoopbackHTTP.Response {
        try LoopbackHTTP.sendAll(fd, request)
        var received: [UInt8] = []
        var split: Range<Int>?
        while split == nil {
            guard try LoopbackHTTP.receive(fd, into: &received, buffer: &buffer) else { throw LoopbackHTTP.Failure.io("closed before the answer's head") }
            split = received.firstRange(of: LoopbackHTTP.headerEnd)
        }
        let (status, headers) = try LoopbackHTTP.parseHead(received[..<split!.lowerBound])
        var open = headers["connection"]?.lowercased() != "close"
        var body: [UInt8]
        if method == "HEAD" || status == 204 || status == 304 || status / 100 == 1 {
            body = []
        } else if let length = headers["content-length"].flatMap(Int.init) {
            while received.count - split!.upperBound < length {
                guard try LoopbackHTTP.receive(fd, into: &received, buffer: &buffer) else { throw LoopbackHTTP.Failure.io("closed inside the body") }
            }
            body = Array(received[split!.upperBound..<split!.upperBound + length])
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            // Complete once the last (empty) chunk has arrived, which ends the bytes with an empty
            // line: decoded only then, not again after every read (the client's time is in the
            // measured latency of a server that answers chunked).
            while true {
                if received.count - split!.upperBound >= 5, received.suffix(4).elementsEqual(LoopbackHTTP.headerEnd),
                   let whole = try? LoopbackHTTP.dechunk(Array(received[split!.upperBound...])) {
                    body = whole
                    break
                }
                guard try LoopbackHTTP.receive(fd, into: &received, buffer: &buffer) else { throw LoopbackHTTP.Failure.io("closed inside a chunked body") }
            }
        } else {
            // Delimited by the server closing the connection.
            while try LoopbackHTTP.receive(fd, into: &received, buffer: &buffer) {}
            body = Array(received[split!.upperBound...])
            open = false
        }
        if !open {
            close(fd)
            fd = -1
        }
        return LoopbackHTTP.Response(status: status, headers: headers, bytes: body)
    }
}
