import Foundation
import TallyLoad
import TallyWire
import XCTest

/// A client socket that misbehaves on purpose: sends nothing, sends slowly, stops mid-body.
private final class RawClient {
    let fd: Int32

    init(port: Int, timeoutSeconds: Int = 10) throws { fd = try LoopbackHTTP(port: port, timeoutSeconds: timeoutSeconds).connect() }

    deinit { close(fd) }

    /// False once the server has closed the connection and refuses the bytes.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { (try? LoopbackHTTP.sendAll(fd, bytes)) != nil }

    /// Whether the server's bytes or its close are waiting, within `seconds`.
    func readable(within seconds: Double) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, Int32(seconds * 1000)) > 0
    }

    /// Everything the server sends until it closes the connection, and whether it did (rather than
    /// the receive timeout passing).
    func readUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { received += buffer[..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            return (received, n == 0 || errno == ECONNRESET)
        }
    }

    /// Exactly `count` bytes, or fewer if the server closes or the receive timeout passes.
    func receive(_ count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count, Int32(MSG_WAITALL)) }
        return Array(buffer[..<max(0, n)])
    }

    /// The head of the next answer, and its body by its Content-Length.
    func answer() throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        var received: [UInt8] = []
        while received.firstRange(of: LoopbackHTTP.headerEnd) == nil {
            let more = receive(1)
            guard !more.isEmpty else { throw LoopbackHTTP.Failure.malformed("no answer: \(received.count) bytes") }
            received += more
        }
        let (status, headers) = try LoopbackHTTP.parseHead(received[..<(received.count - LoopbackHTTP.headerEnd.count)])
        return (status, headers, receive(Int(headers["content-length"] ?? "0") ?? 0))
    }

    /// The status and headers of the answer the server sent before closing.
    func answerBeforeClose() throws -> (status: Int, headers: [String: String]) {
        let (bytes, closed) = readUntilClosed()
        XCTAssertTrue(closed, "the server keeps the connection open after its answer")
        guard let end = bytes.firstRange(of: LoopbackHTTP.headerEnd) else { throw LoopbackHTTP.Failure.malformed("no answer: \(bytes.count) bytes") }
        return try LoopbackHTTP.parseHead(bytes[..<end.lowerBound])
    }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
private func eventually(within seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if try condition() { return true }
        usleep(20_000)
    } while Date() < deadline
    return false
}

/// No client, however many or slow, takes the server down: idle and slow connections are closed,
/// connections and buffered bytes are capped, and accepting backs off when descriptors run out.
final class ConnectionLimitTests: XCTestCase {
    private var storage = ""

