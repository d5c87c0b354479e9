import Foundation
import Synchronization
import TallyLoad
import TallyWire
import XCTest

/// A tenant that sends a million new series, with its series limit set: the limit holds, memory
/// stays within the limit's budget, and another tenant's writes are answered while the bomb's are handled.
final class CardinalityBombTests: XCTestCase {
    func testAMillionSeriesStopAtTheLimitWithoutHurtingAnotherTenant() throws {
        let storage = try makeTemporaryDirectory("bomb")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let limit = 20_000
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--limits.max-series-per-tenant", String(limit), "--compaction-interval", "0s"])
        defer { server.stop(SIGTERM) }
        try server.waitReady()
        let baseline = try XCTUnwrap(ProcessStats.read(pid: server.process.processIdentifier))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]

        let bombing = DispatchGroup()
        let bombStatuses = Mutex<[Int: Int]>([:])
        let clock = ContinuousClock()
        let bombRequests = Mutex<[Range<ContinuousClock.Instant>]>([])
        let bombDone = Atomic<Bool>(false)
        let port = server.port
        DispatchQueue.global().async(group: bombing) {
            defer { bombDone.store(true, ordering: .releasing) }
            let connection = LoopbackConnection(LoopbackHTTP(port: port, timeoutSeconds: 120))
            for request in 0..<100 {
                var encoder = WriteRequestEncoder()
                for i in 0..<10_000 {
                    encoder.addSeries(labels: [("__name__", "bomb"), ("id", String(request * 10_000 + i)), ("pod", "pod-\(i % 97)")],
                                      samples: [WireSample(timestamp: now - 60_000, valueBits: 1.0.bitPattern)])
                }
                let body = encoder.compressed()
                let sent = clock.now
                let status = (try? connection.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", "bomb")], body: body).status) ?? -1
                bombRequests.withLock { $0.append(sent..<clock.now) }
                bombStatuses.withLock { $0[status, default: 0] += 1 }
            }
        }
        var calmRequests: [Range<ContinuousClock.Instant>] = []
        let calm = LoopbackConnection(server.client)
        var peak = baseline.residentBytes
        // Bounded: the bomb's 100 requests end, or 100,000 calm writes.
        while !bombDone.load(ordering: .acquiring) && calmRequests.count < 100_000 {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "calm"), ("node", "n1")], samples: [WireSample(timestamp: now - 120_000 + Int64(calmRequests.count), valueBits: 2.0.bitPattern)])
            let sent = clock.now
            XCTAssertEqual(try calm.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", "calm")], body: encoder.compressed()).status, 204)
            calmRequests.append(sent..<clock.now)
            if calmRequests.count % 64 == 0 { peak = max(peak, ProcessStats.read(pid: server.process.processIdentifier)?.residentBytes ?? 0) }
        }
        XCTAssertEqual(bombing.wait(timeout: .now() + .seconds(300)), .success)
        // Not a latency bound (this machine's load sets those), but an order: while one bomb request
        // is being received, decoded and refused, the other tenant sends and gets whole answers. A
        // server that served the tenants one request at a time would answer none in that window.
        let bombs = bombRequests.withLock { $0 }
        let overlapped = bombs.filter { bomb in calmRequests.contains { bomb.lowerBound <= $0.lowerBound && $0.upperBound <= bomb.upperBound } }
        let latencies = calmRequests.map { $0.upperBound - $0.lowerBound }.sorted()
        let bombDurations = bombs.map { $0.upperBound - $0.lowerBound }.sorted()
        let mib = { (bytes: Int) in bytes / 1_048_576 }
        print("cardinality bomb: 1,000,000 series sent, limit \(limit); answers \(bombStatuses.withLock { $0 }); RSS \(mib(baseline.residentBytes)) -> peak \(mib(peak)) MiB; bomb request p50 \(bombDurations[bombDurations.count / 2]); other tenant: \(latencies.count) writes, p50 \(latencies[latencies.count / 2]), p99 \(latencies[latencies.count * 99 / 100]); \(overlapped.count) of \(bombs.count) bomb requests saw another tenant's write answered inside them")

        // The first two requests fill the limit (10,000 series each); every later one is refused.
        XCTAssertEqual(bombStatuses.withLock { $0 }, [204: 2, 400: 98])
        let metrics = try server.client.request("GET", "/metrics").body
        XCTAssertTrue(metrics.contains("tally_samples_rejected_total{tenant=\"bomb\",reason=\"max_series_per_tenant\"} 980000"), metrics)
        // The limit's budget: what 20,000 head series take (about 5 KB each, docs/benchmarks.md) plus
        // a request being decoded (10,000 series, a few MB), well under a million series' 1.1 GB.
        XCTAssertLessThan(peak - baseline.residentBytes, 200 * 1_048_576, "RSS grew past the series limit's budget")
        XCTAssertGreaterThan(latencies.count, 20, "the other tenant wrote while the bomb ran")
        XCTAssertGreaterThanOrEqual(overlapped.count * 2, bombs.count, "another tenant's writes are answered while a bomb request is handled")
    }
}
