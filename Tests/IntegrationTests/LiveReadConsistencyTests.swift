import Foundation
import Synchronization
import TallyLoad
import TallyWire
import XCTest

/// `tally dump` beside a live server that cuts blocks all the time: every dump holds at least every
/// sample acknowledged before it started (a read across a cut once missed 12,200 of them).
final class LiveReadConsistencyTests: XCTestCase {
    func testDumpDuringBlockCutsNeverMissesAcknowledgedSamples() throws {
        let storage = try makeTemporaryDirectory("live-read")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        // One-minute blocks and 30 s of data a request: the head is cut every few requests.
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--block-range", "1m", "--compaction-interval", "0s"])
        defer { server.stop(SIGTERM) }
        try server.waitReady()

        let acknowledged = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let failure = Mutex<String?>(nil)
        // A week of data at 30 s a request: the writer outlasts the dumps, which stop it.
        let start = Int64(Date().timeIntervalSince1970 * 1000) / 60_000 * 60_000 - 7 * 86_400_000
        let writer = Thread { [client = server.client] in
            let connection = LoopbackConnection(client)
            for request in 0..<20_000 where !stop.load(ordering: .relaxed) {
                var encoder = WriteRequestEncoder()
                for series in 0..<4 {
                    let samples = (0..<3).map { WireSample(timestamp: start + Int64(request) * 30_000 + Int64($0) * 10_000, valueBits: Double(request).bitPattern) }
                    encoder.addSeries(labels: [("__name__", "live"), ("series", String(series))], samples: samples)
                }
                do {
                    let answer = try connection.request("POST", "/api/v1/write", headers: [("Content-Type", "application/x-protobuf"),
                        ("Content-Encoding", "snappy"), ("THANOS-TENANT", "live")], body: encoder.compressed())
                    guard answer.status == 204 else { failure.withLock { $0 = "write answered \(answer.status): \(answer.body)" }; break }
                    acknowledged.add(12, ordering: .releasing)
                } catch {
                    failure.withLock { $0 = "write failed: \(error)" }
                    break
                }
            }
        }
        writer.start()
        defer { stop.store(true, ordering: .relaxed) }

        var dumps = 0
        let deadline = Date().addingTimeInterval(90)
        while dumps < 15 && Date() < deadline && failure.withLock({ $0 }) == nil {
            let before = acknowledged.load(ordering: .acquiring)
            let dump = try runCommand(Binaries.tally, ["dump", "--storage", storage, "--tenant", "live"])
            guard dump.status == 0 || before == 0 else { return XCTFail("dump failed: \(dump.stderr)") }
            let lines = dump.stdout.split(separator: "\n").count
            XCTAssertGreaterThanOrEqual(lines, before, "dump \(dumps) read \(lines) samples; \(before) were acknowledged before it started")
            dumps += 1
        }
        let writing = acknowledged.load(ordering: .relaxed) < 20_000 * 12
        stop.store(true, ordering: .relaxed)
        XCTAssertNil(failure.withLock { $0 })
        XCTAssertTrue(writing, "the writer must still be writing when the last dump ends")
        XCTAssertEqual(dumps, 15, "15 dumps in 90 s")
        let cuts = server.log.components(separatedBy: "cut block").count - 1
        print("\(dumps) dumps beside \(cuts) block cuts; \(acknowledged.load(ordering: .relaxed)) samples acknowledged")
        XCTAssertGreaterThan(cuts, 10, "the server must have cut blocks while the dumps ran")
    }
}
