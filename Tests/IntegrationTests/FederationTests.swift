import Foundation
import TallyLoad
import TallyWire
import XCTest

/// `GET /federate`, answered as Prometheus 2.42 answers it (a running Prometheus given the same
/// remote-write requests is the oracle, byte for byte), only ever from the named tenant; and a
/// real Prometheus scraping a tenant through it.
final class FederationTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("federation")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private static let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
                                   ("X-Prometheus-Remote-Write-Version", "0.1.0")]
    private static let staleMarker: UInt64 = 0x7ff0_0000_0000_0002

    /// Twenty-five series answer `{job=~".+"}`, which Prometheus sorts by name with an unstable sort
    /// (it keeps label order only up to twelve): values written in each of expfmt's forms, a label
    /// value to escape, one series with an `instance`, fifteen whose name sorts after a label name
    /// (`A`), fourteen of them of one name, and series left out for a staleness marker or a last
    /// sample older than the lookback.
    private func request(now: Int64) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        func add(_ labels: [(String, String)], _ samples: [(Int64, UInt64)]) {
            encoder.addSeries(labels: labels, samples: samples.map { WireSample(timestamp: now - $0.0 * 1000, valueBits: $0.1) })
        }
        add([("__name__", "fed_cost"), ("job", "kubecost"), ("zone", "a")], [(240, 1.5.bitPattern), (120, 2.25.bitPattern), (60, 0.1.bitPattern)])
        add([("__name__", "fed_cost"), ("job", "kubecost"), ("zone", "old")], [(400, 7.0.bitPattern)])
        add([("__name__", "fed_cost"), ("instance", "node-1:9100"), ("job", "kubecost"), ("zone", "c")], [(30, 1e6.bitPattern)])
        add([("__name__", "fed_gone"), ("job", "kubecost")], [(120, 5.0.bitPattern), (60, Self.staleMarker)])
        add([("__name__", "fed_odd"), ("job", "kubecost"), ("path", "C:\\dir \"x\"\nnext é")], [(90, (-0.0).bitPattern)])
        add([("__name__", "fed_special"), ("job", "kubecost"), ("v", "nan")], [(50, Double.nan.bitPattern)])
        add([("__name__", "fed_special"), ("job", "kubecost"), ("v", "inf")], [(50, Double.infinity.bitPattern)])
        add([("__name__", "fed_special"), ("job", "kubecost"), ("v", "-inf")], [(50, (-Double.infinity).bitPattern)])
        add([("__name__", "fed_values"), ("job", "kubecost"), ("v", "big")], [(45, 123_456_789.0.bitPattern)])
        add([("__name__", "fed_values"), ("job", "kubecost"), ("v", "small")], [(45, 0.00001.bitPattern)])
        add([("__name__", "fed_values"), ("job", "kubecost"), ("v", "one")], [(45, (-1.0).bitPattern)])
        add([("A", "first"), ("__name__", "fed_a_label_first"), ("job", "kubecost")], [(20, 0.0001.bitPattern)])
        // Fourteen series of one name: Go's sort moves them out of label order past twelve elements.
        for k in 0..<14 {
            add([("A", "a\((k * 5) % 14 + 10)"), ("__name__", "fed_many"), ("job", "kubecost")], [(15, Double(k).bitPattern)])
        }
        return encoder.compressed()
    }

    private static func encoded(_ selector: String) -> String {
        selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? selector
    }

    func testFederateAnswersAsPrometheus242ForTheSameWritesAndOnlyTheNamedTenants() throws {
        let tally = try TallyServerProcess(storage: root + "/tally")
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        let prometheus = try PrometheusProcess.started(in: root + "/oracle", arguments: ["--web.enable-remote-write-receiver"])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        let theirs = prometheus.client()

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let body = request(now: now)
        XCTAssertEqual(try theirs.request("POST", "/api/v1/write", headers: Self.protobuf, body: body).status, 204)
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "acme")], body: body).status, 204)
        var beta = WriteRequestEncoder()
        beta.addSeries(labels: [("__name__", "fed_cost"), ("job", "kubecost"), ("zone", "beta-only")], samples: [WireSample(timestamp: now - 10_000, valueBits: 3.0.bitPattern)])
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "beta")], body: beta.compressed()).status, 204)

        let everything = "/federate?match[]=" + Self.encoded(#"{job=~".+"}"#)
        let protobufFirst = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        let textFirst = "text/plain;version=0.0.4;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5"
        let openMetricsFirst = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        let cases: [(path: String, accept: String?)] = [
            (everything, nil),
            (everything, protobufFirst),
            (everything, textFirst),
            (everything, openMetricsFirst),
            ("/federate?match[]=fed_cost&match[]=" + Self.encoded(#"{zone="a"}"#) + "&match[]=" + Self.encoded(#"fed_values{v=~"b.*|one"}"#), nil),
            ("/federate?match[]=" + Self.encoded(#"{__name__=~"fed_(gone|cost)",zone!="c"}"#), protobufFirst),
            ("/federate?match[]=nothing_here", nil),
            ("/federate", nil),
            ("/federate?match[]=" + Self.encoded("{"), nil),
            ("/federate?match[]=" + Self.encoded("rate(fed_cost[5m])"), nil),
            ("/federate?match[]=" + Self.encoded("fed_cost offset 5m"), nil),
            ("/federate?match[]=" + Self.encoded("sum"), nil),
            ("/federate?match[]=" + Self.encoded("1 + fed_cost"), nil),
            ("/federate?match[]=" + Self.encoded(#"{job="kubecost",}"#), nil),
            // No matcher at all selects nothing, alone or beside another selector.
            ("/federate?match[]=" + Self.encoded("{}"), nil),
            ("/federate?match[]=" + Self.encoded("{}") + "&match[]=fed_cost", nil),
            ("/federate?match[]=", nil),
            ("/federate?match[]=fed_many", nil),
            // Parameters Go's ParseForm refuses: a broken escape (the pair is left out either way), a `;`.
            ("/federate?match[]=%zz", nil),
            ("/federate?match[]=fed_cost&x=%g1", nil),
            ("/federate?match[]=fed_cost;x=1", nil),
            ("/federate?match[]=fed_cost&%+1=2", nil),
        ]
        // The message after `error parsing regexp:` is Tally's own wording (docs/promql.md).
        let badRegex = "/federate?match[]=" + Self.encoded(#"{job=~"("}"#)
        var answered = 0
        for (path, accept) in cases {
            let headers = accept.map { [("Accept", $0)] } ?? []
            let expected = try theirs.request("GET", path, headers: headers)
            for (how, tenantHeaders, query) in [("header", [("THANOS-TENANT", "acme")], ""), ("?tenant=", [], "&tenant=acme")] {
                let ours = try tally.client.request("GET", path + (path.contains("?") ? query : query.replacingOccurrences(of: "&", with: "?")),
                                                    headers: headers + tenantHeaders)
                let context = "\(path) Accept \(accept ?? "none") tenant by \(how)"
                XCTAssertEqual(ours.status, expected.status, context)
                XCTAssertEqual(ours.headers["content-type"], expected.headers["content-type"], context)
                XCTAssertEqual(ours.bytes, expected.bytes, "\(context):\nours:\n\(ours.body)\ntheirs:\n\(expected.body)")
            }
            if expected.status == 200 { answered += expected.bytes.count }
        }
        let theirRefusal = try theirs.request("GET", badRegex), ourRefusal = try tally.client.request("GET", badRegex + "&tenant=acme")
        XCTAssertEqual(theirRefusal.status, 400)
        XCTAssertEqual(ourRefusal.status, 400)
        XCTAssertEqual(ourRefusal.headers["content-type"], theirRefusal.headers["content-type"])
        XCTAssertTrue(theirRefusal.body.hasPrefix("1:2: parse error: error parsing regexp: "), theirRefusal.body)
        XCTAssertTrue(ourRefusal.body.hasPrefix("1:2: parse error: error parsing regexp: "), ourRefusal.body)
        // The oracle holds what was written, in the forms the cases cover.
        let text = try theirs.request("GET", everything).body
        for line in ["# TYPE fed_a_label_first untyped\n", #"fed_a_label_first{A="first",job="kubecost",instance=""} 0.0001 "#,
                     #"fed_cost{instance="node-1:9100",job="kubecost",zone="c"} 1e+06 "#, #"path="C:\\dir \"x\"\nnext é""#,
                     #"v="nan",instance=""} NaN "#, #"v="-inf",instance=""} -Inf "#, #"v="big",instance=""} 1.23456789e+08 "#,
                     #"v="small",instance=""} 1e-05 "#, #"v="one",instance=""} -1 "#, #"instance=""} 0 "#] {
            XCTAssertTrue(text.contains(line), "Prometheus' answer has \(line):\n\(text)")
        }
        XCTAssertFalse(text.contains("fed_gone") || text.contains("zone=\"old\""), text)
        XCTAssertGreaterThan(answered, 2000)

        // Only the named tenant's series: beta's alone, and none for the default tenant, which never wrote.
        XCTAssertEqual(try tally.client.request("GET", everything + "&tenant=beta").body,
                       "# TYPE fed_cost untyped\nfed_cost{job=\"kubecost\",zone=\"beta-only\",instance=\"\"} 3 \(now - 10_000)\n")
        let none = try tally.client.request("GET", everything)
        XCTAssertEqual(none.status, 200)
        XCTAssertEqual(none.body, "")
        XCTAssertEqual(try tally.client.request("POST", everything, headers: [("THANOS-TENANT", "acme")]).status, 405)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tally/default-tenant"), "asking creates no tenant")
    }

    /// A Prometheus whose scrape job federates a tenant from Tally stores that tenant's latest
    /// samples, with their own timestamps and labels (`honor_labels`), and no other tenant's.
    func testAPrometheusFederatingATenantStoresItsLatestSamples() throws {
        let tally = try TallyServerProcess(storage: root + "/tally")
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "acme")], body: request(now: now)).status, 204)
        var beta = WriteRequestEncoder()
        beta.addSeries(labels: [("__name__", "fed_cost"), ("job", "kubecost"), ("zone", "beta-only")], samples: [WireSample(timestamp: now - 10_000, valueBits: 3.0.bitPattern)])
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "beta")], body: beta.compressed()).status, 204)

        let prometheus = try PrometheusProcess.started(in: root + "/federating", configuration: { [port = tally.port] _ in
            """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: tally-federation
                honor_labels: true
                metrics_path: /federate
                params:
                  'match[]': ['{job="kubecost"}']
                  tenant: ['acme']
                static_configs:
                  - targets: ['127.0.0.1:\(port)']
            """
        }, arguments: [])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        let client = prometheus.client()
        let query = "/api/v1/query?query=" + Self.encoded("fed_cost")
        var result: [[String: Any]] = []
        for _ in 0..<300 {
            let response = try client.request("GET", query)
            let data = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])?["data"] as? [String: Any]
            result = data?["result"] as? [[String: Any]] ?? []
            if result.count >= 2 { break }
            usleep(100_000)
        }
        let found = Dictionary(uniqueKeysWithValues: result.map { (($0["metric"] as? [String: String]) ?? [:], ($0["value"] as? [Any])?.last as? String) })
        XCTAssertEqual(found, [["__name__": "fed_cost", "job": "kubecost", "zone": "a"]: "0.1",
                               ["__name__": "fed_cost", "job": "kubecost", "zone": "c", "instance": "node-1:9100"]: "1000000"],
                       "the federated series, without the target's instance where the series had none: \(result)")
        // The sample keeps its own timestamp: a minute before the write, not the scrape's time.
        let at = "/api/v1/query?query=" + Self.encoded(#"timestamp(fed_cost{zone="a"})"#)
        let stamp = (((try JSONSerialization.jsonObject(with: Data(try client.request("GET", at).body.utf8)) as? [String: Any])?["data"] as? [String: Any])?["result"]
            as? [[String: Any]])?.first?["value"] as? [Any]
        XCTAssertEqual((stamp?.last as? String).flatMap(Double.init) ?? 0, Double(now - 60_000) / 1000, accuracy: 0.0005)
        let gone = try client.request("GET", "/api/v1/query?query=" + Self.encoded("fed_gone")).body
        XCTAssertTrue(gone.contains(#""result":[]"#), "a series ended by a staleness marker is not federated: \(gone)")
    }
}
