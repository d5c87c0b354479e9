import Foundation
import TallyWire
import XCTest

/// `--tls.*`: HTTPS with certificates made here by openssl, checked with curl; with a client CA, only
/// clients holding a certificate it signed get an answer.
final class TLSTests: XCTestCase {
    func testServesHTTPSAndRequiresClientCertificatesWhenAsked() throws {
        let dir = try makeTemporaryDirectory("tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func openssl(_ arguments: [String]) throws {
            let run = try runCommand("/usr/bin/openssl", arguments)
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let subjectAltName = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "2", "-subj", "/CN=tally test CA"])
        for name in ["server", "client"] {
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr", "-subj", "/CN=\(name == "server" ? "localhost" : "sender")"])
            try "\(subjectAltName)\n".write(toFile: dir + "/ext.cnf", atomically: true, encoding: .utf8)
            try openssl(["x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                         "-out", "\(dir)/\(name).pem", "-days", "2", "-extfile", dir + "/ext.cnf"])
        }
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "tls_metric")], samples: [WireSample(timestamp: Int64(Date().timeIntervalSince1970 * 1000), valueBits: 2.0.bitPattern)])
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/body", contents: Data(encoder.compressed())))

        func curl(_ port: Int, _ extra: [String], path: String = "/-/ready") throws -> (status: Int32, code: String) {
            let run = try runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                                                       "--cacert", dir + "/ca.pem"] + extra + ["https://localhost:\(port)\(path)"])
            return (run.status, run.stdout)
        }
        let storage = dir + "/storage"
        let plain = try TallyServerProcess(storage: storage, extraArguments: ["--tls.cert-file", dir + "/server.pem", "--tls.key-file", dir + "/server.key"])
        defer { plain.stop(SIGTERM) }
        try waitHTTPS { try curl(plain.port, []).code == "200" }
        let write = try curl(plain.port, ["-X", "POST", "-H", "Content-Type: application/x-protobuf", "-H", "Content-Encoding: snappy",
                                          "-H", "THANOS-TENANT: secure", "--data-binary", "@" + dir + "/body"], path: "/api/v1/write")
        XCTAssertEqual(write.code, "204")
        XCTAssertThrowsError(try plain.client.request("GET", "/-/ready"), "plain HTTP to the TLS port gets no HTTP answer")
        plain.stop(SIGTERM)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "secure").split(separator: " ").first, "{__name__=\"tls_metric\"}")

        let mutual = try TallyServerProcess(storage: storage, extraArguments: ["--tls.cert-file", dir + "/server.pem", "--tls.key-file", dir + "/server.key",
                                                                                "--tls.client-ca-file", dir + "/ca.pem"])
        defer { mutual.stop(SIGTERM) }
        try waitHTTPS { try curl(mutual.port, ["--cert", dir + "/client.pem", "--key", dir + "/client.key"]).code == "200" }
        let anonymous = try curl(mutual.port, [])
        XCTAssertNotEqual(anonymous.code, "200", "a client without a certificate is refused in the handshake")
        XCTAssertNotEqual(anonymous.status, 0)
    }

    private func waitHTTPS(seconds: Double = 30, _ ready: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? ready()) == true { return }
            usleep(100_000)
        }
        XCTFail("the HTTPS server was not ready within \(seconds) s")
    }
}
