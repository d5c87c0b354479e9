import Foundation
import TallyLoad
import TallyWire
import XCTest

/// What an operator watches, through a real `tally serve`: every figure on /metrics after a short
/// scripted run, the log of background work one event a line, and writes that name no tenant.
final class ObservabilityTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("observe")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private static let writeHeaders = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]

    private func write(_ client: LoopbackHTTP, tenant: String?, _ series: [(labels: [(String, String)], timestamps: [Int64])]) throws -> LoopbackHTTP.Response {
        var encoder = WriteRequestEncoder()
        for s in series { encoder.addSeries(labels: s.labels, samples: s.timestamps.map { WireSample(timestamp: $0, valueBits: 1.0.bitPattern) }) }
        return try client.request("POST", "/api/v1/write", headers: Self.writeHeaders + (tenant.map { [("THANOS-TENANT", $0)] } ?? []),
                                  body: encoder.compressed())
    }

    private var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Waits (bounded) until `condition` holds on the server's /metrics page; returns that page.
    private func waitForMetrics(_ server: TallyServerProcess, _ what: String, seconds: TimeInterval = 60,
                                until condition: (MetricsPage) -> Bool) throws -> MetricsPage {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let page = try MetricsPage(of: server)
            if condition(page) { return page }
            guard Date() < deadline else { throw TestEnvironmentFailure(description: "\(what) not within \(seconds)s:\n\(page.text)\n\(server.log)") }
            usleep(50_000)
        }
    }

    /// Two tenants write; one series spanning 10 hours makes the head cut four 2 h blocks, which
    /// background compaction merges (3 into one 6 h block) and an admin retention run drops; a
    /// corrupt body, a sample out of bounds, a third tenant past --limits.max-tenants and unknown paths
    /// are refused. Then /metrics holds every figure, exact where the run decides it, and promtool
    /// parses the page.
    func testMetricsAfterAScriptedRunHoldEveryFigureAndParse() throws {
        let promtool = try Binaries.debian("promtool")
        let startedAt = Date().timeIntervalSince1970
        let server = try TallyServerProcess(storage: root + "/storage", extraArguments: ["--compaction-interval", "1s", "--web.enable-admin-api",
                                                                                       "--limits.max-tenants", "2"])
        try server.waitReady()
        let client = server.client

        // 6 h aligned, so the first three 2 h blocks fill one 6 h window, which lies before the end
        // of the fourth block: one level-up merge, then nothing more to plan.
        let sixHours: Int64 = 6 * 3600 * 1000
        let base = (now - 13 * 3600 * 1000) / sixHours * sixHours
        let alphaTimes = (0...120).map { base + Int64($0) * 300_000 }
        XCTAssertEqual(try write(client, tenant: "alpha", [([("__name__", "spread")], alphaTimes)]).status, 204)
        let betaTime = now - 60_000
        let beta = (0..<3).map { (labels: [("__name__", "up"), ("pod", "p\($0)")], timestamps: [betaTime]) }
        XCTAssertEqual(try write(client, tenant: "beta", beta).status, 204)
        let future = try write(client, tenant: "beta", [([("__name__", "up"), ("pod", "p0")], [now + 3600 * 1000])])
        XCTAssertEqual(future.status, 400, future.body)
        let corrupt = try client.request("POST", "/api/v1/write", headers: Self.writeHeaders + [("THANOS-TENANT", "beta")], body: Array("not snappy".utf8))
        XCTAssertEqual(corrupt.status, 400, corrupt.body)
        for path in ["/nowhere", "/api/v2/query?query=up", "/a/b/c"] { XCTAssertEqual(try client.request("GET", path).status, 404) }
        let third = try write(client, tenant: "gamma", [([("__name__", "up")], [betaTime])])
        XCTAssertEqual(third.status, 400, third.body)

        _ = try waitForMetrics(server, "4 blocks cut and compacted into 2") { page in
            page["tally_blocks_loaded{tenant=\"alpha\"}"] == 2 && page["tally_block_cuts_total"] == 4
        }
        let retention = try client.request("POST", "/api/v1/admin/retention?tenant=alpha&keep=2h")
        XCTAssertEqual(retention.status, 200, retention.body)
        let compaction = try client.request("POST", "/api/v1/admin/compact?tenant=alpha")
        XCTAssertEqual(compaction.status, 200, compaction.body)

        let page = try MetricsPage(of: server)
        func assertValue(_ series: String, _ expected: Double, line: UInt = #line) {
            XCTAssertEqual(page[series], expected, series, line: line)
        }
        func assertPositive(_ series: String, line: UInt = #line) {
            XCTAssertGreaterThan(page[series] ?? -1, 0, series, line: line)
        }
        // Per tenant, from its storage.
        assertValue("tally_head_series{tenant=\"alpha\"}", 1)
        assertValue("tally_head_series{tenant=\"beta\"}", 3)
        assertValue("tally_newest_sample_timestamp_seconds{tenant=\"alpha\"}", Double(alphaTimes.last!) / 1000)
        assertValue("tally_newest_sample_timestamp_seconds{tenant=\"beta\"}", Double(betaTime) / 1000)
        assertValue("tally_blocks_loaded{tenant=\"alpha\"}", 1)
        assertValue("tally_blocks_loaded{tenant=\"beta\"}", 0)
        assertPositive("tally_blocks_bytes{tenant=\"alpha\"}")
        assertValue("tally_blocks_bytes{tenant=\"beta\"}", 0)
        assertPositive("tally_wal_bytes{tenant=\"alpha\"}")
        assertPositive("tally_wal_bytes{tenant=\"beta\"}")
        assertValue("tally_head_out_of_order_bytes{tenant=\"alpha\"}", 0)
        assertValue("tally_samples_appended_total{tenant=\"alpha\"}", 121)
        // Maintenance: four cuts of one block each, background compaction, one admin run of each.
        assertValue("tally_block_cuts_failed_total", 0)
        assertValue("tally_block_cut_duration_seconds_count", 4)
        XCTAssertGreaterThanOrEqual(page["tally_compactions_total{trigger=\"background\"}"] ?? 0, 1)
        XCTAssertEqual(page["tally_compaction_duration_seconds_count{trigger=\"background\"}"], page["tally_compactions_total{trigger=\"background\"}"])
        assertValue("tally_compactions_failed_total{trigger=\"background\"}", 0)
        assertValue("tally_compactions_total{trigger=\"admin\"}", 1)
        assertValue("tally_compactions_failed_total{trigger=\"admin\"}", 0)
        assertValue("tally_retention_runs_total{trigger=\"admin\"}", 1)
        assertValue("tally_retention_run_duration_seconds_count{trigger=\"admin\"}", 1)
        assertValue("tally_retention_runs_failed_total{trigger=\"admin\"}", 0)
        assertValue("tally_retention_runs_total{trigger=\"background\"}", 0)
        // Requests: durations by handler and code; unknown paths are one handler, "other".
        assertValue("tally_http_request_duration_seconds_count{handler=\"/api/v1/write\",code=\"204\"}", 2)
        assertValue("tally_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",code=\"204\",le=\"+Inf\"}", 2)
        assertValue("tally_http_request_duration_seconds_count{handler=\"other\",code=\"404\"}", 3)
        XCTAssertFalse(page.text.contains("nowhere") || page.text.contains("/a/b/c") || page.text.contains("/api/v2/query"), page.text)
        assertValue("tally_http_request_duration_seconds_count{handler=\"/api/v1/write\",code=\"400\"}", 3)
        // Refusals: per sample with the tenant, whole requests by reason.
        assertValue("tally_samples_rejected_total{tenant=\"beta\",reason=\"timestamp_out_of_bounds\"}", 1)
        // A tenant that could not be created is no label value: senders cannot make series by naming tenants.
        assertValue("tally_samples_rejected_total{tenant=\"\",reason=\"max_tenants\"}", 1)
        XCTAssertFalse(page.text.contains("gamma"), page.text)
        assertValue("tally_write_requests_rejected_total{reason=\"malformed_body\"}", 1)
        for reason in ["body_too_large", "unsupported_media_type", "invalid_tenant"] { assertValue("tally_write_requests_rejected_total{reason=\"\(reason)\"}", 0) }
        assertValue("tally_writes_without_tenant_total", 0)
        assertPositive("tally_storage_available_bytes")
        XCTAssertGreaterThan(page["tally_storage_size_bytes"] ?? 0, page["tally_storage_available_bytes"] ?? .infinity)
        // The process.
        assertPositive("process_cpu_seconds_total")
        assertPositive("process_resident_memory_bytes")
        assertPositive("process_open_fds")
        XCTAssertGreaterThanOrEqual(page["process_max_fds"] ?? 0, page["process_open_fds"] ?? .infinity)
        let start = try XCTUnwrap(page["process_start_time_seconds"])
        XCTAssertTrue((startedAt - 5...Date().timeIntervalSince1970 + 1).contains(start), "process_start_time_seconds \(start), test started at \(startedAt)")

        let pageFile = root + "/metrics.txt"
        try page.text.write(toFile: pageFile, atomically: true, encoding: .utf8)
        let check = try runCommand("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, pageFile])
        XCTAssertEqual(check.status, 0, "promtool check metrics: \(check.stdout)\(check.stderr)")
        XCTAssertEqual(check.stdout + check.stderr, "", "promtool check metrics has remarks")

        server.stop(SIGTERM)
        assertEachLogLineIsOneEvent(server.log)
    }

    /// Compaction and retention log one line per merged group or dropped block and one per run,
    /// each with its own fields, never a whole report in one field.
    private func assertEachLogLineIsOneEvent(_ log: String, line: UInt = #line) {
        let lines = log.split(separator: "\n")
        // Every line is an event of its own: it starts with the timestamp swift-log's stream handler writes.
        for text in lines {
            XCTAssertNotNil(text.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} "#, options: .regularExpression), String(text), line: line)
            XCTAssertFalse(text.contains("report=") || text.contains("{\""), String(text), line: line)
        }
        let groups = lines.filter { $0.hasSuffix("compacted group") }
        XCTAssertEqual(groups.count, 1, log, line: line)
        for field in ["tenant=alpha", "trigger=background", "reason=level-up", "child=", "min_time=", "max_time="] {
            XCTAssertTrue(groups.first?.contains(field) == true, "\(field) in \(groups)", line: line)
        }
        XCTAssertEqual(groups.first.flatMap { $0.range(of: #"parents=[0-9A-Z]{26},[0-9A-Z]{26},[0-9A-Z]{26} "#, options: .regularExpression) } != nil, true,
                       "three parents in \(groups)", line: line)
        let runs = lines.filter { $0.hasSuffix("compaction done") }
        XCTAssertEqual(runs.count, 1, log, line: line)
        for field in ["blocks_after=2", "blocks_before=4", "failed_groups=0", "merged_groups=1", "duration_seconds="] {
            XCTAssertTrue(runs.first?.contains(field) == true, "\(field) in \(runs)", line: line)
        }
        XCTAssertEqual(lines.filter { $0.hasSuffix("retention dropped block") && $0.contains("trigger=admin") && $0.contains("tenant=alpha") }.count, 1, log, line: line)
        XCTAssertEqual(lines.filter { $0.hasSuffix("retention done") && $0.contains("dropped=1") }.count, 1, log, line: line)
        XCTAssertEqual(lines.filter { $0.hasSuffix("cut block") && $0.contains("tenant=alpha") && $0.contains("samples=24") }.count, 4, log, line: line)
    }

    /// A write naming no tenant is stored under --default-tenant, counted, and logged once per
    /// sender address (a refused one is neither); the addresses remembered for that are bounded, and
    /// past the bound the log says once that later senders are counted only.
    func testWritesWithoutTenantAreLoggedOncePerSenderAndCounted() throws {
        let server = try TallyServerProcess(storage: root + "/storage")
        try server.waitReady()
        func send(from source: String, tenant: String? = nil) throws {
            let client = LoopbackHTTP(port: server.port, source: source)
            XCTAssertEqual(try write(client, tenant: tenant, [([("__name__", "m")], [now])]).status, 204)
        }
        try send(from: "127.0.0.1")
        try send(from: "127.0.0.1")
        try send(from: "127.0.0.2")
        try send(from: "127.0.0.3", tenant: "named")
        // A write refused (here a body that is not snappy) was stored nowhere: neither logged nor counted.
        let refused = try LoopbackHTTP(port: server.port, source: "127.0.0.250")
            .request("POST", "/api/v1/write", headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")], body: Array("garbage".utf8))
        XCTAssertEqual(refused.status, 400)
        let noticed = "a write named no tenant and was stored under --default-tenant"
        func lines(_ text: String) -> [Substring] { server.log.split(separator: "\n").filter { $0.contains(text) } }
        XCTAssertEqual(lines(noticed).count, 2, server.log)
        XCTAssertEqual(lines("sender=127.0.0.1 ").count, 1, server.log)
        XCTAssertEqual(lines("sender=127.0.0.2 ").count, 1, server.log)
        XCTAssertEqual(lines("sender=127.0.0.250 ").count, 0, server.log)
        XCTAssertTrue(lines(noticed).allSatisfy { $0.contains("tenant=default-tenant") }, server.log)
        XCTAssertEqual(try MetricsPage(of: server)["tally_writes_without_tenant_total"], 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/storage/default-tenant"))

        // 1024 addresses are remembered: two so far, 1022 more are logged, then one line says the
        // rest go unlogged, and the last sender is counted only.
        for k in 0..<1024 { try send(from: "127.0.\(4 + k / 250).\(1 + k % 250)") }
        XCTAssertEqual(lines(noticed).count, 1024)
        XCTAssertEqual(lines("more senders wrote without naming a tenant than are remembered").count, 1, String(server.log.suffix(2000)))
        XCTAssertEqual(try MetricsPage(of: server)["tally_writes_without_tenant_total"], 3 + 1024)
        server.stop(SIGTERM)
    }
}
