import Foundation
import Synchronization
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

/// SIGKILL at each step of a block cut (block written, renamed, head dropped, checkpoint written,
/// checkpoint renamed), then a restart: every acknowledged sample is there exactly once, nothing
/// unsent appears, no `.tmp` is left, and promtool reads the result.
final class BlockCutCrashTests: XCTestCase {
    static let points = ["block-before-rename", "block-renamed-before-head-drop", "head-dropped-before-checkpoint",
                         "checkpoint-before-rename", "checkpoint-before-cleanup"]
    private let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "cut")]

    /// Request `k`: 5 series, 10 minutes of samples each at 20 s steps, values encoding (series, time).
    static func request(_ k: Int) -> (body: [UInt8], lines: [String]) {
        var encoder = WriteRequestEncoder()
        var lines: [String] = []
        for s in 0..<5 {
            let samples = (0..<30).map { i -> WireSample in
                let t = Int64(1_700_000_000_000) + Int64(k * 30 + i) * 20_000
                return WireSample(timestamp: t, valueBits: Double(s * 1_000_000 + k * 30 + i).bitPattern)
            }
            encoder.addSeries(labels: [("__name__", "cut_test"), ("series", String(s))], samples: samples)
            lines += samples.map { "{__name__=\"cut_test\", series=\"\(s)\"} \(GoFormat.float(Double(bitPattern: $0.valueBits))) \($0.timestamp)" }
        }
        return (encoder.compressed(), lines)
    }

    func testSIGKILLAtEveryStepOfABlockCutLosesAndDuplicatesNothing() throws {
        for point in Self.points {
            let storage = try makeTemporaryDirectory("cutcrash")
            defer { try? FileManager.default.removeItem(atPath: storage) }
            let server = try TallyServerProcess(storage: storage, environment: ["TALLY_FAILPOINT": point])
            try server.waitReady()
            var acknowledged: [String] = []
            var sent: [String] = []
            // 40 requests x 10 minutes: well past 1.5 block ranges, so a cut starts and hits the point.
            for k in 0..<40 {
                let (body, lines) = Self.request(k)
                sent += lines
                guard let response = try? server.client.request("POST", "/api/v1/write", headers: headers, body: body) else { break }
                XCTAssertEqual(response.status, 204, "\(point): \(response.body)")
                acknowledged += lines
            }
            let deadline = Date().addingTimeInterval(30)
            while server.process.isRunning && Date() < deadline { usleep(20_000) }
            XCTAssertFalse(server.process.isRunning, "\(point): the failpoint was never reached")
            XCTAssertEqual(server.process.terminationReason, .uncaughtSignal, point)

            let restarted = try TallyServerProcess(storage: storage)
            try restarted.waitReady()
            // Let the restarted server finish the cut it owes, then stop it cleanly.
            let tenant = storage + "/cut"
            let cutDeadline = Date().addingTimeInterval(30)
            while Date() < cutDeadline, !(try FileManager.default.contentsOfDirectory(atPath: tenant + "/wal").contains { $0.hasPrefix("checkpoint.") && !$0.hasSuffix(".tmp") }) {
                usleep(50_000)
            }
            restarted.stop(SIGTERM)
            XCTAssertEqual(restarted.process.terminationStatus, 0, "\(point): \(restarted.log)")

            let stored = try tallyDump(storage: storage, tenant: "cut").split(separator: "\n").map(String.init)
            XCTAssertEqual(Set(stored).count, stored.count, "\(point): a sample appears twice")
            XCTAssertTrue(Set(acknowledged).isSubset(of: Set(stored)), "\(point): \(Set(acknowledged).subtracting(stored).count) acknowledged samples lost")
            XCTAssertTrue(Set(stored).isSubset(of: Set(sent)), "\(point): samples that were never sent")
            let names = try FileManager.default.contentsOfDirectory(atPath: tenant) + FileManager.default.contentsOfDirectory(atPath: tenant + "/wal")
            XCTAssertEqual(names.filter { $0.hasSuffix(".tmp") }, [], point)
            XCTAssertEqual(try BlockInteropTests.promtoolDump(tenant), stored.sorted(), "\(point): promtool disagrees")
        }
    }
}
