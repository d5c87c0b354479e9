import Foundation
import TallyLoad
@testable import TallyStorage
import TallyWire
import XCTest

/// Behaviour the README and `tally serve --help` promise, each through a real `tally serve`: answers
/// and their reasons, tenant naming, WAL sync policies, shutdown, start-up refusals and metrics.
final class ClaimedPathsTests: XCTestCase {
    private let tenant = "claims"
    private var storage = ""

    override func setUpWithError() throws {
        storage = try makeTemporaryDirectory("claims")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: storage)
        try? FileManager.default.removeItem(atPath: storage + ".log")
    }

    private func startServer(_ arguments: [String] = [], environment: [String: String] = [:]) throws -> TallyServerProcess {
        let server = try TallyServerProcess(storage: storage, extraArguments: arguments, environment: environment)
        try server.waitReady()
        return server
    }

    /// A remote-write request's headers, with the header that names its tenant.
    private func headers(_ tenantHeader: (String, String)) -> [(String, String)] {
        [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), tenantHeader]
    }

    /// One series `name` with one sample per timestamp (value 1).
    /// A TimeSeries' `__name__` label field.
    private static func metricName(_ series: inout ProtobufWriter, _ name: String) {
        series.messageField(1) { label in
            label.bytesField(1, Array("__name__".utf8))
            label.bytesField(2, Array(name.utf8))
        }
    }

    private func body(_ name: String, at timestamps: [Int64]) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", name)], samples: timestamps.map { WireSample(timestamp: $0, valueBits: 1.0.bitPattern) })
        return encoder.compressed()
    }

    private func write(_ client: LoopbackHTTP, _ body: [UInt8], tenantHeader: (String, String)? = nil) throws -> LoopbackHTTP.Response {
        try client.request("POST", "/api/v1/write", headers: headers(tenantHeader ?? ("THANOS-TENANT", tenant)), body: body)
    }

    /// Tenant directories under the storage root.
    private func tenants() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: storage).filter { !$0.hasPrefix(".") }.sorted()
    }

    private var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func testOutOfOrderWindowZeroAnswers400OutOfOrder() throws {
        let server = try startServer(["--ooo-window", "0s"])
        let newest = now
        XCTAssertEqual(try write(server.client, body("late", at: [newest])).status, 204)
        let late = try write(server.client, body("late", at: [newest - 1000]))
        XCTAssertEqual(late.status, 400, late.body)
        XCTAssertTrue(late.body.hasPrefix("stored 0 of 1 samples; rejected 1: out_of_order=1"), late.body)
        XCTAssertEqual(try MetricsPage(of: server)["tally_samples_rejected_total{tenant=\"\(tenant)\",reason=\"out_of_order\"}"], 1)
        server.stop(SIGTERM)
    }

    /// Metadata is bounded: a metric keeps its 8 newest distinct entries, and an entry past the
    /// tenant's 4 MiB or all tenants' 64 MiB is not kept, counted as not stored, while the write is
    /// still taken.
    func testMetadataIsBoundedPerMetricAndPerTenant() throws {
        let server = try startServer()
        var many = WriteRequestEncoder()
        for k in 0..<10 { many.addMetadata(type: 2, name: "bounded", help: "help \(k)", unit: "") }
        XCTAssertEqual(try write(server.client, many.compressed()).status, 204)
        var huge = WriteRequestEncoder()
        huge.addMetadata(type: 2, name: "huge", help: String(repeating: "h", count: 4 << 20), unit: "")
        XCTAssertEqual(try write(server.client, huge.compressed()).status, 204)
        let answer = try server.client.request("GET", "/api/v1/metadata?tenant=\(tenant)")
        let helps = (2..<10).map { #"{"type":"gauge","help":"help \#($0)","unit":""}"# }.joined(separator: ",")
        XCTAssertEqual(answer.body, #"{"status":"success","data":{"bounded":["# + helps + "]}}")
        // Metadata alone makes no tenant: what is not kept counts under no tenant name.
        XCTAssertEqual(try MetricsPage(of: server)["tally_received_not_stored_total{tenant=\"\",kind=\"metadata\"}"], 1)

        // All tenants together hold at most 64 MiB: sixteen tenants of almost 4 MiB each fit, the
        // seventeenth's entry does not.
        for k in 0..<17 {
            var large = WriteRequestEncoder()
            large.addMetadata(type: 2, name: "large", help: String(repeating: "h", count: (4 << 20) - 100), unit: "")
            XCTAssertEqual(try write(server.client, large.compressed(), tenantHeader: ("THANOS-TENANT", "t\(k)")).status, 204)
        }
        func served(_ tenant: String) throws -> Bool {
            try server.client.request("GET", "/api/v1/metadata?tenant=\(tenant)").body.contains("\"large\"")
        }
        XCTAssertTrue(try served("t15"))
        XCTAssertFalse(try served("t16"))
        XCTAssertEqual(try MetricsPage(of: server)["tally_received_not_stored_total{tenant=\"\",kind=\"metadata\"}"], 2)
        // Once a tenant holds samples, its own name counts.
        var sample = WriteRequestEncoder()
        sample.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: now, valueBits: 1.0.bitPattern)])
        XCTAssertEqual(try write(server.client, sample.compressed(), tenantHeader: ("THANOS-TENANT", "t16")).status, 204)
        var more = WriteRequestEncoder()
        more.addMetadata(type: 2, name: "more", help: String(repeating: "h", count: 4096), unit: "")
        XCTAssertEqual(try write(server.client, more.compressed(), tenantHeader: ("THANOS-TENANT", "t16")).status, 204)
        XCTAssertEqual(try MetricsPage(of: server)["tally_received_not_stored_total{tenant=\"t16\",kind=\"metadata\"}"], 1)
        server.stop(SIGTERM)
    }

    /// A native histogram is stored beside the float samples of the request.
    /// Exemplars are kept in memory (a resent one is a no-op, an older one is refused and counted);
    /// metadata is kept for `/api/v1/metadata`, except an entry with an invalid metric name, which is
    /// counted as not stored.
    func testNativeHistogramsAreStoredExemplarsAndMetadataAreKept() throws {
        let server = try startServer()
        let t = now
        var request = ProtobufWriter()
        request.messageField(1) { series in
            Self.metricName(&series, "native")
            // A valid histogram: count_int (1), sum (3), zero_count_int (6) holding all 3, timestamp (15).
            series.messageField(4) { histogram in
                histogram.varintField(1, 3)
                histogram.fixed64Field(3, 1.5.bitPattern)
                histogram.varintField(6, 3)
                histogram.varintField(15, UInt64(t))
            }
        }
        request.messageField(1) { series in
            Self.metricName(&series, "float")
            series.messageField(2) { sample in
                sample.fixed64Field(1, 2.0.bitPattern)
                sample.varintField(2, UInt64(t))
            }
        }
        let stored = try write(server.client, SnappyBlock.compress(request.bytes))
        XCTAssertEqual(stored.status, 204, stored.body)
        let dump = try tallyDump(storage: storage, tenant: tenant)
        XCTAssertTrue(dump.contains("{__name__=\"float\"} 2 \(t)\n"), dump)
        XCTAssertTrue(dump.contains("{__name__=\"native\"} {count:3, sum:1.5, [-0,0]:3} \(t)\n"), dump)

        var annotated = ProtobufWriter()
        annotated.messageField(1) { series in
            Self.metricName(&series, "annotated")
            series.messageField(2) { sample in
                sample.fixed64Field(1, 1.0.bitPattern)
                sample.varintField(2, UInt64(t))
            }
            // Exemplar: value (2), timestamp (3).
            series.messageField(3) { exemplar in
                exemplar.fixed64Field(2, 0.5.bitPattern)
                exemplar.varintField(3, UInt64(t))
            }
        }
        // MetricMetadata: type (1, counter), metric_family_name (2), help (4).
        annotated.messageField(3) { metadata in
            metadata.varintField(1, 1)
            metadata.bytesField(2, Array("annotated".utf8))
            metadata.bytesField(4, Array("help text".utf8))
        }
        annotated.messageField(3) { metadata in
            metadata.varintField(1, 1)
            metadata.bytesField(2, Array("not a metric name".utf8))
        }
        XCTAssertEqual(try write(server.client, SnappyBlock.compress(annotated.bytes)).status, 204)
        XCTAssertEqual(try MetricsPage(of: server)["tally_exemplars_appended_total{tenant=\"\(tenant)\"}"], 1)
        XCTAssertEqual(try MetricsPage(of: server)["tally_exemplars_in_storage{tenant=\"\(tenant)\"}"], 1)
        XCTAssertNil(try MetricsPage(of: server)["tally_received_not_stored_total{tenant=\"\(tenant)\",kind=\"exemplar\"}"])
        XCTAssertEqual(try MetricsPage(of: server)["tally_received_not_stored_total{tenant=\"\(tenant)\",kind=\"metadata\"}"], 1)
        let metadata = try server.client.request("GET", "/api/v1/metadata?tenant=\(tenant)")
        XCTAssertEqual(metadata.body, #"{"status":"success","data":{"annotated":[{"type":"counter","help":"help text","unit":""}]}}"#)
        // The same exemplar again: a no-op. One older than the series' newest: refused and counted.
        XCTAssertEqual(try write(server.client, SnappyBlock.compress(annotated.bytes)).status, 204)
        var older = ProtobufWriter()
        older.messageField(1) { series in
            Self.metricName(&series, "annotated")
            series.messageField(3) { exemplar in
                exemplar.fixed64Field(2, 0.25.bitPattern)
                exemplar.varintField(3, UInt64(t - 1))
            }
        }
        XCTAssertEqual(try write(server.client, SnappyBlock.compress(older.bytes)).status, 204)
        XCTAssertEqual(try MetricsPage(of: server)["tally_exemplars_appended_total{tenant=\"\(tenant)\"}"], 1)
        XCTAssertEqual(try MetricsPage(of: server)["tally_exemplars_out_of_order_total{tenant=\"\(tenant)\"}"], 1)
        XCTAssertEqual(try MetricsPage(of: server)["tally_exemplars_in_storage{tenant=\"\(tenant)\"}"], 1)
        XCTAssertEqual(try MetricsPage(of: server)["tally_received_not_stored_total{tenant=\"\(tenant)\",kind=\"exemplar\"}"], 1)
        server.stop(SIGTERM)
    }

    func testUnknownPathIs404() throws {
        let server = try startServer()
        let answer = try server.client.request("GET", "/api/v1/nothing-here")
        XCTAssertEqual(answer.status, 404)
        XCTAssertEqual(answer.body, "not found: /api/v1/nothing-here\n")
        // The health, readiness and metrics pages take GET and HEAD, as Prometheus' own.
        for path in ["/-/healthy", "/-/ready", "/metrics"] {
            XCTAssertEqual(try server.client.request("HEAD", path).status, 200, path)
            for method in ["POST", "PUT", "DELETE"] {
                let refused = try server.client.request(method, path)
                XCTAssertEqual(refused.status, 405, "\(method) \(path)")
                XCTAssertEqual(refused.headers["allow"], "GET, HEAD", "\(method) \(path)")
            }
        }
        server.stop(SIGTERM)
    }

    /// A path with empty, `.` or `..` segments gets 301 to its clean form, for every method, with the
    /// query string kept, as Go's `ServeMux` in front of a running Prometheus 2.42 answered each of
    /// these (`Location` and body byte for byte); following it answers the query.
    func testAnUncleanPathIsRedirectedToItsCleanFormAsPrometheusDoes() throws {
        let server = try startServer()
        let cases: [(method: String, path: String, location: String, body: String)] = [
            ("GET", "//api/v1/query?query=1%2B1&time=1'x\"<", "/api/v1/query?query=1%2B1&time=1'x\"<",
             "<a href=\"/api/v1/query?query=1%2B1&amp;time=1&#39;x&#34;&lt;\">Moved Permanently</a>.\n\n"),
            ("POST", "//api/v1/write", "/api/v1/write", ""),
            ("GET", "/api/v1/x/../../v1/query", "/api/v1/query", "<a href=\"/api/v1/query\">Moved Permanently</a>.\n\n"),
            ("GET", "/..", "/", "<a href=\"/\">Moved Permanently</a>.\n\n"),
            ("GET", "/api//", "/api/", "<a href=\"/api/\">Moved Permanently</a>.\n\n"),
            ("GET", "/api/v1/label//values", "/api/v1/label/values", "<a href=\"/api/v1/label/values\">Moved Permanently</a>.\n\n"),
        ]
        for (method, path, location, body) in cases {
            let answer = try server.client.request(method, path)
            XCTAssertEqual(answer.status, 301, "\(method) \(path)")
            XCTAssertEqual(answer.headers["location"], location, "\(method) \(path)")
            XCTAssertEqual(answer.body, body, "\(method) \(path)")
            XCTAssertEqual(answer.headers["content-type"], body.isEmpty ? nil : "text/html; charset=utf-8", "\(method) \(path)")
        }
        let followed = try server.client.request("GET", "/api/v1/query?query=1%2B1&time=1")
        XCTAssertEqual(followed.status, 200)
        XCTAssertEqual(followed.body, #"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#)
        // Clean paths are not redirected, a trailing slash included.
        XCTAssertEqual(try server.client.request("GET", "/api/v1/nothing-here/").status, 404)
        server.stop(SIGTERM)
    }

    /// A request target in absolute form (`GET http://host/path`, as some proxies send it) is
    /// answered by its path, as a running Prometheus 2.42 answered these; with no path, 301 to `/`.
    func testAnAbsoluteFormTargetIsAnsweredByItsPath() throws {
        let server = try startServer()
        let query = try server.client.request("GET", "http://tally.example/api/v1/query?query=1%2B1&time=1")
        XCTAssertEqual(query.status, 200, query.body)
        XCTAssertEqual(query.body, #"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#)
        XCTAssertEqual(try server.client.request("GET", "HTTPS://tally.example:1/-/ready").body, "Tally is Ready.\n")
        let bare = try server.client.request("GET", "http://tally.example")
        XCTAssertEqual(bare.status, 301)
        XCTAssertEqual(bare.headers["location"], "/")
        server.stop(SIGTERM)
    }

    /// A WAL segment that is a symbolic link is not followed: the start fails naming it, and the file
    /// it points at, outside the storage, is neither cut by the tail repair nor copied into it.
    func testASymlinkedWALSegmentIsRefusedAndWhatItPointsAtIsLeftAlone() throws {
        let server = try startServer()
        XCTAssertEqual(try write(server.client, body("linked", at: [now])).status, 204)
        server.stop(SIGTERM)
        let wal = storage + "/" + tenant + "/wal"
        let segment = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: wal).sorted().last)
        let victim = storage + ".victim"
        defer { try? FileManager.default.removeItem(atPath: victim) }
        try Data("precious, and not a WAL segment".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.removeItem(atPath: wal + "/" + segment)
        try FileManager.default.createSymbolicLink(atPath: wal + "/" + segment, withDestinationPath: victim)
        let start = try runCommand(Binaries.tally, ["serve", "--storage", storage, "--listen", "127.0.0.1:0"], timeout: 60)
        XCTAssertNotEqual(start.status, 0, start.stderr)
        XCTAssertTrue(start.stderr.contains(segment) && start.stderr.contains("symbolic link"), start.stderr)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious, and not a WAL segment")
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/" + tenant + "/wal-quarantine"))
    }

    /// While draining, a kept-alive connection is answered 503 and new connections are refused. The
    /// drain is held open on purpose: a block cut waits for the tenant's read lease, which this test
    /// holds shared (as `tally dump` does), and closing the tenant waits for that cut.
    func testWritesWhileDrainingAre503() throws {
        let server = try startServer(["--block-range", "1m", "--compaction-interval", "0s"])
        let connection = LoopbackConnection(server.client)
        let start = now - 200_000
        XCTAssertEqual(try connection.request("POST", "/api/v1/write", headers: headers(("THANOS-TENANT", tenant)),
                                              body: body("drain", at: [start])).status, 204)
        let lease = open(storage + "/" + tenant + "/.read-lease", O_RDONLY)
        XCTAssertGreaterThanOrEqual(lease, 0, "the tenant's read lease exists once it is open")
        defer { close(lease) }
        XCTAssertEqual(flock(lease, LOCK_SH), 0)
        // 200 s of samples span more than 1.5 block ranges of 1 m: a block cut starts in the background.
        let span = (1...200).map { start + Int64($0) * 1000 }
        XCTAssertEqual(try connection.request("POST", "/api/v1/write", headers: headers(("THANOS-TENANT", tenant)),
                                              body: body("drain", at: span)).status, 204)
        let isBlock = { (name: String) in name.count == 26 && name.allSatisfy { $0.isLetter || $0.isNumber } }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !filesUnder(storage + "/" + tenant).contains(where: isBlock) { usleep(10_000) }
        XCTAssertTrue(filesUnder(storage + "/" + tenant).contains(where: isBlock), "a block was cut within 30 s: \(server.log)")

        kill(server.process.processIdentifier, SIGTERM)
        var ready = try connection.request("GET", "/-/ready")
        let drainDeadline = Date().addingTimeInterval(30)
        while ready.status == 200 && Date() < drainDeadline {
            usleep(10_000)
            ready = try connection.request("GET", "/-/ready")
        }
        XCTAssertEqual(ready.status, 503, "not ready within 30 s of SIGTERM")
        let refused = try connection.request("POST", "/api/v1/write", headers: headers(("THANOS-TENANT", tenant)),
                                             body: body("drain", at: [now]))
        XCTAssertEqual(refused.status, 503, refused.body)
        XCTAssertEqual(refused.body, "not ready: starting or shutting down\n")
        // The listener closes just after the phase turns: new connections are refused from then on.
        var listening = true
        let closeDeadline = Date().addingTimeInterval(30)
        while listening && Date() < closeDeadline {
            do {
                _ = try server.client.request("GET", "/-/ready")
                usleep(10_000)
            } catch LoopbackHTTP.Failure.connect {
                listening = false
            }
        }
        XCTAssertFalse(listening, "the listener is still open 30 s after SIGTERM")
        XCTAssertTrue(server.process.isRunning, "the drain waits for the block cut, which waits for the lease")

        XCTAssertEqual(flock(lease, LOCK_UN), 0)
        XCTAssertTrue(waitForExit(server.process, within: 60), "exits once the lease is free: \(server.log)")
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
    }

    /// `--wal-sync always` answers 204 only after an fdatasync covering the write;
    /// `--wal-sync interval` answers before any sync (here none comes within the hour-long interval).
    func testA204FollowsAnFsyncUnderAlwaysAndMayPrecedeItUnderInterval() throws {
        let syncs = "tally_wal_fsync_duration_seconds_count"
        let always = try startServer(["--wal-sync", "always"])
        for k in 0..<3 {
            let before = try MetricsPage(of: always)[syncs] ?? 0
            XCTAssertEqual(try write(always.client, body("synced", at: [now + Int64(k)])).status, 204)
            XCTAssertGreaterThanOrEqual(try MetricsPage(of: always)[syncs] ?? 0, before + 1, "write \(k): the 204 came after an fsync")
        }
        always.stop(SIGTERM)
        XCTAssertEqual(always.process.terminationStatus, 0, always.log)

        let interval = try startServer(["--wal-sync", "interval", "--wal-sync-interval-ms", "3600000"])
        for k in 0..<3 {
            XCTAssertEqual(try write(interval.client, body("unsynced", at: [now + Int64(k)])).status, 204)
        }
        XCTAssertEqual(try MetricsPage(of: interval)[syncs] ?? 0, 0, "three writes answered 204 with no fsync yet")
        interval.stop(SIGTERM)
        XCTAssertEqual(interval.process.terminationStatus, 0, interval.log)
        // The clean stop synced what the interval had not: every write is there.
        XCTAssertEqual(try tallyDump(storage: storage, tenant: tenant, match: "{__name__=\"unsynced\"}").split(separator: "\n").count, 3)
    }

    /// A group-commit fdatasync that fails (injected: EIO): the write it covered answers 500, never
    /// 204, and the tenant's WAL is poisoned, so every later write answers 500 too, since the page
    /// cache can no longer be trusted. A restart serves again; the unacknowledged sample is kept at
    /// most once.
    func testAFailedFsyncAnswers500AndPoisonsTheTenantUntilRestart() throws {
        let failing = try startServer(["--wal-sync", "always"], environment: ["TALLY_FAILPOINT": "wal-group-sync-fails"])
        let first = try write(failing.client, body("unacknowledged", at: [now]))
        XCTAssertEqual(first.status, 500, first.body)
        XCTAssertTrue(first.body.contains("WAL sync failed"), first.body)
        XCTAssertTrue(failing.log.contains(Failpoint.markerPrefix + "wal-group-sync-fails\n"), "the injected failure was reached: \(failing.log)")
        for k in 1...3 {
            let later = try write(failing.client, body("after_poisoning", at: [now + Int64(k)]))
            XCTAssertEqual(later.status, 500, "write \(k) after the failed sync: \(later.body)")
            XCTAssertFalse(later.body.contains(storage), "a client is not told where the storage lies: \(later.body)")
        }
        XCTAssertFalse(first.body.contains(storage), "a client is not told where the storage lies: \(first.body)")
        XCTAssertEqual(try failing.client.request("GET", "/-/ready").status, 200, "the server itself serves on")
        failing.stop(SIGKILL)

        let restarted = try startServer(["--wal-sync", "always"])
        let afterRestart = try write(restarted.client, body("after_restart", at: [now + 10]))
        XCTAssertEqual(afterRestart.status, 204, afterRestart.body)
        restarted.stop(SIGTERM)
        XCTAssertEqual(restarted.process.terminationStatus, 0, restarted.log)
        let dump = try tallyDump(storage: storage, tenant: tenant).split(separator: "\n")
        XCTAssertLessThanOrEqual(dump.filter { $0.hasPrefix("{__name__=\"unacknowledged\"}") }.count, 1, dump.joined(separator: "\n"))
        XCTAssertEqual(dump.filter { $0.hasPrefix("{__name__=\"after_poisoning\"}") }.count, 0, "a poisoned WAL takes nothing more")
        XCTAssertEqual(dump.filter { $0.hasPrefix("{__name__=\"after_restart\"}") }.count, 1)
    }

    /// `--tenant-header` replaces the default headers (THANOS-TENANT is then just a header), and
    /// `--default-tenant` names the tenant of requests that name none.
    func testTenantHeaderFlagReplacesTheDefaultsAndDefaultTenantTakesTheRest() throws {
        let server = try startServer(["--tenant-header", "X-Team", "--default-tenant", "unnamed"])
        XCTAssertEqual(try write(server.client, body("m", at: [now]), tenantHeader: ("X-Team", "team-a")).status, 204)
        XCTAssertEqual(try write(server.client, body("m", at: [now]), tenantHeader: ("THANOS-TENANT", "thanos-b")).status, 204)
        XCTAssertEqual(try tenants(), ["team-a", "unnamed"])
        server.stop(SIGTERM)
    }

    func testCloudAccountIdNamesTheTenantByDefault() throws {
        let server = try startServer()
        XCTAssertEqual(try write(server.client, body("m", at: [now]), tenantHeader: ("Cloud-Account-Id", "account-7")).status, 204)
        XCTAssertEqual(try tenants(), ["account-7"])
        server.stop(SIGTERM)
    }

    func testSIGINTStopsCleanly() throws {
        let server = try startServer()
        XCTAssertEqual(try write(server.client, body("kept", at: [now])).status, 204)
        server.stop(SIGINT)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        XCTAssertTrue(server.log.contains("stopped"), server.log)
        let db = try TenantDatabase.open(directory: storage + "/" + tenant, tenant: tenant, readOnly: true)
        XCTAssertEqual(db.replay.problems, [], "a clean stop leaves no torn tail")
        XCTAssertEqual(try db.select([try LabelMatcher("__name__", .equal, "kept")]).first?.samples.count, 1)
    }

    func testASecondServerOnTheSameStorageIsRefused() throws {
        let server = try startServer()
        let second = try runCommand(Binaries.tally, ["serve", "--listen", "127.0.0.1:0", "--storage", storage], timeout: 60)
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.stderr.contains("is another tally serving this storage?"), second.stderr)
        XCTAssertEqual(try server.client.request("GET", "/-/ready").status, 200, "the first server serves on")
        server.stop(SIGTERM)
    }

    /// Bad flags are a usage error: exit status 64 (EX_USAGE) and a message naming the flag.
    func testBadFlagsExitWith64() throws {
        for (arguments, message) in [(["--wal-sync", "sometimes"], "--wal-sync must be always or interval"),
                                     (["--ooo-window", "soon"], "--ooo-window must be a duration"),
                                     (["--no-such-flag"], "no-such-flag")] {
            let result = try runCommand(Binaries.tally, ["serve", "--storage", storage] + arguments, timeout: 60)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        XCTAssertEqual(try tenants(), [], "nothing was served or written")
    }

    func testOutOfOrderBytesMetricFollowsLateSamples() throws {
        let server = try startServer()
        let newest = now
        let gauge = "tally_head_out_of_order_bytes{tenant=\"\(tenant)\"}"
        XCTAssertEqual(try write(server.client, body("late", at: [newest])).status, 204)
        XCTAssertEqual(try MetricsPage(of: server)[gauge], 0)
        XCTAssertEqual(try write(server.client, body("late", at: (1...10).map { newest - Int64($0) * 60_000 })).status, 204)
        XCTAssertGreaterThan(try MetricsPage(of: server)[gauge] ?? 0, 0, "late samples held in memory")
        server.stop(SIGTERM)
    }
}
