import Foundation
import Synchronization
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

private let lifeHeaders = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "life")]

/// One series `name` with samples at timestamps from..<from+count.
private func lifeBody(_ name: String, from: Int, count: Int) -> [UInt8] {
    var encoder = WriteRequestEncoder()
    encoder.addSeries(labels: [("__name__", name)], samples: (from..<from + count).map { WireSample(timestamp: Int64($0), valueBits: Double($0).bitPattern) })
    return encoder.compressed()
}

/// Start-up, shutdown and self-metrics of a real `tally serve`.
final class ServerLifecycleTests: XCTestCase {
    private let headers = lifeHeaders

    private func body(_ name: String, from: Int, count: Int) -> [UInt8] { lifeBody(name, from: from, count: count) }

    func testAnswers503WhileReplayingThenServes() throws {
        let storage = try makeTemporaryDirectory("replay")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        // A WAL big enough that replay takes a while: 400 series x 2000 samples.
        let db = try TenantDatabase.open(directory: storage + "/life", tenant: "life")
        for s in 0..<400 {
            let name = Array("__name__".utf8), value = Array("replay_\(s)".utf8)
            _ = try name.withUnsafeBytes { n in
                try value.withUnsafeBytes { v in
                    try db.append { batch in
                        let handle = [RawLabel(name: n, value: v)].withUnsafeBufferPointer { try! batch.series($0) }
                        for t in 0..<2000 { _ = batch.add(handle, timestamp: Int64(t), valueBits: UInt64(t)) }
                    }
                }
            }
        }
        try db.close()

        let server = try TallyServerProcess(storage: storage)
        var sawStarting = false
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            guard let ready = try? server.client.request("GET", "/-/ready") else { usleep(2_000); continue }
            if ready.status == 200 { break }
            XCTAssertEqual(ready.status, 503)
            let write = try server.client.request("POST", "/api/v1/write", headers: headers, body: body("during_replay", from: 0, count: 1))
            if write.status == 503 { sawStarting = true } else { XCTAssertEqual(write.status, 204, write.body) }
            XCTAssertEqual(try server.client.request("GET", "/-/healthy").status, 200)
        }
        XCTAssertTrue(sawStarting, "replaying 800k samples should leave time to see 503; log: \(server.log)")
        XCTAssertTrue(server.log.contains("replayed WAL"), server.log)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: headers, body: body("after_replay", from: 0, count: 1)).status, 204)
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0)
    }

    func testSIGTERMDrainsInFlightWritesAndClosesTheWALCleanly() throws {
        let storage = try makeTemporaryDirectory("drain")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        let port = server.port
        let acknowledged = Mutex([Int](repeating: 0, count: 4))
        let group = DispatchGroup()
        for writer in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                let client = LoopbackHTTP(port: port, timeoutSeconds: 5)
                for batch in 0..<5000 {
                    guard let r = try? client.request("POST", "/api/v1/write", headers: lifeHeaders,
                                                      body: lifeBody("drain_\(writer)", from: batch * 10, count: 10)) else { return }
                    if r.status != 204 {
                        XCTAssertEqual(r.status, 503, r.body)   // draining: retryable, nothing stored
                        return
                    }
                    acknowledged.withLock { $0[writer] = batch + 1 }
                }
            }.start()
        }
        usleep(300_000)
        server.stop(SIGTERM)
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        XCTAssertTrue(server.log.contains("stopped"), server.log)

        let db = try TenantDatabase.open(directory: storage + "/life", tenant: "life", readOnly: true)
        XCTAssertEqual(db.replay.problems, [], "a drained shutdown leaves no torn tail")
        for (writer, batches) in acknowledged.withLock({ $0 }).enumerated() {
            XCTAssertGreaterThan(batches, 0)
            let stored = try db.select([try LabelMatcher("__name__", .equal, "drain_\(writer)")]).first?.samples.count ?? 0
            // Every acknowledged batch is there; at most the one in flight at the stop besides.
            XCTAssertTrue(stored == batches * 10 || stored == (batches + 1) * 10, "writer \(writer): \(stored) stored, \(batches) acknowledged")
        }
    }

    func testMetricsCountRequestsSamplesAndSyncs() throws {
        let storage = try makeTemporaryDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        // One kept-alive connection, as a sender's shard keeps: every answer (204, 400 with a
        // message, the metrics page) must come back on it.
        let connection = LoopbackConnection(server.client)
        for batch in 0..<3 {
            XCTAssertEqual(try connection.request("POST", "/api/v1/write", headers: headers, body: body("m", from: batch * 5, count: 5)).status, 204)
        }
        XCTAssertEqual(try connection.request("POST", "/api/v1/write", headers: headers, body: body("m", from: 0, count: 1)).status, 204)
        var conflicting = WriteRequestEncoder()
        conflicting.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: 1, valueBits: 99.0.bitPattern)])
        let refused = try connection.request("POST", "/api/v1/write", headers: headers, body: conflicting.compressed())
        XCTAssertEqual(refused.status, 400)
        XCTAssertTrue(refused.body.hasPrefix("stored 0 of 1 samples"), refused.body)
        let metrics = try connection.request("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertEqual(connection.connectionsOpened, 1)
        for line in ["tally_samples_appended_total{tenant=\"life\"} 15",
                     "tally_series_created_total{tenant=\"life\"} 1",
                     "tally_head_series{tenant=\"life\"} 1",
                     "tally_samples_rejected_total{tenant=\"life\",reason=\"duplicate_timestamp_different_value\"} 1",
                     "tally_http_requests_total{handler=\"/api/v1/write\",code=\"204\"} 4",
                     "tally_http_requests_total{handler=\"/api/v1/write\",code=\"400\"} 1",
                     "tally_wal_fsync_duration_seconds_count "] {
            XCTAssertTrue(metrics.body.contains(line), "missing \(line) in\n\(metrics.body)")
        }
        server.stop(SIGTERM)
    }
}
