import Foundation
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

/// Four tenants, three senders each advancing at different speeds over two days of minute data,
/// blocks cut while they send; then an outage: one sender fills a three-hour gap late and another
/// resends its last three hours. Nothing may be refused or lost.
final class MultiSenderTests: XCTestCase {
    static let start: Int64 = 1_700_006_400_000       // aligned to 2h
    static let minute: Int64 = 60_000
    static let samplesPerSeries = 2 * 24 * 60
    static let seriesPerSender = 4
    /// Minutes each sender covers per request: fast, medium, slow.
    static let stride = [120, 40, 15]
    /// Sender 1 of each tenant is down for these minutes and sends them only after everything else.
    static let gap = (40 * 60)..<(43 * 60)

    static func value(_ tenant: Int, _ sender: Int, _ series: Int, _ minute: Int) -> Double {
        Double(tenant * 1_000_000 + sender * 100_000 + series * 10_000) + Double(minute) * 0.25
    }

    static func body(tenant: Int, sender: Int, minutes: Range<Int>) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        for s in 0..<seriesPerSender {
            let samples = minutes.map { m in
                WireSample(timestamp: start + Int64(m) * minute, valueBits: value(tenant, sender, s, m).bitPattern)
            }
            encoder.addSeries(labels: [("__name__", "node_cpu_hourly_cost"), ("cluster_id", "c\(tenant)-\(sender)"),
                                       ("node", "n\(s)")], samples: samples)
        }
        return encoder.compressed()
    }

    func testSendersAtDifferentSpeedsAndAnOutageLoseNothing() throws {
        _ = try Binaries.debian("promtool") // an oracle below: asked for first, so no check stops half-way
        let storage = try makeTemporaryDirectory("senders")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        let client = server.client
        func send(_ tenant: Int, _ sender: Int, _ minutes: Range<Int>) throws {
            let r = try client.request("POST", "/api/v1/write", headers: [("THANOS-TENANT", "tenant-\(tenant)")],
                                       body: Self.body(tenant: tenant, sender: sender, minutes: minutes))
            XCTAssertEqual(r.status, 204, "tenant \(tenant) sender \(sender) \(minutes): \(r.body)")
        }

        // Round-robin: every round each sender sends its next stride, so the fast ones run days ahead.
        var next = [[Int]](repeating: [0, 0, 0], count: 4)
        var requests = 0
        while next.contains(where: { $0.contains { $0 < Self.samplesPerSeries } }) {
            for tenant in 0..<4 {
                for sender in 0..<3 where next[tenant][sender] < Self.samplesPerSeries {
                    let from = next[tenant][sender]
                    let to = min(from + Self.stride[sender], Self.samplesPerSeries)
                    next[tenant][sender] = to
                    // Sender 1 is down during the gap: its queue holds those minutes back.
                    let before = from..<max(from, min(to, Self.gap.lowerBound))
                    let after = min(to, max(from, Self.gap.upperBound))..<to
                    let ranges = sender == 1 ? [before, after] : [from..<to]
                    for r in ranges where !r.isEmpty {
                        try send(tenant, sender, r)
                        requests += 1
                    }
                }
            }
        }
        // After the outage: sender 1 delivers the gap (older than its newest samples, inside 24h of
        // the tenant's newest), and sender 2 resends its last three hours.
        for tenant in 0..<4 {
            try send(tenant, 1, Self.gap)
            try send(tenant, 2, (Self.samplesPerSeries - 180)..<Self.samplesPerSeries)
        }
        XCTAssertTrue(server.log.contains("cut block"), "blocks must be cut during ingestion")
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)

        for tenant in 0..<4 {
            var expected: [String] = []
            for sender in 0..<3 {
                for s in 0..<Self.seriesPerSender {
                    for m in 0..<Self.samplesPerSeries {
                        expected.append("{__name__=\"node_cpu_hourly_cost\", cluster_id=\"c\(tenant)-\(sender)\", node=\"n\(s)\"} "
                                        + "\(GoFormat.float(Self.value(tenant, sender, s, m))) \(Self.start + Int64(m) * Self.minute)")
                    }
                }
            }
            expected.sort()
            let name = "tenant-\(tenant)"
            let dumped = try tallyDump(storage: storage, tenant: name).split(separator: "\n").map(String.init).sorted()
            XCTAssertEqual(dumped.count, expected.count, name)
            let missing = Set(expected).subtracting(dumped), extra = Set(dumped).subtracting(expected)
            XCTAssertTrue(missing.isEmpty, "\(name): \(missing.count) missing, e.g. \(missing.sorted().prefix(3))")
            XCTAssertTrue(extra.isEmpty, "\(name): \(extra.count) unexpected, e.g. \(extra.sorted().prefix(3))")
            let promtool = try BlockInteropTests.promtoolDump(storage + "/" + name)
            let promtoolMissing = Set(expected).subtracting(promtool), promtoolExtra = Set(promtool).subtracting(expected)
            XCTAssertEqual(promtool.count, expected.count, "\(name): promtool dump count")
            let times = promtoolMissing.map { Int64($0.split(separator: " ").last!)! }
            let perCluster = Dictionary(grouping: promtoolMissing) { $0.components(separatedBy: "cluster_id=")[1].prefix(6) }.mapValues(\.count)
            XCTAssertTrue(promtoolMissing.isEmpty, "\(name): promtool misses \(promtoolMissing.count) in minutes \(((times.min() ?? 0) - Self.start) / Self.minute)...\(((times.max() ?? 0) - Self.start) / Self.minute) \(perCluster)")
            XCTAssertTrue(promtoolExtra.isEmpty, "\(name): promtool has \(promtoolExtra.count) unexpected, e.g. \(promtoolExtra.sorted().prefix(3))")
            let blocks = try FileManager.default.contentsOfDirectory(atPath: storage + "/" + name).filter { ULID($0) != nil }
            XCTAssertGreaterThanOrEqual(blocks.count, 10, name)
        }
        print("multi-sender: \(requests) requests, \(4 * 3 * Self.seriesPerSender * Self.samplesPerSeries) samples in 4 tenants")
    }
}
