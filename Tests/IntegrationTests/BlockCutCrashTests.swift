import Foundation
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

/// SIGKILL at each step of a block cut (block written, renamed, head dropped, checkpoint written,
/// checkpoint renamed), then a restart: every stored copy is counted (`StoredCopies`), so a sample
/// held twice shows even though every reader de-duplicates.
final class BlockCutCrashTests: XCTestCase {
    static let points = ["block-before-rename", "block-renamed-before-head-drop", "head-dropped-before-checkpoint",
                         "checkpoint-before-rename", "checkpoint-before-cleanup"]
    /// The points between a block's rename and the checkpoint's: the WAL still holds what the block
    /// holds, the documented double ("Known limits" in docs/architecture.md).
    static let window: Set = ["block-renamed-before-head-drop", "head-dropped-before-checkpoint", "checkpoint-before-rename"]
    static let blockRange: Int64 = 2 * 3600 * 1000
    static let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "cut")]

    /// Request `k`: 5 series, 10 minutes of samples each at 20 s steps, values encoding (series, time).
    static func request(_ k: Int) -> (body: [UInt8], samples: SentSamples) {
        var encoder = WriteRequestEncoder()
        var samples = SentSamples()
        for s in 0..<5 {
            let wire = (0..<30).map { i -> WireSample in
                let t = Int64(1_700_000_000_000) + Int64(k * 30 + i) * 20_000
                return WireSample(timestamp: t, valueBits: Double(s * 1_000_000 + k * 30 + i).bitPattern)
            }
            encoder.addSeries(labels: [("__name__", "cut_test"), ("series", String(s))], samples: wire)
            let labels = Labels(["__name__": "cut_test", "series": String(s)])
            for sample in wire { samples[SampleKey(labels: labels, timestamp: sample.timestamp)] = sample.valueBits }
        }
        return (encoder.compressed(), samples)
    }

    /// Sends requests `range` in order until one fails to get an answer (the server died); an
    /// answer other than 204 fails the test. Returns what was sent and what was acknowledged.
    static func send(_ range: Range<Int>, to server: TallyServerProcess, _ context: String,
                     file: StaticString = #filePath, line: UInt = #line) -> (sent: SentSamples, acknowledged: SentSamples) {
        var sent = SentSamples(), acknowledged = SentSamples()
        for k in range {
            let (body, samples) = request(k)
            sent.merge(samples) { $1 }
            guard let response = try? server.client.request("POST", "/api/v1/write", headers: headers, body: body) else { break }
            guard response.status == 204 else {
                XCTFail("\(context): request \(k) answered \(response.status) \(response.body)", file: file, line: line)
                break
            }
            acknowledged.merge(samples) { $1 }
        }
        return (sent, acknowledged)
    }

    /// Whether the head a restart would replay spans at most 1.5 block ranges: it owes no cut.
    static func owesNoCut(_ stored: StoredCopies, blockRange: Int64 = blockRange) -> Bool {
        stored.walTimeSpan.map { $0.upperBound - $0.lowerBound <= blockRange / 2 * 3 } ?? true
    }

    func testSIGKILLAtEveryStepOfABlockCutLosesNothingAndDoublesOnlyInTheDocumentedWindow() throws {
        _ = try Binaries.debian("promtool") // an oracle below: asked for first, so no check stops half-way
        for point in Self.points {
            let storage = try makeTemporaryDirectory("cutcrash")
            defer { try? FileManager.default.removeItem(atPath: storage) }
            let tenant = storage + "/cut"
            let inWindow = Self.window.contains(point)
            let server = try TallyServerProcess(storage: storage, environment: ["TALLY_FAILPOINT": point])
            try server.waitReady()
            // 40 requests x 10 minutes: well past 1.5 block ranges, so a cut starts and hits the point.
            let (sent, acknowledged) = Self.send(0..<40, to: server, point)
            assertDiedAtFailpoint(point, waitForEnd(of: server.process, seconds: 30, output: { server.log }, point))

            // Before the WAL's checkpoint drops the cut range, block and WAL both hold it.
            let killed = try StoredCopies.read(tenant)
            let doublesAfterKill = assertStoredOnce(killed, acknowledged: acknowledged, sent: sent, "\(point), after the kill") { places in
                inWindow && places.count == 2 && places.filter(\.isWAL).count == 1
            }
            if inWindow { XCTAssertGreaterThan(doublesAfterKill, 0, "\(point): the renamed block and the WAL hold the same range") }

            let restarted = try TallyServerProcess(storage: storage)
            try restarted.waitReady()
            XCTAssertTrue(waitUntil(seconds: 60) { (try? StoredCopies.read(tenant)).map { Self.owesNoCut($0) } ?? false },
                          "\(point): the restarted server never made the cut it owed")
            restarted.stop(SIGTERM)
            XCTAssertEqual(restarted.process.terminationStatus, 0, "\(point): \(restarted.log)")

            // The restart's catch-up cut writes the doubled range into a second block.
            let stopped = try StoredCopies.read(tenant)
            XCTAssertTrue(Self.owesNoCut(stopped), "\(point): the WAL still spans \(String(describing: stopped.walTimeSpan))")
            let doublesAfterRestart = assertStoredOnce(stopped, acknowledged: acknowledged, sent: sent, "\(point), after the restart") { places in
                inWindow && places.count == 2 && places.allSatisfy { !$0.isWAL }
            }
            XCTAssertEqual(doublesAfterRestart > 0, inWindow, "\(point): \(doublesAfterRestart) samples in two blocks")
            assertPhysicalState(stopped, tenantDirectory: tenant, "\(point), after the restart")

            // Compaction merges the overlapping blocks: from here on, every sample once.
            let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "cut"])
            XCTAssertEqual(compact.status, 0, "\(point): \(compact.stderr)")
            let compacted = try StoredCopies.read(tenant)
            assertStoredOnce(compacted, acknowledged: acknowledged, sent: sent, "\(point), after tally compact")
            let blocks = assertPhysicalState(compacted, tenantDirectory: tenant, "\(point), after tally compact")
            assertNoOverlappingBlocks(blocks, "\(point), after tally compact")
            XCTAssertEqual(blocks.reduce(0) { $0 + Int($1.stats.numSamples) } + compacted.walCopies, compacted.copies.count,
                           "\(point): blocks' numSamples and the WAL add up to the stored samples")

            let stored = try tallyDump(storage: storage, tenant: "cut").split(separator: "\n").map(String.init)
            XCTAssertEqual(try BlockInteropTests.promtoolDump(tenant), stored.sorted(), "\(point): promtool disagrees")
        }
    }
}
