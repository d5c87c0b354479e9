import Foundation
import Synchronization
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

/// Writers push batches while the server is killed with SIGKILL at random moments and restarted.
/// Every acknowledged sample must be present exactly once afterwards, and nothing that was never
/// sent may appear. Rounds: TALLY_CRASH_ROUNDS (default 20; run 200 locally).
final class CrashRecoveryTests: XCTestCase {
    static let writers = 3
    static let seriesPerWriter = 8
    static let samplesPerSeries = 5

    /// Batch `batch` of `writer`: every series gets samples at consecutive seconds; values encode
    /// (writer, batch, index) so a stored sample can be traced to the request that sent it.
    static func batch(writer: Int, batch: Int) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        for s in 0..<seriesPerWriter {
            let samples = (0..<samplesPerSeries).map { j in
                WireSample(timestamp: Int64(batch * samplesPerSeries + j) * 1000,
                           valueBits: Double(writer * 10_000_000 + batch * 100 + j).bitPattern)
            }
            encoder.addSeries(labels: [("__name__", "crash_test_series"), ("writer", String(writer)), ("series", String(s))], samples: samples)
        }
        return encoder.compressed()
    }

    func testEveryAcknowledgedSampleSurvivesSIGKILLExactlyOnce() throws {
        let rounds = Int(ProcessInfo.processInfo.environment["TALLY_CRASH_ROUNDS"] ?? "") ?? 20
        let storage = try makeTemporaryDirectory("crash")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        // Highest acknowledged batch per writer (-1: none); batches are acknowledged in order.
        let acked = Mutex([Int](repeating: -1, count: Self.writers))
        var generator = SystemRandomNumberGenerator()
        var totalAcks = 0
        for round in 0..<rounds {
            let server = try TallyServerProcess(storage: storage)
            try server.waitReady()
            let stop = Atomic<Bool>(false)
            let acksThisRound = Atomic<Int>(0)
            let group = DispatchGroup()
            let port = server.port
            for writer in 0..<Self.writers {
                // Threads, not the global queue: it runs only as many blocking writers as cores.
                group.enter()
                Thread {
                    defer { group.leave() }
                    var next = acked.withLock { $0[writer] } + 1
                    let client = LoopbackHTTP(port: port, timeoutSeconds: 5)
                    // Bounded: stops at the kill, or after 2000 requests.
                    for _ in 0..<2000 where !stop.load(ordering: .relaxed) {
                        guard let response = try? client.request("POST", "/api/v1/write", headers: [
                            ("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "crash")],
                            body: Self.batch(writer: writer, batch: next)) else { return }
                        guard response.status == 204 else {
                            XCTFail("round \(round) writer \(writer) batch \(next): \(response.status) \(response.body)")
                            return
                        }
                        acked.withLock { $0[writer] = next }
                        acksThisRound.wrappingAdd(1, ordering: .relaxed)
                        next += 1
                    }
                }.start()
            }
            usleep(UInt32.random(in: 20_000...250_000, using: &generator))
            server.stop(SIGKILL)
            stop.store(true, ordering: .relaxed)
            XCTAssertEqual(group.wait(timeout: .now() + 30), .success, "writers did not stop")
            totalAcks += acksThisRound.load(ordering: .relaxed)
        }

        // A last clean start and stop, then read the store as a stopped server leaves it.
        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        XCTAssertFalse(server.log.contains("corrupt") || server.log.contains("checksum"), "a kill may tear a tail, never corrupt: \(server.log)")

        let db = try TenantDatabase.open(directory: storage + "/crash", tenant: "crash", readOnly: true)
        XCTAssertEqual(db.replay.problems, [], "after a clean shutdown the WAL reads cleanly")
        let stored = try db.select([try LabelMatcher("__name__", .equal, "crash_test_series")])
        let ackedBatches = acked.withLock { $0 }
        XCTAssertEqual(stored.count, ackedBatches.filter { $0 >= 0 }.count * Self.seriesPerWriter)
        for series in stored {
            let writer = Int(series.labels["writer"]!)!
            let timestamps = series.samples.map(\.timestamp)
            XCTAssertEqual(timestamps, timestamps.sorted(), "in order")
            XCTAssertEqual(Set(timestamps).count, timestamps.count, "exactly once: \(series.labels)")
            // Acknowledged batches 0...acked are all there, in full; at most one more batch (sent,
            // not acknowledged when the kill came) may follow, and only with values that were sent.
            let mustHave = (ackedBatches[writer] + 1) * Self.samplesPerSeries
            XCTAssertGreaterThanOrEqual(timestamps.count, mustHave, "\(series.labels)")
            XCTAssertLessThanOrEqual(timestamps.count, mustHave + Self.samplesPerSeries, "\(series.labels)")
            for (i, sample) in series.samples.enumerated() {
                let batch = i / Self.samplesPerSeries, j = i % Self.samplesPerSeries
                XCTAssertEqual(sample.timestamp, Int64(i) * 1000)
                XCTAssertEqual(sample.valueBits, Double(writer * 10_000_000 + batch * 100 + j).bitPattern)
            }
        }
        XCTAssertGreaterThan(totalAcks, rounds, "the writers must have been acknowledged in most rounds")
        print("crash test: \(rounds) rounds, \(totalAcks) acknowledged requests, acked batches per writer \(ackedBatches)")
    }
}
