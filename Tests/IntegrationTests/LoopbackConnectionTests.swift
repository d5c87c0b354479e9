import Foundation
import TallyLoad
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The benchmarks' kept-alive client reads a chunked answer whole, however its chunks arrive, and
/// the next answer on the same connection after it.
final class LoopbackConnectionTests: XCTestCase {
    func testChunkedAnswersArrivingPiecemealAreReadWhole() throws {
        let (listener, port) = try loopbackListener()
        defer { close(listener) }
        // One connection, two requests: a chunked answer in pieces (the first chunk's data ends in an
        // empty line, as the last chunk does), then an answer with a Content-Length.
        let pieces = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "6\r\nab\r\n\r\n\r\n", "7\r\nxyz1234\r\n", "0\r\n\r\n"]
        let served = DispatchSemaphore(value: 0)
        let server = Thread {
            defer { served.signal() }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            func readHead() -> Bool {
                var head: [UInt8] = [], byte: UInt8 = 0
                while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
                    guard read(connection, &byte, 1) == 1, head.count < 4096 else { return false }
                    head.append(byte)
                }
                return true
            }
            guard readHead() else { return }
            for piece in pieces {
                _ = Array(piece.utf8).withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                usleep(20_000)
            }
            guard readHead() else { return }
            let plain = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
            _ = plain.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
        }
        server.start()
        let connection = LoopbackConnection(LoopbackHTTP(port: port, timeoutSeconds: 10))
        XCTAssertEqual(try connection.request("GET", "/chunked").body, "ab\r\n\r\nxyz1234")
        XCTAssertEqual(try connection.request("GET", "/plain").body, "ok")
        XCTAssertEqual(connection.connectionsOpened, 1)
        XCTAssertEqual(served.wait(timeout: .now() + 20), .success)
    }
}
