import Foundation
import Synchronization
import TallyLoad
import TallyStorage
import TallyWire
import XCTest

/// The header with which the storage's owner (the tally CLI) reaches the admin endpoints.
private let adminTokenHeader = "X-Tally-Admin-Token"

/// What a hostile or buggy client found, each answered with a clear 4xx while the server keeps
/// serving every tenant and restarts cleanly afterwards; against a real `tally serve` on loopback.
final class HostileInputTests: XCTestCase {
    private var storage = ""
    private var server: TallyServerProcess!

    override func setUpWithError() throws {
        storage = try makeTemporaryDirectory("hostile")
    }

    override func tearDown() {
        server?.stop(SIGTERM)
        try? FileManager.default.removeItem(atPath: storage)
        try? FileManager.default.removeItem(atPath: storage + ".log")
    }

    private func start(_ arguments: [String] = []) throws {
        server = try TallyServerProcess(storage: storage, extraArguments: arguments)
        try server.waitReady()
    }

    private static let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]

    private func write(_ series: [([(String, String)], [WireSample])], tenant: String, headers: [(String, String)] = [],
                       client: LoopbackHTTP? = nil) throws -> LoopbackHTTP.Response {
        var encoder = WriteRequestEncoder()
        for (labels, samples) in series { encoder.addSeries(labels: labels, samples: samples) }
        return try (client ?? server.client).request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", tenant)] + headers,
                                                     body: encoder.compressed())
    }

    private func sample(_ t: Int64, _ v: Double = 1) -> WireSample { WireSample(timestamp: t, valueBits: v.bitPattern) }
    private var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func testEdgeTimestampsAreRefusedAndTheServerKeepsServingAndRestarting() throws {
        try start()
        let t = now
        let edge = try write([([("__name__", "m")], [sample(t - 60_000), sample(.max)])], tenant: "a")
        XCTAssertEqual(edge.status, 400, edge.body)
        XCTAssertTrue(edge.body.contains("timestamp_out_of_bounds=1"), edge.body)
        // A first sample far in the past on a new tenant, then an ordinary write to it.
        let oldest = try write([([("__name__", "m")], [sample(.min + 1)])], tenant: "b")
        XCTAssertEqual(oldest.status, 400, oldest.body)
        XCTAssertTrue(oldest.body.contains("timestamp_out_of_bounds=1"), oldest.body)
        XCTAssertEqual(try write([([("__name__", "m")], [sample(t)])], tenant: "b").status, 204)
        // Further than --limits.max-future (10m) ahead is refused; just inside it is kept.
        let future = try write([([("__name__", "m")], [sample(t + 11 * 60_000), sample(t + 9 * 60_000)])], tenant: "a")
        XCTAssertEqual(future.status, 400, future.body)
        XCTAssertTrue(future.body.contains("stored 1 of 2"), future.body)
        let metrics = try server.client.request("GET", "/metrics").body
        XCTAssertTrue(metrics.contains("tally_samples_rejected_total{tenant=\"a\",reason=\"timestamp_out_of_bounds\"} 2"), metrics)

        server.stop(SIGKILL)
        try start()
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "a"), "{__name__=\"m\"} 1 \(t - 60_000)\n{__name__=\"m\"} 1 \(t + 9 * 60_000)\n")
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "b"), "{__name__=\"m\"} 1 \(t)\n")
    }

    func testMetroculusAndCostDatesOutsideTheCalendarAre400() throws {
        try start()
        let cases = [
            "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=x&start_date=9223372036854775&end_date=9223372036854776",
            "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=x&start_date=-9223372036854775808&end_date=0",
            "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=x&start_date=0&end_date=99999999999999999999",
            "/api/v1/costs/daily?start=0000-01-01&end=9999-12-31",
        ]
        for path in cases {
            let answer = try server.client.request("GET", path, headers: [("THANOS-TENANT", "x")])
            XCTAssertEqual(answer.status, 400, "\(path): \(answer.body)")
        }
        XCTAssertEqual(try server.client.request("GET", "/-/ready").status, 200)
    }

    func testDescendingSamplesAreLinearAndDoNotStallOtherTenants() throws {
        try start(["--ooo-window", "1000d"])
        let base = now - 86_400_000
        let count: Int64 = 200_000
        let ascending = (0..<count).map { sample(base - count + $0) }
        let descending = (0..<count).map { sample(base - $0 - count - 1) }
        let clock = ContinuousClock()
        var started = clock.now
        XCTAssertEqual(try write([([("__name__", "up_order")], ascending)], tenant: "calm").status, 204)
        let inOrder = clock.now - started

        // Two descending requests at once for one tenant, while another tenant writes every 20 ms.
        let hostile = DispatchGroup()
        let statuses = Mutex<[Int]>([])
        let firstHostileAnswer = Mutex<ContinuousClock.Instant?>(nil)
        started = clock.now
        let port = server.port
        for k in 0..<2 {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "down_\(k)")], samples: descending)
            let body = encoder.compressed()
            DispatchQueue.global().async(group: hostile) {
                let status = (try? LoopbackHTTP(port: port, timeoutSeconds: 120).request(
                    "POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "hostile")], body: body).status) ?? -1
                statuses.withLock { $0.append(status) }
                firstHostileAnswer.withLock { $0 = $0 ?? clock.now }
            }
        }
        var worst = Duration.zero
        var calmAnswers: [ContinuousClock.Instant] = []
        let other = LoopbackConnection(server.client)
        var i: Int64 = 0
        while hostile.wait(timeout: .now() + .milliseconds(20)) == .timedOut && i < 3000 {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "calm_metric")], samples: [sample(base + i)])
            let sent = clock.now
            let answer = try other.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "calm")], body: encoder.compressed())
            XCTAssertEqual(answer.status, 204)
            worst = max(worst, clock.now - sent)
            calmAnswers.append(clock.now)
            i += 1
        }
        // An order, not a latency bound (this machine's load sets those): the other tenant's writes
        // are answered while the hostile tenant's requests are still being handled.
        let hostileEnd = try XCTUnwrap(firstHostileAnswer.withLock { $0 })
        let answeredMeanwhile = calmAnswers.filter { $0 < hostileEnd }.count
        let late = clock.now - started
        print("200,000 samples: ascending \(inOrder), two descending requests at once \(late); another tenant's slowest write \(worst) over \(i) writes, \(answeredMeanwhile) answered before the first descending request")
        XCTAssertEqual(statuses.withLock { $0 }, [204, 204])
        XCTAssertLessThan(late, inOrder * 2 * 10 + .seconds(2), "descending samples cost a constant factor more than ascending ones")
        XCTAssertGreaterThanOrEqual(answeredMeanwhile, 3, "another tenant's writes waited behind the hostile tenant")
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "hostile").split(separator: "\n").count, Int(2 * count))
    }

    /// Regexes that make a backtracking engine explode, against label values any sender can write:
    /// answered at once, by selectors and by `label_replace` (whose groups once went to Swift's
    /// backtracking `Regex` after a linear-time check that the value matches, so `(a|a)*c|(.*)`,
    /// which matches through its second branch, pinned a thread and outlived every timeout; so did
    /// `\p{Greek}`, which went to that engine whole).
    func testRegexesThatExplodeInBacktrackingEnginesAnswerAtOnce() throws {
        try start()
        let pod = String(repeating: "a", count: 40), greek = String(repeating: "α", count: 40)
        XCTAssertEqual(try write([([("__name__", "m"), ("g", greek), ("pod", pod)], [sample(now)])], tenant: "acme").status, 204)
        let queries = [
            (#"label_replace(m, "x", "$2", "pod", "(a|a)*c|(.*)")"#, #""x":"\#(pod)""#),
            (#"label_replace(m, "x", "$2", "g", "(\\p{Greek}|\\p{Greek})*b|(.*)")"#, #""x":"\#(greek)""#),
            (#"m{g=~"(\\p{Greek}|\\p{Greek})*b"}"#, #""result":[]"#),
            (#"count(m{pod=~"(a|aa)*b|(a+a+)+", g=~"(\\pL|\\p{Greek})*"})"#, #""value":["#),
        ]
        for (query, expected) in queries {
            let answer = try server.client.request("GET", "/api/v1/query?tenant=acme&query=" + QueryParameterOracleTests.escape(query))
            XCTAssertEqual(answer.status, 200, "\(query): \(answer.body)")
            XCTAssertTrue(answer.body.contains(expected), "\(query): \(answer.body)")
        }
    }

    /// `function` applied `levels` times to a vector whose label `a` is "0123456789".
    private static func nested(_ levels: Int, _ function: (String) -> String) -> String {
        (0..<levels).reduce(#"label_replace(vector(1), "a", "0123456789", "", "")"#) { query, _ in function(query) }
    }

    /// Label `a` of `inner` made ten times as long by `label_join`, which needs no regex.
    private static func joinTenfold(_ inner: String) -> String {
        #"label_join(\#(inner), "a", "", \#(Array(repeating: #""a""#, count: 10).joined(separator: ", ")))"#
    }

    /// `label_replace` nested ten deep can grow a label value tenfold a level, to gigabytes from a
    /// query of a few hundred bytes (Prometheus has no bound). The label values a query makes are held
    /// to 16 bytes for each sample `--query.max-samples` allows: 1,000 samples allow 16,000 bytes,
    /// which three levels (10 + 100 + 1,000 + 10,000 bytes) stay under and four pass.
    func testLabelValuesAQueryMakesAreBoundedByTheSampleLimit() throws {
        try start(["--query.max-samples", "1000"])
        let replaceTenfold = { (inner: String) in #"label_replace(\#(inner), "a", "\#(String(repeating: "$1", count: 10))", "a", "(.*)")"# }
        for function in [replaceTenfold, Self.joinTenfold] {
            let allowed = try server.client.request("GET", "/api/v1/query?time=0&query=" + QueryParameterOracleTests.escape(Self.nested(3, function)))
            XCTAssertEqual(allowed.status, 200, allowed.body)
            XCTAssertTrue(allowed.body.contains(String(repeating: "0123456789", count: 1_000)), allowed.body.prefix(200).description)
            let refused = try server.client.request("GET", "/api/v1/query?time=0&query=" + QueryParameterOracleTests.escape(Self.nested(4, function)))
            XCTAssertEqual(refused.status, 422, refused.body)
            XCTAssertTrue(refused.body.contains("would pass 16000 bytes"), refused.body)
        }
        XCTAssertEqual(try server.client.request("GET", "/api/v1/query?query=1").status, 200)
    }

    /// A value built to megabytes by nested `label_join`s (quick to make) and then matched by
    /// `label_replace` takes the automaton seconds: the query's `timeout` must still end it, with
    /// Prometheus' timeout answer, where the old code checked the deadline only between steps and
    /// answered 200 seconds later.
    func testLabelReplaceOverAHugeValueEndsAtTheQueryTimeout() throws {
        try start()
        let query = #"count(label_replace(\#(Self.nested(6, Self.joinTenfold)), "b", "$1", "a", "(.)*z"))"#
        let answer = try server.client.request("GET", "/api/v1/query?time=0&timeout=200ms&query=" + QueryParameterOracleTests.escape(query))
        XCTAssertEqual(answer.status, 503, answer.body.prefix(300).description)
        XCTAssertTrue(answer.body.contains(#""errorType":"timeout""#), answer.body.prefix(300).description)
        XCTAssertEqual(try server.client.request("GET", "/api/v1/query?query=1").status, 200)
    }

    func testTenantSourcesThatDisagreeAreRefusedOnWritesAndReads() throws {
        try start()
        let body = { () -> [UInt8] in
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: 1_000, valueBits: 0)])
            return encoder.compressed()
        }()
        let both = try server.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("X-Scope-OrgID", "acme"), ("THANOS-TENANT", "beta")], body: body)
        XCTAssertEqual(both.status, 400, both.body)
        XCTAssertTrue(both.body.contains("disagree"), both.body)
        let twice = try server.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", "acme"), ("THANOS-TENANT", "beta")], body: body)
        XCTAssertEqual(twice.status, 400, twice.body)
        let agreeing = try server.client.request("POST", "/api/v1/write?tenant=acme", headers: Self.protobuf + [("X-Scope-OrgID", "acme"), ("THANOS-TENANT", "acme")], body: body)
        XCTAssertEqual(agreeing.status, 204, agreeing.body)
        for path in ["/api/v1/costs/daily?start=2024-01-01&end=2024-01-01&tenant=beta",
                     "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=beta&start_date=0&end_date=86400"] {
            let read = try server.client.request("GET", path, headers: [("X-Scope-OrgID", "acme")])
            XCTAssertEqual(read.status, 400, "\(path): \(read.body)")
        }
        // A parameter given twice names two tenants: a proxy appending its own `tenant=` after the
        // client's must not be outvoted, on writes, reads and the cost endpoints alike.
        let appended = try server.client.request("POST", "/api/v1/write?tenant=beta&tenant=acme", headers: Self.protobuf, body: body)
        XCTAssertEqual(appended.status, 400, appended.body)
        XCTAssertTrue(appended.body.contains(#"tenant parameter="beta", tenant parameter="acme""#), appended.body)
        for path in ["/api/v1/query?query=m&time=1&tenant=beta&tenant=acme", "/api/v1/labels?tenant=beta&tenant=acme",
                     "/api/v1/costs/daily?start=2024-01-01&end=2024-01-01&tenant=beta&tenant=acme",
                     "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=beta&cloud_account_id=acme&start_date=0&end_date=86400"] {
            let read = try server.client.request("GET", path)
            XCTAssertEqual(read.status, 400, "\(path): \(read.body)")
            XCTAssertTrue(read.body.contains("disagree"), "\(path): \(read.body)")
        }
        let posted = try server.client.request("POST", "/api/v1/query?tenant=beta", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                               body: Array("query=m&time=1&tenant=acme".utf8))
        XCTAssertEqual(posted.status, 400, posted.body)
        XCTAssertEqual(try server.client.request("GET", "/api/v1/query?query=count(m)&time=1&tenant=acme&tenant=acme").body,
                       #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/beta"))
    }

    func testAdminEndpointsNeedTheFlagOrTheStorageTokenAndRefuseOtherOrigins() throws {
        try start()
        XCTAssertEqual(try write([([("__name__", "m")], [sample(now)])], tenant: "acme").status, 204)
        for path in ["/api/v1/admin/compact", "/api/v1/admin/retention?keep=1ms", "/api/v1/admin/tsdb/delete_series?match[]=m"] {
            let open = try server.client.request("POST", path, headers: [("THANOS-TENANT", "acme")])
            XCTAssertEqual(open.status, 403, "\(path) without --web.enable-admin-api: \(open.body)")
            let wrong = try server.client.request("POST", path, headers: [("THANOS-TENANT", "acme"), (adminTokenHeader, "0123")])
            XCTAssertEqual(wrong.status, 403, "\(path) with another storage's token: \(wrong.body)")
            XCTAssertNil(wrong.headers["tally-storage"], "a wrong token is not told where the storage is")
        }
        let tokenPath = storage + "/" + ".admin-token"
        let attributes = try FileManager.default.attributesOfItem(atPath: tokenPath)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let owner = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=m&dry_run=1",
                                              headers: [("THANOS-TENANT", "acme"), (adminTokenHeader, token)])
        XCTAssertEqual(owner.status, 200, owner.body)
        XCTAssertNotNil(owner.headers["tally-storage"], "the storage's own token is told which storage answered")
        XCTAssertTrue(server.log.contains("admin call"), "admin calls are logged")
        // dry_run is read as Go reads a boolean: a value that is none is refused, never taken for "no".
        for (value, status) in [("t", 200), ("True", 200), ("yes", 400), ("on", 400), ("2", 400)] {
            let answer = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=m&dry_run=" + value,
                                                   headers: [("THANOS-TENANT", "acme"), (adminTokenHeader, token)])
            XCTAssertEqual(answer.status, status, "dry_run=\(value): \(answer.body)")
        }
        // A form POST from a web page of another origin, even with the token.
        let crossOrigin = try server.client.request("POST", "/api/v1/admin/tsdb/delete_series?match[]=m",
                                                    headers: [("THANOS-TENANT", "acme"), (adminTokenHeader, token), ("Origin", "http://evil.example")])
        XCTAssertEqual(crossOrigin.status, 403, crossOrigin.body)
        let crossWrite = try write([([("__name__", "m")], [sample(now)])], tenant: "acme", headers: [("Origin", "http://evil.example")])
        XCTAssertEqual(crossWrite.status, 403, crossWrite.body)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "acme").split(separator: "\n").count, 1)

        // The CLI asks the server that holds its storage, and refuses one that serves another store.
        let cli = try runCommand(Binaries.tally, ["delete-series", "--storage", storage, "--tenant", "acme", "--match", "m",
                                                  "--dry-run", "--server-port", String(server.port)])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        let elsewhere = try makeTemporaryDirectory("hostile-other")
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        let otherServer = try TallyServerProcess(storage: elsewhere)
        defer { otherServer.stop(SIGTERM) }
        try otherServer.waitReady()
        XCTAssertEqual(try write([([("__name__", "m")], [sample(now)])], tenant: "acme", client: otherServer.client).status, 204)
        let mistaken = try runCommand(Binaries.tally, ["compact", "--storage", elsewhere, "--tenant", "acme", "--server-port", String(server.port)])
        XCTAssertEqual(mistaken.status, 1, mistaken.stdout)
        XCTAssertTrue(mistaken.stderr.contains("does not serve"), mistaken.stderr)

        server.stop(SIGTERM)
        try start(["--web.enable-admin-api"])
        let network = try server.client.request("POST", "/api/v1/admin/compact", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(network.status, 200, network.body)
    }

    func testLabelRulesAndLimitsAtTheirEdges() throws {
        try start(["--limits.max-label-names-per-series", "4", "--limits.max-label-name-length", "8", "--limits.max-label-value-length", "16",
                   "--limits.max-series-per-tenant", "5", "--limits.max-series-per-metric", "3", "--limits.max-samples-per-request", "10",
                   "--limits.max-tenants", "2"])
        let t = now
        func refusal(_ labels: [(String, String)], _ reason: String, line: UInt = #line) throws {
            let answer = try write([([("__name__", "ok")], [sample(t)]), (labels, [sample(t)])], tenant: "limits")
            XCTAssertEqual(answer.status, 400, answer.body, line: line)
            XCTAssertTrue(answer.body.contains("\(reason)=1"), answer.body, line: line)
        }
        try refusal([("__name__", "m"), ("a b", "x")], "invalid_label_name")
        try refusal([("__name__", "m"), ("a{b}", "x")], "invalid_label_name")
        try refusal([("__name__", "m"), ("a\nb", "x")], "invalid_label_name")
        try refusal([("__name__", "m"), ("1a", "x")], "invalid_label_name")
        try refusal([("__name__", "bad-name")], "invalid_metric_name")
        try refusal([("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")], "max_label_names_per_series")
        XCTAssertEqual(try write([([("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")], [sample(t)])], tenant: "limits").status, 204)
        try refusal([("__name__", "m"), ("abcdefghi", "x")], "max_label_name_length")
        XCTAssertEqual(try write([([("__name__", "m"), ("abcdefgh", "x")], [sample(t)])], tenant: "limits").status, 204)
        try refusal([("__name__", "m"), ("a", String(repeating: "v", count: 17))], "max_label_value_length")
        XCTAssertEqual(try write([([("__name__", "m"), ("a", String(repeating: "v", count: 16))], [sample(t)])], tenant: "limits").status, 204)
        // Series so far: ok, m{a,b,c}, m{abcdefgh}, m{a=vvv...}; per metric at most 3, per tenant at most 5.
        try refusal([("__name__", "m"), ("x", "2")], "max_series_per_metric")
        XCTAssertEqual(try write([([("__name__", "n")], [sample(t)])], tenant: "limits").status, 204)
        try refusal([("__name__", "o")], "max_series_per_tenant")
        // Existing series keep taking samples at the limit.
        XCTAssertEqual(try write([([("__name__", "o")], [])], tenant: "limits").status, 204)
        XCTAssertEqual(try write([([("__name__", "n")], [sample(t + 1)])], tenant: "limits").status, 204)

        let many = try write([([("__name__", "n")], (2...12).map { sample(t + Int64($0)) })], tenant: "limits")
        XCTAssertEqual(many.status, 400, many.body)
        XCTAssertTrue(many.body.contains("max_samples_per_request"), many.body)
        XCTAssertEqual(try write([([("__name__", "n")], (2...11).map { sample(t + Int64($0)) })], tenant: "limits").status, 204)

        XCTAssertEqual(try write([([("__name__", "m")], [sample(t)])], tenant: "second").status, 204)
        let third = try write([([("__name__", "m")], [sample(t)])], tenant: "third")
        XCTAssertEqual(third.status, 400, third.body)
        XCTAssertTrue(third.body.contains("max_tenants"), third.body)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/third"))

        let metrics = try server.client.request("GET", "/metrics").body
        for reason in ["invalid_label_name\"} 4", "max_series_per_metric\"} 1", "max_series_per_tenant\"} 1", "max_samples_per_request\"} 11",
                       "max_label_names_per_series\"} 1"] {
            XCTAssertTrue(metrics.contains("tally_samples_rejected_total{tenant=\"limits\",reason=\"\(reason)"), "\(reason)\n\(metrics)")
        }
        // Nothing refused was stored; dump's line format holds.
        let dump = try tallyDump(storage: storage, tenant: "limits")
        XCTAssertFalse(dump.contains("a b") || dump.contains("bad-name") || dump.contains("\"o\""), dump)
    }

    func testIngestionRateLimitAnswers429WithRetryAfterAndPerTenantOverridesReload() throws {
        let config = storage + "-limits.yaml"
        defer { try? FileManager.default.removeItem(atPath: config) }
        try "tenants:\n  slow:\n    ingestion_rate: 1\n    ingestion_burst: 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        try start(["--limits.config-file", config, "--limits.max-past", "1h"])
        let t = now
        // --limits.max-past 1h: an hour and a minute old is refused, 59 minutes is kept.
        let past = try write([([("__name__", "old")], [sample(t - 61 * 60_000), sample(t - 59 * 60_000)])], tenant: "fast")
        XCTAssertEqual(past.status, 400, past.body)
        XCTAssertTrue(past.body.contains("stored 1 of 2") && past.body.contains("timestamp_out_of_bounds=1"), past.body)
        let five = (0..<5).map { sample(t - 10_000 + Int64($0)) }
        XCTAssertEqual(try write([([("__name__", "m")], five)], tenant: "slow").status, 204)
        let over = try write([([("__name__", "m")], [sample(t)])], tenant: "slow")
        XCTAssertEqual(over.status, 429, over.body)
        XCTAssertNotNil(over.headers["retry-after"].flatMap(Int.init), "\(over.headers)")
        XCTAssertEqual(try write([([("__name__", "m")], five)], tenant: "fast").status, 204, "other tenants keep the default rate")
        XCTAssertEqual(try write([([("__name__", "m")], [sample(t + 1)])], tenant: "fast").status, 204)
        XCTAssertTrue(try server.client.request("GET", "/metrics").body.contains("tally_samples_rejected_total{tenant=\"slow\",reason=\"rate_limited\"} 1"))

        // An edited file applies on SIGHUP; one that does not parse leaves the limits as they were.
        try "tenants:\n  slow:\n    max_series_per_tenant: 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        try waitFor("limits reloaded") { self.server.log.contains("reloaded \(config)") }
        XCTAssertEqual(try write([([("__name__", "m")], [sample(t + 1)])], tenant: "slow").status, 204)
        let second = try write([([("__name__", "m2")], [sample(t)])], tenant: "slow")
        XCTAssertTrue(second.body.contains("max_series_per_tenant=1"), second.body)
        try "tenants: [not, a, mapping\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        try waitFor("bad file reported") { self.server.log.contains("not reloaded") }
        XCTAssertTrue(try write([([("__name__", "m3")], [sample(t)])], tenant: "slow").body.contains("max_series_per_tenant=1"))
    }

    private func waitFor(_ what: String, seconds: Double = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { throw NSError(domain: "wait", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(what) not seen in \(seconds) s"]) }
            usleep(20_000)
        }
    }
}