    override func setUpWithError() throws { storage = try makeTemporaryDirectory("connections") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: storage) }

    private func metrics(_ server: TallyServerProcess) throws -> String { try server.client.request("GET", "/metrics").body }

    func testIdleConnectionsAreClosedAfterTheIdleTimeout() throws {
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--http.idle-timeout", "1s"])
        try server.waitReady()
        let started = Date()
        let silent = try RawClient(port: server.port)
        let keptAlive = try RawClient(port: server.port)
        keptAlive.send(LoopbackHTTP.requestBytes("GET", "/-/healthy", headers: [], body: [], keepAlive: true))

        let (nothing, silentClosed) = silent.readUntilClosed()
        let silentFor = Date().timeIntervalSince(started)
        let (answer, keptAliveClosed) = keptAlive.readUntilClosed()
        let keptAliveFor = Date().timeIntervalSince(started)
        XCTAssertTrue(silentClosed && nothing.isEmpty, "a connection that never sends is closed without a word: \(String(decoding: nothing, as: UTF8.self))")
        XCTAssertTrue(keptAliveClosed)
        XCTAssertTrue(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200"), "the kept-alive request was answered before its idle close")
        for seconds in [silentFor, keptAliveFor] { XCTAssertTrue((0.9..<5).contains(seconds), "closed after \(seconds) s, idle timeout 1 s") }
        server.stop(SIGTERM)
    }

    func testSlowRequestsAreAnswered408AfterTheReadTimeout() throws {
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--http.read-timeout", "1s", "--http.idle-timeout", "60s"])
        try server.waitReady()
        let started = Date()
        // One trickles its body after the head, one its head (which the decoder holds until complete).
        let slowBody = try RawClient(port: server.port)
        slowBody.send(Array("POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789".utf8))
        let slowHead = try RawClient(port: server.port)
        slowHead.send(Array("POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8))
        var waiting = [slowBody, slowHead]
        for _ in 0..<50 where !waiting.isEmpty {
            waiting.removeAll { $0.readable(within: 0) }
            for client in waiting { client.send(Array((client === slowBody ? "x" : "X-Slow: y\r\n").utf8)) }
            usleep(100_000)
        }
        XCTAssertTrue(waiting.isEmpty, "a trickling request is still open after 5 s; read timeout 1 s")
        for client in [slowBody, slowHead] {
            XCTAssertEqual(try client.answerBeforeClose().status, 408)
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9)
        XCTAssertEqual(MetricsPage(try metrics(server))["tally_http_connections_refused_total{reason=\"read_timeout\"}"], 2)
        server.stop(SIGTERM)
    }

    func testConnectionsPastTheMaximumAreClosed() throws {
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--max-connections", "4"])
        try server.waitReady()
        // Answered once each, so the server has accepted and counts all four. The readiness probe's
        // connection can still be counted for a moment after it closed, and then one of these is
        // refused: it reconnects (a refused request closes its socket) until the probe's place is free.
        var held: [LoopbackConnection] = []
        for _ in 0..<4 {
            let connection = LoopbackConnection(server.client)
            XCTAssertTrue(eventually(within: 5) { (try? connection.request("GET", "/-/healthy"))?.status == 200 })
            held.append(connection)
        }
        let fifth = try RawClient(port: server.port, timeoutSeconds: 5)
        fifth.send(LoopbackHTTP.requestBytes("GET", "/-/healthy", headers: [], body: [], keepAlive: true))
        let (answer, closed) = fifth.readUntilClosed()
        XCTAssertTrue(closed && answer.isEmpty, "the fifth connection is closed unanswered")

        held.removeLast()
        XCTAssertTrue(eventually(within: 5) { (try? server.client.request("GET", "/-/healthy"))?.status == 200 },
                      "a closed connection frees its place")
        // The request above closed its connection, but the server may count it for a moment longer and
        // refuse the next one, as with the readiness probe: read the page once a place is free.
        var page = ""
        XCTAssertTrue(eventually(within: 5) {
            page = (try? metrics(server)) ?? ""
            return MetricsPage(page)["tally_http_open_connections"] == 4
        }, "three held connections and the one reading /metrics: \(page)")
        XCTAssertGreaterThanOrEqual(MetricsPage(page)["tally_http_connections_refused_total{reason=\"max_connections\"}"] ?? 0, 1, page)
        server.stop(SIGTERM)
    }

    func testSlowUploadsPastTheBufferedBytesCapGet503WhileMemoryStaysBounded() throws {
        let mebibyte = 1 << 20, cap = 36 * mebibyte, uploads = 30, sentPerUpload = 7 * mebibyte
        let server = try TallyServerProcess(storage: storage, extraArguments: [
            "--max-request-bytes", String(8 * mebibyte), "--max-buffered-bytes", String(cap), "--http.read-timeout", "60s"])
        try server.waitReady()
        let pid = server.process.processIdentifier
        let baseline = try XCTUnwrap(ProcessStats.read(pid: pid)).residentBytes

        // Each declares 8 MiB, sends 7 and stalls: 210 MiB offered, five fit under the cap.
        let head = Array("POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: \(8 * mebibyte)\r\n\r\n".utf8)
        let part = [UInt8](repeating: 0, count: sentPerUpload)
        var clients: [RawClient] = []
        for _ in 0..<uploads {
            let client = try RawClient(port: server.port)
            if client.send(head) { client.send(part) }
            clients.append(client)
        }
        let refusedSeries = "tally_http_connections_refused_total{reason=\"buffered_bytes\"}"
        var page = ""
        XCTAssertTrue(try eventually(within: 30) {
            page = try metrics(server)
            return (MetricsPage(page)[refusedSeries] ?? 0) >= Double(uploads - cap / sentPerUpload)
        }, page)
        let buffered = try XCTUnwrap(MetricsPage(page)["tally_http_buffered_request_bytes"])
        XCTAssertLessThanOrEqual(buffered, Double(cap))
        let stats = try XCTUnwrap(ProcessStats.read(pid: pid))
        print("buffered-bytes cap: RSS baseline \(baseline >> 20) MiB, now \(stats.residentBytes >> 20) MiB, peak \(stats.peakResidentBytes >> 20) MiB; "
              + "\(uploads * sentPerUpload >> 20) MiB offered, \(Int(buffered) >> 20) MiB buffered")
        XCTAssertLessThan(stats.peakResidentBytes - baseline, 100 * mebibyte, "the refused bodies were not kept")

        // The refused ones have their 503 waiting; the ones that fit are still being read.
        let refused = clients.filter { $0.readable(within: 0) }
        XCTAssertEqual(refused.count, Int(MetricsPage(page)[refusedSeries]!))
        for client in refused {
            let answer = try client.answerBeforeClose()
            XCTAssertEqual(answer.status, 503)
            XCTAssertNotNil(answer.headers["retry-after"])
        }

        // Small requests still fit beside the held bodies.
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "small")], samples: [WireSample(timestamp: 1, valueBits: 1.0.bitPattern)])
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")],
                                                 body: encoder.compressed()).status, 204)

        // Bytes come back when a connection closes mid-body, and when a body over the limit gets 413.
        clients.removeAll()
        let bufferedSeries = "tally_http_buffered_request_bytes"
        XCTAssertTrue(try eventually(within: 10) {
            page = try metrics(server)
            return MetricsPage(page)[bufferedSeries] == 0
        }, page)
        let chunked = try RawClient(port: server.port)
        chunked.send(Array("POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        let chunk = Array(String(mebibyte, radix: 16).utf8) + Array("\r\n".utf8) + [UInt8](repeating: 0, count: mebibyte) + Array("\r\n".utf8)
        for _ in 0..<9 { chunked.send(chunk) }
        chunked.send(Array("0\r\n\r\n".utf8))
        XCTAssertEqual(try chunked.answerBeforeClose().status, 413)
        XCTAssertTrue(try eventually(within: 10) {
            page = try metrics(server)
            return MetricsPage(page)[bufferedSeries] == 0
        }, page)
        server.stop(SIGTERM)
    }

    func testAcceptFailuresBackOffWhenDescriptorsRunOut() throws {
        let limit = 64
        let server = try TallyServerProcess(storage: storage, fileDescriptorLimit: limit)
        try server.waitReady()
        let pid = server.process.processIdentifier
        func openDescriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0 }

        // More connections than descriptors: the kernel completes them all (backlog 256), the
        // server accepts until it has none left.
        var clients = try (0..<(limit + 36)).map { _ in try RawClient(port: server.port) }
        XCTAssertTrue(eventually(within: 10) { openDescriptors() >= limit }, "the server holds \(openDescriptors()) descriptors")
        let before = try XCTUnwrap(ProcessStats.read(pid: pid)).cpuSeconds
        usleep(2_000_000)   // the measurement window
        let cpu = try XCTUnwrap(ProcessStats.read(pid: pid)).cpuSeconds - before
        print("accept back-off: \(cpu) CPU seconds in 2 s with \(openDescriptors()) descriptors open, limit \(limit)")
        XCTAssertLessThan(cpu, 0.2, "accept failing in a loop")

        clients.removeAll()
        XCTAssertTrue(eventually(within: 10) { (try? server.client.request("GET", "/-/healthy"))?.status == 200 }, server.log)
        XCTAssertTrue(server.process.isRunning)
        server.stop(SIGTERM)
    }
    /// A request that asks `Expect: 100-continue` gets `100 Continue` at once, then its answer, the
    /// compressed one too, on the same connection: as Go's server answers, where curl (which asks
    /// with bodies over 1 MiB) would otherwise wait a second before it sends the body.
    func testAClientThatExpects100ContinueGetsItThenItsAnswer() throws {
        let server = try TallyServerProcess(storage: storage)
        defer { server.stop(SIGTERM) }
        try server.waitReady()
        let body = Array("query=1%2B1&time=100".utf8)
        let client = try RawClient(port: server.port)
        for encoding in ["identity", "gzip"] {
            client.send(Array(("POST /api/v1/query HTTP/1.1\r\nHost: tally\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Accept-Encoding: \(encoding)\r\nExpect: 100-Continue\r\nContent-Length: \(body.count)\r\n\r\n").utf8))
            XCTAssertTrue(client.readable(within: 0.5), "\(encoding): no 100 Continue before the body")
            XCTAssertEqual(String(decoding: client.receive(25), as: UTF8.self), "HTTP/1.1 100 Continue\r\n\r\n", encoding)
            client.send(body)
            let answer = try client.answer()
            XCTAssertEqual(answer.status, 200, encoding)
            if encoding == "identity" {
                XCTAssertEqual(String(decoding: answer.body, as: UTF8.self), #"{"status":"success","data":{"resultType":"scalar","result":[100,"2"]}}"#)
            }
        }
        XCTAssertEqual(try server.client.request("GET", "/-/ready").status, 200)
    }
}
