import Foundation
import TallyLoad
import TallyWire
import XCTest

/// Prometheus' status endpoints, answered as Prometheus 2.42 answers them (a running Prometheus is
/// the oracle): `/api/v1/status/tsdb`, a tenant's head, its size and its largest cardinality counts,
/// for the same remote-write requests and only ever the named tenant's; `/api/v1/rules` and
/// `/api/v1/alerts`, empty as from a Prometheus without rule files.
final class StatusEndpointTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("status-endpoints")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Twelve metrics of 1 to 12 series, every series with its own `i` and a shared `job`, three
    /// samples each: every count the endpoint ranks differs from the others, so the top 10 of
    /// each is one list whatever order Prometheus meets its postings in.
    private func request(metricPrefix: String, now: Int64) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        for metric in 1...12 {
            for series in 0..<metric {
                encoder.addSeries(labels: [("__name__", "\(metricPrefix)_\(metric)"), ("i", "\(metric)-\(series)"), ("job", "kubecost")],
                                  samples: (0..<3).map { WireSample(timestamp: now - 180_000 + Int64($0) * 60_000, valueBits: Double(series).bitPattern) })
            }
        }
        return encoder.compressed()
    }

    private static let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
                                   ("X-Prometheus-Remote-Write-Version", "0.1.0")]

    private func data(_ response: LoopbackHTTP.Response, _ context: String) throws -> NSDictionary {
        XCTAssertEqual(response.status, 200, "\(context): \(response.body)")
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        XCTAssertEqual(object?["status"] as? String, "success", context)
        return try XCTUnwrap(object?["data"] as? NSDictionary, "\(context): \(response.body)")
    }

    func testTheHeadsCardinalityIsPrometheus242sForTheSameWritesAndOnlyTheNamedTenants() throws {
        let tally = try TallyServerProcess(storage: root + "/tally")
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        // Two Prometheus servers: one written to, one left empty. Prometheus keeps its cardinality
        // counts for 30 s once asked, so one server cannot be asked before and after the writes.
        let prometheus = try PrometheusProcess.started(in: root + "/written", arguments: ["--web.enable-remote-write-receiver"])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        let emptyPrometheus = try PrometheusProcess.started(in: root + "/empty", arguments: ["--web.enable-remote-write-receiver"])
        defer { stopChild(emptyPrometheus.process, SIGTERM, within: 10) }
        let theirClient = prometheus.client()
        let path = "/api/v1/status/tsdb"

        // Nothing written: Prometheus' empty head, and Tally's for a tenant that never wrote.
        let empty = try data(try emptyPrometheus.client().request("GET", path), "Prometheus, empty")
        XCTAssertEqual((empty["headStats"] as? NSDictionary)?["numSeries"] as? Int, 0)
        XCTAssertEqual(try data(try tally.client.request("GET", path, headers: [("THANOS-TENANT", "acme")]), "Tally, empty"), empty)

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let body = request(metricPrefix: "kubecost_cost", now: now)
        XCTAssertEqual(try theirClient.request("POST", "/api/v1/write", headers: Self.protobuf, body: body).status, 204)
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "acme")], body: body).status, 204)
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "beta")],
                                                body: request(metricPrefix: "beta_only", now: now)).status, 204)

        let theirs = try data(try theirClient.request("GET", path), "Prometheus")
        let stats = try XCTUnwrap(theirs["headStats"] as? NSDictionary)
        XCTAssertEqual(stats["numSeries"] as? Int, 78, "the oracle holds what was sent")
        XCTAssertEqual((theirs["seriesCountByMetricName"] as? [Any])?.count, 10)
        for (how, headers, query) in [("header", [("THANOS-TENANT", "acme")], ""), ("?tenant=", [], "?tenant=acme"),
                                      ("other header", [("X-Scope-OrgID", "acme")], "")] {
            let ours = try data(try tally.client.request("GET", path + query, headers: headers), how)
            XCTAssertEqual(ours, theirs, how)
        }
        // Another tenant's head holds only its own series; with no tenant named, the default
        // tenant's, which never wrote.
        let beta = try data(try tally.client.request("GET", path + "?tenant=beta"), "beta")
        let betaNames = (beta["seriesCountByMetricName"] as? [NSDictionary])?.compactMap { $0["name"] as? String } ?? []
        XCTAssertEqual(betaNames.count, 10)
        XCTAssertTrue(betaNames.allSatisfy { $0.hasPrefix("beta_only_") }, "\(betaNames)")
        XCTAssertEqual(try data(try tally.client.request("GET", path), "no tenant"), empty)
        // Asking creates no tenant.
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tally/default-tenant"))
    }

    func testRulesAndAlertsAreEmptyAsFromAPrometheusWithoutRuleFiles() throws {
        let tally = try TallyServerProcess(storage: root + "/tally")
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        let prometheus = try PrometheusProcess.started(in: root + "/no-rules", arguments: ["--web.enable-remote-write-receiver"])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        for path in ["/api/v1/rules", "/api/v1/rules?type=alert", "/api/v1/rules?type=RECORD", "/api/v1/rules?type=alerts",
                     "/api/v1/alerts", "/api/v1/alerts?type=x"] {
            let theirs = try prometheus.client().request("GET", path)
            for headers in [[], [("THANOS-TENANT", "acme")]] {
                let ours = try tally.client.request("GET", path, headers: headers)
                XCTAssertEqual(ours.status, theirs.status, path)
                XCTAssertEqual(ours.body, theirs.body, path)
            }
        }
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/rules?type=alerts").body,
                       #"{"status":"error","errorType":"bad_data","error":"invalid parameter \"type\": not supported value \"alerts\""}"#)
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/rules").status, 405)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tally/acme"), "asking creates no tenant")
    }
}
