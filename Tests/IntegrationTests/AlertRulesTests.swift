import Foundation
import TallyLoad
import TallyWire
import XCTest

/// docs/alerts.yml: promtool accepts it, and each alert fires in a real Prometheus 2.42 that scrapes
/// a real `tally serve` in which the test reproduces the alert's condition.
final class AlertRulesTests: XCTestCase {
    private static let rules = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/alerts.yml").standardized.path
    private static let alertNames: Set = ["TallyTenantStoppedSending", "TallyWALFsyncSlow", "TallyCompactionFailing", "TallyDiskFilling", "TallyRefusalRateHigh"]
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("alerts")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testRulesPassPromtool() throws {
        let check = try runCommand(try Binaries.debian("promtool"), ["check", "rules", Self.rules])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("SUCCESS: \(Self.alertNames.count) rules found"), check.stdout)
        let shipped = try String(contentsOfFile: Self.rules, encoding: .utf8)
        for name in Self.alertNames { XCTAssertTrue(shipped.contains("- alert: \(name)\n"), name) }
    }

    private static let writeHeaders = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]

    private func write(_ client: LoopbackHTTP, tenant: String, _ timestamps: [Int64]) throws -> LoopbackHTTP.Response {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "m")], samples: timestamps.map { WireSample(timestamp: $0, valueBits: 1.0.bitPattern) })
        return try client.request("POST", "/api/v1/write", headers: Self.writeHeaders + [("THANOS-TENANT", tenant)], body: encoder.compressed())
    }

    private var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The reproductions, all against one server and one Prometheus:
    /// - stopped sending: tenant `quiet` last wrote a sample an hour old;
    /// - slow fsync: the server runs with `TALLY_TEST_WAL_SYNC_DELAY_MS=600`, a disk whose syncs take
    ///   600 ms, while tenant `busy` writes;
    /// - compaction failing: tenant `broken` has four blocks with a flipped byte in each chunk file
    ///   when an admin compaction runs;
    /// - disk filling: a file of up to 2 GiB is allocated next to the storage between two scrapes;
    /// - refusal rate: tenant `refused` sends only samples an hour in the future, and corrupt bodies.
    /// The rules are the shipped ones with every `for:` set to 0s, so an alert fires on its first true
    /// evaluation; the ranges stay as shipped (rate and predict_linear need only two scrapes).
    func testEveryAlertFiresWhenItsConditionIsReproduced() throws {
        let shipped = try String(contentsOfFile: Self.rules, encoding: .utf8)
        let rules = shipped.replacingOccurrences(of: #"(?m)^(\s+)for: \S+$"#, with: "$1for: 0s", options: .regularExpression)
        XCTAssertNotEqual(rules, shipped)
        try rules.write(toFile: root + "/alerts.yml", atomically: true, encoding: .utf8)

        let server = try TallyServerProcess(storage: root + "/storage", extraArguments: ["--compaction-interval", "0s", "--web.enable-admin-api"],
                                            environment: ["TALLY_TEST_WAL_SYNC_DELAY_MS": "600"])
        try server.waitReady()
        let client = server.client
        XCTAssertEqual(try write(client, tenant: "quiet", [now - 3600 * 1000]).status, 204)
        // 10 hours of one series: the head cuts four 2 h blocks.
        let sixHours: Int64 = 6 * 3600 * 1000
        let base = (now - 13 * 3600 * 1000) / sixHours * sixHours
        XCTAssertEqual(try write(client, tenant: "broken", (0...120).map { base + Int64($0) * 300_000 }).status, 204)
        let deadline = Date().addingTimeInterval(30)
        while try MetricsPage(of: server)["tally_blocks_loaded{tenant=\"broken\"}"] != 4 {
            guard Date() < deadline else { return XCTFail("no 4 blocks within 30 s: \(server.log)") }
            usleep(50_000)
        }
        let tenantDirectory = root + "/storage/broken"
        for block in try FileManager.default.contentsOfDirectory(atPath: tenantDirectory) where block.count == 26 {
            try flipMiddleByte(tenantDirectory + "/" + block + "/chunks/000001")
        }

        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in
            """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: ['\(self.root)/alerts.yml']
            scrape_configs:
              - job_name: tally
                static_configs:
                  - targets: ['127.0.0.1:\(server.port)']
            """
        }, arguments: ["--storage.tsdb.path=\(root)/data"])
        try prometheus.waitReady()
        // Counters and the free bytes need a scrape before the change for increase() and predict_linear().
        try waitForPrometheus(prometheus, "two scrapes of Tally") { _ in
            let answer = try prometheus.client().request("GET", "/api/v1/query?query=" + LoopbackHTTP.escaped("count_over_time(tally_storage_available_bytes[1m]) >= 2"))
            return answer.body.contains("\"value\"")
        }

        let compaction = try client.request("POST", "/api/v1/admin/compact?tenant=broken")
        XCTAssertEqual(compaction.status, 500, compaction.body)
        let filler = root + "/filler"
        defer { try? FileManager.default.removeItem(atPath: filler) }
        try allocate(filler, bytes: min(2 << 30, Int(try MetricsPage(of: server)["tally_storage_available_bytes"] ?? 0) / 4))

        // Refusals name a tenant once it exists (a write that stores nothing creates none).
        XCTAssertEqual(try write(client, tenant: "refused", [now]).status, 204)
        var firing: [[String: String]] = []
        try waitForPrometheus(prometheus, "every alert firing") { prometheus in
            XCTAssertEqual(try write(client, tenant: "busy", [now]).status, 204)
            XCTAssertEqual(try write(client, tenant: "refused", [now + 3600 * 1000]).status, 400)
            XCTAssertEqual(try client.request("POST", "/api/v1/write", headers: Self.writeHeaders + [("THANOS-TENANT", "refused")], body: [0xff, 0xff]).status, 400)
            firing = try firingAlerts(prometheus)
            return Self.alertNames.isSubset(of: Set(firing.compactMap { $0["alertname"] }))
                && firing.contains { $0["alertname"] == "TallyTenantStoppedSending" && $0["tenant"] == "quiet" }
                && firing.contains { $0["alertname"] == "TallyRefusalRateHigh" && $0["tenant"] == "refused" }
                && firing.contains { $0["alertname"] == "TallyRefusalRateHigh" && $0["tenant"] == nil }
        }
        XCTAssertFalse(firing.contains { $0["alertname"] == "TallyTenantStoppedSending" && $0["tenant"] == "busy" }, "\(firing)")
        XCTAssertFalse(firing.contains { $0["alertname"] == "TallyRefusalRateHigh" && $0["tenant"] == "busy" }, "\(firing)")
        XCTAssertTrue(firing.contains { $0["alertname"] == "TallyCompactionFailing" && $0["trigger"] == "admin" }, "\(firing)")
        prometheus.stop()
        server.stop(SIGTERM)
    }

    /// Runs `step` about every 300 ms until it returns true, for at most `seconds`.
    private func waitForPrometheus(_ prometheus: PrometheusProcess, _ what: String, seconds: TimeInterval = 60,
                                   _ step: (PrometheusProcess) throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try !step(prometheus) {
            guard Date() < deadline else {
                let alerts = (try? prometheus.client().request("GET", "/api/v1/alerts").body) ?? ""
                throw TestEnvironmentFailure(description: "\(what): not within \(seconds)s. Alerts: \(alerts)\nPrometheus log:\n\(prometheus.logTail)")
            }
            usleep(300_000)
        }
    }

    /// The labels of every firing alert (`/api/v1/alerts`).
    private func firingAlerts(_ prometheus: PrometheusProcess) throws -> [[String: String]] {
        let answer = try prometheus.client().request("GET", "/api/v1/alerts")
        let json = try JSONSerialization.jsonObject(with: Data(answer.bytes)) as? [String: Any]
        let alerts = (json?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
        return alerts.filter { $0["state"] as? String == "firing" }.compactMap { $0["labels"] as? [String: String] }
    }

    private func flipMiddleByte(_ path: String) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2)
        let byte = try XCTUnwrap(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: size / 2)
        try handle.write(contentsOf: [byte ^ 0xff])
    }

    /// Takes `bytes` of the filesystem at once (posix_fallocate), as a filling disk does.
    private func allocate(_ path: String, bytes: Int) throws {
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        guard fd >= 0 else { throw TestEnvironmentFailure(description: "open \(path): errno \(errno)") }
        defer { close(fd) }
        let result = posix_fallocate(fd, 0, off_t(bytes))
        guard result == 0 else { throw TestEnvironmentFailure(description: "posix_fallocate \(bytes) bytes: error \(result)") }
    }
}
