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

    /// The server listens before it replays the WALs and answers 503 to writes and /-/ready until
    /// then. The replay is held on purpose (`TALLY_TEST_HOLD_REPLAY`) until this test lets it go.
    func testAnswers503WhileReplayingThenServes() throws {
        let storage = try makeTemporaryDirectory("replay")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let db = try TenantDatabase.open(directory: storage + "/life", tenant: "life")
        let name = Array("__name__".utf8), value = Array("replayed".utf8)
        _ = try name.withUnsafeBytes { n in
            try value.withUnsafeBytes { v in
                try db.append { batch in
                    let handle = [RawLabel(name: n, value: v)].withUnsafeBufferPointer { try! batch.series($0) }
                    for t in 0..<100 { _ = batch.add(handle, timestamp: Int64(t), valueBits: UInt64(t)) }
                }
            }
        }
        try db.close()
        let hold = storage + "/hold-replay"
        try Data().write(to: URL(fileURLWithPath: hold))

        let server = try TallyServerProcess(storage: storage, environment: ["TALLY_TEST_HOLD_REPLAY": hold])
        for _ in 0..<3 {
            XCTAssertEqual(try server.client.request("GET", "/-/ready").status, 503)
            XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: headers, body: body("during_replay", from: 0, count: 1)).status, 503)
            XCTAssertEqual(try server.client.request("GET", "/-/healthy").status, 200)
        }
        XCTAssertFalse(server.log.contains("replayed WAL"), server.log)

        // Let the replay go.
        try FileManager.default.removeItem(atPath: hold)
        try server.waitReady()
        XCTAssertTrue(server.log.contains("replayed WAL"), server.log)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: headers, body: body("after_replay", from: 0, count: 1)).status, 204)
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "life", match: "{__name__=\"replayed\"}").split(separator: "\n").count, 100)
    }

    /// A client that connects while the server starts gets an answer (503, then 200 once ready) or
    /// is refused, never a connection nobody answers. The check that the address is free, made
    /// before the storage is opened, used to listen there for a moment: the connections that came
    /// in that moment were taken and never answered (a sender waited out its timeout). Each
    /// round connects again as soon as a refusal comes back, so it meets that moment.
    func testConnectionsMadeWhileTheServerStartsAreAnsweredOrRefused() throws {
        let storage = try makeTemporaryDirectory("early")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let logPath = storage + ".log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var rounds = 0, attempts = 0
        while rounds < 12 && attempts < 24 {
            attempts += 1
            let port = LoopbackHTTP.freePort()
            let client = LoopbackHTTP(port: port, timeoutSeconds: 5)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            let process = try startChild([Binaries.tally, "serve", "--listen", "127.0.0.1:\(port)", "--storage", storage], output: log, errors: log)
            var ready = false, refused = 0
            var unanswered: [String] = []
            let deadline = Date().addingTimeInterval(30)
            while !ready && process.isRunning && Date() < deadline {
                do {
                    let answer = try client.request("GET", "/-/ready")
                    XCTAssertTrue([200, 503].contains(answer.status), "\(answer.status) \(answer.body)")
                    ready = answer.status == 200
                } catch LoopbackHTTP.Failure.connect {
                    refused += 1
                } catch {
                    unanswered.append("\(error)")
                }
            }
            XCTAssertTrue(stopChild(process, SIGKILL, within: 10))
            try log.close()
            // Another process took the port before the server bound it: not this round's question.
            if !ready, (try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("cannot listen at") == true { continue }
            rounds += 1
            XCTAssertTrue(ready, "round \(rounds): not ready within 30 s")
            XCTAssertEqual(unanswered, [], "round \(rounds): connected, then no answer (\(refused) refusals before)")
        }
        XCTAssertEqual(rounds, 12)
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
                let client = LoopbackHTTP(port: port, timeoutSeconds: 30)
                var batch = 0
                for _ in 0..<5000 {
                    let r: LoopbackHTTP.Response
                    do {
                        r = try client.request("POST", "/api/v1/write", headers: lifeHeaders, body: lifeBody("drain_\(writer)", from: batch * 10, count: 10))
                    } catch LoopbackHTTP.Failure.connect {
                        return   // the listener is closed: nothing more can be sent
                    } catch {
                        // Dropped without an answer (a connection still in the accept queue is reset
                        // when the listener closes): not acknowledged, so sent again, as a sender does.
                        continue
                    }
                    if r.status != 204 {
                        XCTAssertEqual(r.status, 503, r.body)   // draining: retryable, nothing stored
                        return
                    }
                    batch += 1
                    acknowledged.withLock { $0[writer] = batch }
                }
            }.start()
        }
        // Stop once every writer has had a few writes acknowledged, so each is mid-stream.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && acknowledged.withLock({ $0.min()! }) < 3 { usleep(5_000) }
        XCTAssertGreaterThanOrEqual(acknowledged.withLock { $0.min()! }, 3, "every writer acknowledged within 30 s")
        server.stop(SIGTERM)
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        XCTAssertTrue(server.log.contains("stopped"), server.log)

        let db = try TenantDatabase.open(directory: storage + "/life", tenant: "life", readOnly: true)
        XCTAssertEqual(db.replay.problems, [], "a drained shutdown leaves no torn tail")
        for (writer, batches) in acknowledged.withLock({ $0 }).enumerated() {
            let stored = try db.select([try LabelMatcher("__name__", .equal, "drain_\(writer)")]).first?.samples.count ?? 0
            // A write the server took was answered (204 stored, 503 not); one it never took was sent
            // again until refused. So exactly the acknowledged batches are there.
            XCTAssertEqual(stored, batches * 10, "writer \(writer): \(stored) samples stored, \(batches) batches acknowledged")
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
