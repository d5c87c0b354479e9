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
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        XCTAssertTrue(bound && listen(listener, 4) == 0)
        let port = Int(UInt16(bigEndian: address.sin_port))
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
