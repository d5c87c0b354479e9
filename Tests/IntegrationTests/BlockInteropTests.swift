import Foundation
import TallyStorage
import TallyWire
import TallyLoad
import TallyTestSupport
import XCTest

/// Blocks cut by a running server, read back by Tally and by promtool 2.42.
final class BlockInteropTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("promtool")
    }

    private let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "blocks")]

    /// Sorted `promtool tsdb dump` lines of a copy of `directory` (promtool writes into what it opens).
    static func promtoolDump(_ directory: String) throws -> [String] {
        let copy = try makeTemporaryDirectory("promtool") + "/db"
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: directory, toPath: copy)
        if !FileManager.default.fileExists(atPath: copy + "/wal") { try FileManager.default.createDirectory(atPath: copy + "/wal", withIntermediateDirectories: false) }
        let result = try runCommand(Binaries.debian("promtool"), ["tsdb", "dump", copy])
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout.split(separator: "\n").map(String.init).sorted()
    }

    func testBlocksCutDuringIngestionAreReadByPromtoolExactly() throws {
        let promtool = try Binaries.debian("promtool")
        let storage = try makeTemporaryDirectory("blocks")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        var server = try TallyServerProcess(storage: storage)
        try server.waitReady()

        // 9 hours of 12 series in 30 requests, irregular steps, every special value.
        let specials: [UInt64] = [0x7ff0_0000_0000_0002, Double.nan.bitPattern, Double.infinity.bitPattern, (-Double.infinity).bitPattern,
                                  (-0.0).bitPattern, 1e-300.bitPattern, 123456789.0.bitPattern]
        var generator = SeededGenerator(test: "BlockInteropTests.testBlocksCutDuringIngestionAreReadByPromtoolExactly")
        var expected: [String] = []
        var clocks = [Int64](repeating: 1_700_000_000_000, count: 12)
        for request in 0..<30 {
            var encoder = WriteRequestEncoder()
            for s in 0..<12 {
                var samples: [WireSample] = []
                while clocks[s] < 1_700_000_000_000 + Int64(request + 1) * 1_080_000 {
                    clocks[s] += Int64.random(in: 1_000...120_000, using: &generator)
                    let bits = Int.random(in: 0..<10, using: &generator) == 0 ? specials.randomElement(using: &generator)!
                                                                              : Double(Int.random(in: -1000...1000, using: &generator)).bitPattern
                    samples.append(WireSample(timestamp: clocks[s], valueBits: bits))
                    let value = GoFormat.float(Double(bitPattern: bits))
                    expected.append("{__name__=\"block_test\", series=\"\(s)\"} \(value) \(clocks[s])")
                }
                encoder.addSeries(labels: [("__name__", "block_test"), ("series", String(s))], samples: samples)
            }
            let response = try server.client.request("POST", "/api/v1/write", headers: headers, body: encoder.compressed())
            XCTAssertEqual(response.status, 204, response.body)
            if request == 20 {   // a restart in the middle: replay of checkpoint and segments
                server.stop(SIGTERM)
                server = try TallyServerProcess(storage: storage)
                try server.waitReady()
            }
        }
        // The background cut runs after appends; wait (bounded) for the blocks it owes.
        let tenant = storage + "/blocks"
        let deadline = Date().addingTimeInterval(30)
        var blockDirectories: [String] = []
        while Date() < deadline {
            blockDirectories = try FileManager.default.contentsOfDirectory(atPath: tenant).filter { ULID($0) != nil }
            if blockDirectories.count >= 3 { break }
            usleep(50_000)
        }
        server.stop(SIGTERM)
        XCTAssertGreaterThanOrEqual(blockDirectories.count, 3, server.log)
        XCTAssertTrue(server.log.contains("cut block"), server.log)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tenant).filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(leftovers, [])
        let walNames = try FileManager.default.contentsOfDirectory(atPath: tenant + "/wal")
        XCTAssertTrue(walNames.contains { $0.hasPrefix("checkpoint.") }, "\(walNames)")

        let tallyLines = try tallyDump(storage: storage, tenant: "blocks").split(separator: "\n").map(String.init)
        XCTAssertEqual(tallyLines.sorted(), expected.sorted(), "tally dump equals the data sent")
        XCTAssertEqual(try Self.promtoolDump(tenant), expected.sorted(), "promtool dump equals the data sent")

        let list = try runCommand(promtool, ["tsdb", "list", tenant])
        XCTAssertEqual(list.status, 0, list.stderr)
        for block in blockDirectories { XCTAssertTrue(list.stdout.contains(block), list.stdout) }
        let analyze = try runCommand(promtool, ["tsdb", "analyze", tenant])
        XCTAssertEqual(analyze.status, 0, analyze.stderr)
        XCTAssertTrue(analyze.stdout.contains("block_test"), analyze.stdout)
    }
}
