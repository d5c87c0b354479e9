import Foundation
import Synchronization
import TallyWire
#if canImport(Glibc)
import Glibc
#endif

/// A scrape target on a loopback port that serves one native histogram in Prometheus' protobuf
/// exposition format (a length-delimited `io.prometheus.client.MetricFamily`). Scrape k (from 0)
/// serves histogram `n(k)` at time `start + k * step`, with an explicit timestamp, until `scrapes`
/// have been served; later scrapes serve the last one again. One thread, accepting with a timeout,
/// stopped by `stop()`.
final class HistogramExporter: Sendable {
    static let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    let port: Int
    let start: Int64
    let step: Int64
    let scrapes: Int
    private let listener: Int32
    private let state = Mutex<(served: Int, stopped: Bool)>((0, false))
    private let done = DispatchSemaphore(value: 0)

    /// The histogram of scrape `k`: n = k + 1 before the middle scrape, then counted again from 1
    /// (a counter reset). Zero bucket n, bucket (0.5,1] 2n, bucket (1,2] 3n; count 6n, sum 7n.
    static func n(_ k: Int, scrapes: Int) -> Int { k < scrapes / 2 ? k + 1 : k - scrapes / 2 + 1 }

    init(start: Int64, step: Int64, scrapes: Int) throws {
        self.start = start
        self.step = step
        self.scrapes = scrapes
        (listener, port) = try loopbackListener()
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// How many scrapes were answered.
    var served: Int { state.withLock { $0.served } }

    func stop() {
        guard !state.withLock({ s in defer { s.stopped = true }; return s.stopped }) else { return }
        _ = done.wait(timeout: .now() + 10)
        close(listener)
    }

    deinit { stop() }

    private func serve() {
        defer { done.signal() }
        while !state.withLock({ $0.stopped }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            answer(connection)
            close(connection)
        }
    }

    /// Reads the request head (bounded), then answers 200 with the current scrape's body.
    private func answer(_ connection: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 65536 && !request.ends(with: Array("\r\n\r\n".utf8)) {
            let n = read(connection, &buffer, buffer.count)
            guard n > 0 else { return }
            request += buffer[..<n]
        }
        let k = state.withLock { s -> Int in
            defer { s.served += 1 }
            return min(s.served, scrapes - 1)
        }
        let body = Self.body(n: Self.n(k, scrapes: scrapes), timestamp: start + Int64(k) * step)
        let head = "HTTP/1.1 200 OK\r\nContent-Type: \(Self.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let response = Array(head.utf8) + body
        var sent = 0
        while sent < response.count {
            let n = response[sent...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            sent += n
        }
    }

    /// One MetricFamily `test_latency_seconds` (type HISTOGRAM) with one Metric holding the native
    /// histogram of `n` and `timestamp_ms`, preceded by its length as a varint.
    static func body(n: Int, timestamp: Int64) -> [UInt8] {
        func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
        var family = ProtobufWriter()
        family.bytesField(1, Array("test_latency_seconds".utf8))
        family.bytesField(2, Array("A native histogram for Tally's tests.".utf8))
        family.varintField(3, 4)
        family.messageField(4) { metric in
            metric.messageField(7) { h in
                h.varintField(1, UInt64(6 * n))
                h.fixed64Field(2, Double(7 * n).bitPattern)
                h.varintField(5, zigzag(0))
                h.fixed64Field(6, 0.001.bitPattern)
                h.varintField(7, UInt64(n))
                h.messageField(12) { span in
                    span.varintField(1, zigzag(0))
                    span.varintField(2, 2)
                }
                h.varintField(13, zigzag(Int64(2 * n)))
                h.varintField(13, zigzag(Int64(n)))
            }
            metric.varintField(6, UInt64(bitPattern: timestamp))
        }
        var out = ProtobufWriter()
        out.varint(UInt64(family.bytes.count))
        return out.bytes + family.bytes
    }

    /// The line `tally dump` (and later promtool versions) print for scrape k's histogram.
    func dumpLine(_ k: Int, labels: String) -> String {
        let n = Self.n(k, scrapes: scrapes)
        return "\(labels) {count:\(6 * n), sum:\(7 * n), [-0.001,0.001]:\(n), (0.5,1]:\(2 * n), (1,2]:\(3 * n)} \(start + Int64(k) * step)"
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix) }
}

/// A socket listening on a free loopback port, and the port.
func loopbackListener(backlog: Int32 = 16) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestEnvironmentFailure(description: "loopback listener: socket failed") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound, listen(fd, backlog) == 0 else {
        close(fd)
        throw TestEnvironmentFailure(description: "loopback listener: bind or listen failed (errno \(errno))")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
