import Foundation
import TallyLoad
import TallyWire
import XCTest

/// `--web.cors.origin`: web pages of the allowed origins may read the query and cost API from a
/// browser (a preflight answered 204, the `Access-Control-*` headers on every answer, refusals
/// included), as Prometheus 2.42 answers them; no page of another origin may write or call an admin
/// endpoint, whatever the flag says. Against a real server, and a real Prometheus as the oracle.
final class CrossOriginTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("cross-origin")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private static let corsHeaders = ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                                      "access-control-expose-headers", "vary"]

    private func cors(_ response: LoopbackHTTP.Response) -> [String: String] {
        response.headers.filter { Self.corsHeaders.contains($0.key) }
    }

    private func startTally(_ arguments: [String] = []) throws -> TallyServerProcess {
        let server = try TallyServerProcess(storage: root + "/tally", extraArguments: arguments)
        try server.waitReady()
        return server
    }

    private func startPrometheus(_ arguments: [String] = []) throws -> PrometheusProcess {
        try PrometheusProcess(directory: root, configuration: { _ in "global:\n  scrape_interval: 1m\n" },
                              arguments: ["--storage.tsdb.path=\(root)/prometheus"] + arguments)
    }

    private func waitReady(_ client: LoopbackHTTP) throws {
        for _ in 0..<300 {
            if (try? client.request("GET", "/-/ready").status) == 200 { return }
            usleep(20_000)
        }
        XCTFail("Prometheus not ready within 6 s")
    }

    private func writeOneSample(_ server: TallyServerProcess, headers: [(String, String)] = []) throws -> LoopbackHTTP.Response {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: 60_000, valueBits: 2.5.bitPattern)])
        return try server.client.request("POST", "/api/v1/write", headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
                                                                            ("X-Scope-OrgID", "acme")] + headers, body: encoder.compressed())
    }

    func testPagesOfAnyOriginMayReadByDefaultAsInPrometheusAndNeverWrite() throws {
        let tally = try startTally()
        defer { tally.stop(SIGTERM) }
        let prometheus = try startPrometheus()
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        try waitReady(prometheus.client())
        XCTAssertEqual(try writeOneSample(tally).status, 204)

        let page = ("Origin", "http://dashboards.example")
        let preflight = [page, ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "x-scope-orgid")]
        let query = "/api/v1/query?query=m&time=90"
        for path in ["/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/__name__/values",
                     "/api/v1/metadata", "/api/v1/status/buildinfo", "/api/v1/format_query"] {
            let theirs = try prometheus.client().request("OPTIONS", path, headers: preflight)
            let ours = try tally.client.request("OPTIONS", path, headers: preflight)
            XCTAssertEqual(ours.status, theirs.status, path)
            XCTAssertEqual(ours.status, 204, path)
            XCTAssertEqual(ours.body, "", path)
            for header in ["access-control-allow-origin", "access-control-expose-headers", "vary"] {
                XCTAssertEqual(ours.headers[header], theirs.headers[header], "\(path): \(header)")
            }
            XCTAssertEqual(ours.headers["access-control-allow-origin"], "*", path)
            // The tenant headers are allowed too, so that a page can name its tenant.
            let allowed = ours.headers["access-control-allow-headers"] ?? ""
            for header in ["Accept", "Authorization", "Content-Type", "Origin", "THANOS-TENANT", "X-Scope-OrgID"] {
                XCTAssertTrue(allowed.contains(header), "\(path): \(allowed)")
            }
        }
        XCTAssertEqual(cors(try tally.client.request("OPTIONS", "/api/v1/query", headers: preflight))["access-control-allow-methods"], "GET, POST, OPTIONS")
        XCTAssertEqual(cors(try tally.client.request("OPTIONS", "/api/v1/metadata", headers: preflight))["access-control-allow-methods"], "GET, OPTIONS")

        // The answer itself carries the headers, the page reads the tenant it names, and a request
        // without an Origin gets none of them, as from Prometheus.
        let read = try tally.client.request("GET", query, headers: [page, ("X-Scope-OrgID", "acme")])
        XCTAssertEqual(read.status, 200, read.body)
        XCTAssertEqual(read.body, #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"m"},"value":[90,"2.5"]}]}}"#)
        XCTAssertEqual(cors(read)["access-control-allow-origin"], "*")
        XCTAssertEqual(cors(read)["access-control-allow-origin"], cors(try prometheus.client().request("GET", query, headers: [page]))["access-control-allow-origin"])
        XCTAssertEqual(cors(try tally.client.request("GET", query, headers: [("X-Scope-OrgID", "acme")])), [:])
        XCTAssertEqual(cors(try prometheus.client().request("GET", query)), [:])
        let badQuery = try tally.client.request("GET", "/api/v1/query?query=sum(", headers: [page])
        XCTAssertEqual(badQuery.status, 400)
        XCTAssertEqual(cors(badQuery)["access-control-allow-origin"], "*", "a page reads why its query failed")

        // The cost API takes part; writes and admin calls do not: no preflight, and a request with
        // another origin is refused before anything is stored.
        let costs = try tally.client.request("OPTIONS", "/api/v1/costs/daily", headers: preflight)
        XCTAssertEqual(costs.status, 204)
        XCTAssertEqual(cors(costs)["access-control-allow-methods"], "GET, OPTIONS")
        for path in ["/api/v1/write", "/api/v1/admin/compact"] {
            let refused = try tally.client.request("OPTIONS", path, headers: preflight)
            XCTAssertEqual(refused.status, 405, path)
            XCTAssertEqual(cors(refused), [:], path)
        }
        let crossWrite = try writeOneSample(tally, headers: [page])
        XCTAssertEqual(crossWrite.status, 403, crossWrite.body)
        XCTAssertEqual(cors(crossWrite), [:])
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=count_over_time(m[1h])&time=90", headers: [("X-Scope-OrgID", "acme")]).body,
                       #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[90,"1"]}]}}"#)
        // The preflight is not a method to use instead: a method the route does not take names only
        // the ones it does.
        XCTAssertEqual(try tally.client.request("DELETE", "/api/v1/query").headers["allow"], "GET, POST")
    }

    func testAnOriginPatternIsFullyAnchoredAndAPreflightNeedsNoCredential() throws {
        let configPath = root + "/auth.yaml"
        try AuthMatrixTests.config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let pattern = #"https?://grafana\.example"#
        let tally = try startTally(["--auth.config-file", configPath, "--web.cors.origin", pattern])
        defer { tally.stop(SIGTERM) }
        let prometheus = try startPrometheus(["--web.cors.origin=\(pattern)"])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        try waitReady(prometheus.client())

        for origin in ["https://grafana.example", "http://grafana.example", "https://grafana.example.evil.example",
                       "https://evil.example/?https://grafana.example", "https://xgrafana.example", "null"] {
            let preflight = [("Origin", origin), ("Access-Control-Request-Method", "GET")]
            let ours = try tally.client.request("OPTIONS", "/api/v1/query", headers: preflight)
            let theirs = try prometheus.client().request("OPTIONS", "/api/v1/query", headers: preflight)
            XCTAssertEqual(ours.status, 204, "\(origin): no credential is needed for a preflight")
            XCTAssertEqual(ours.headers["access-control-allow-origin"], theirs.headers["access-control-allow-origin"], origin)
            XCTAssertEqual(ours.headers["access-control-allow-origin"], ["https://grafana.example", "http://grafana.example"].contains(origin) ? origin : nil, origin)
            XCTAssertEqual(ours.headers["vary"], "Origin", origin)
        }
        // A read without its credential is refused with the headers, so that the page can tell why;
        // with the credential it is answered.
        let grafana = ("Origin", "https://grafana.example")
        let refused = try tally.client.request("GET", "/api/v1/labels", headers: [grafana, ("X-Scope-OrgID", "acme")])
        XCTAssertEqual(refused.status, 401, refused.body)
        XCTAssertEqual(refused.headers["access-control-allow-origin"], "https://grafana.example")
        let reader = ("Authorization", "Basic " + Data("reader:reader-pass".utf8).base64EncodedString())
        let read = try tally.client.request("GET", "/api/v1/labels", headers: [grafana, ("X-Scope-OrgID", "acme"), reader])
        XCTAssertEqual(read.status, 200, read.body)
        XCTAssertEqual(read.headers["access-control-allow-origin"], "https://grafana.example")
    }

    func testAnOriginPatternThatIsNotARegularExpressionStopsTheServerFromStarting() throws {
        let run = try runCommand(Binaries.tally, ["serve", "--listen", "127.0.0.1:0", "--storage", root + "/tally", "--web.cors.origin", "(grafana"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("--web.cors.origin"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tally"), "nothing is created before the flags are checked")
    }
}
