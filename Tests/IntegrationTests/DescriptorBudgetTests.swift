import Foundation
import TallyLoad
import TallyWire
import XCTest

/// A server with fewer descriptors than tenants keeps answering, and restarts, because a tenant
/// holds a descriptor only while its WAL segment is among the `--max-open-tenants` most recently
/// written.
final class DescriptorBudgetTests: XCTestCase {
    private var storage = ""

    override func setUpWithError() throws { storage = try makeTemporaryDirectory("descriptors") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: storage) }

    private static func tenant(_ k: Int) -> String { "fd-\(k)" }

    /// Writes tenant `k`'s one sample at `timestamp`.
    private func write(_ server: TallyServerProcess, tenant k: Int, timestamp: Int64) throws -> LoopbackHTTP.Response {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "descriptor_test")], samples: [WireSample(timestamp: timestamp, valueBits: Double(k).bitPattern)])
        return try server.client.request("POST", "/api/v1/write", headers: [
            ("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", Self.tenant(k))],
            body: encoder.compressed())
    }

    /// Writes one sample at `timestamp` to each tenant, one request each; returns the most
    /// descriptors the server held after any of them.
    private func writeEveryTenant(_ server: TallyServerProcess, tenants: Int, timestamp: Int64) throws -> Int {
        var mostDescriptors = 0
        for k in 0..<tenants {
            let response = try write(server, tenant: k, timestamp: timestamp)
            XCTAssertEqual(response.status, 204, "tenant \(k): \(response.body)")
            mostDescriptors = max(mostDescriptors, openDescriptors(server))
        }
        return mostDescriptors
    }

    private func openDescriptors(_ server: TallyServerProcess) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(server.process.processIdentifier)/fd").count) ?? 0
    }

    func testMoreTenantsThanDescriptorsAreServedAndRestartCleanly() throws {
        let limit = 64, tenants = 200
        // The default budget for 64 descriptors: (64 - 32) / 2.
        let budget = 16
        let server = try TallyServerProcess(storage: storage, fileDescriptorLimit: limit)
        try server.waitReady()
        let idle = openDescriptors(server)
        let mostWriting = try writeEveryTenant(server, tenants: tenants, timestamp: 1000)
        XCTAssertEqual(try MetricsPage(of: server)["tally_wal_open_segment_files"], Double(budget))
        XCTAssertEqual(try MetricsPage(of: server)["tally_wal_segments_closed_for_budget_total"], Double(tenants - budget))
        server.stop(SIGKILL)

        // Every tenant's WAL is replayed at start-up; none keeps a descriptor for it.
        let restarted = try TallyServerProcess(storage: storage, fileDescriptorLimit: limit)
        try restarted.waitReady()
        let idleAfterRestart = openDescriptors(restarted)
        XCTAssertTrue(restarted.log.contains("replayed WAL"), restarted.log)
        XCTAssertFalse(restarted.log.contains("Too many open files"), restarted.log)
        XCTAssertEqual(try restarted.client.request("GET", "/-/ready").status, 200)
        let mostAfterRestart = try writeEveryTenant(restarted, tenants: tenants, timestamp: 2000)
        print("descriptor budget \(budget) at ulimit -n \(limit), \(tenants) tenants: \(idle) descriptors idle, at most \(mostWriting) while writing; "
              + "after kill -9 and restart \(idleAfterRestart) idle, at most \(mostAfterRestart) while writing")
        XCTAssertLessThan(max(mostWriting, mostAfterRestart), limit)
        XCTAssertLessThanOrEqual(idleAfterRestart, idle + 1, "a restart replays every tenant without holding a descriptor for it")
        restarted.stop(SIGTERM)
        XCTAssertEqual(restarted.process.terminationStatus, 0, restarted.log)

        for k in 0..<tenants {
            XCTAssertEqual(try tallyDump(storage: storage, tenant: Self.tenant(k)),
                           "{__name__=\"descriptor_test\"} \(k) 1000\n{__name__=\"descriptor_test\"} \(k) 2000\n", "tenant \(k)")
        }
    }

    /// With a budget larger than the descriptors allow, running out is answered 503 with
    /// Retry-After (a retry can succeed once descriptors free up), never 500, and the tenants
    /// already open keep taking writes.
    func testRunningOutOfDescriptorsIsAnswered503() throws {
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--max-open-tenants", "1000"], fileDescriptorLimit: 64)
        try server.waitReady()
        var statuses: [Int: Int] = [:]
        for k in 0..<100 {
            let response = try write(server, tenant: k, timestamp: 1000)
            statuses[response.status, default: 0] += 1
            if response.status == 503 { XCTAssertEqual(response.headers["retry-after"], "1") }
            if response.status != 204 { XCTAssertTrue(response.body.contains("Too many open files"), response.body) }
        }
        print("past the descriptor limit with --max-open-tenants 1000 at ulimit -n 64: statuses \(statuses.sorted { $0.key < $1.key })")
        XCTAssertEqual(Set(statuses.keys), [204, 503])
        XCTAssertEqual(try write(server, tenant: 0, timestamp: 2000).status, 204, "an open tenant keeps taking writes")
        XCTAssertEqual(try server.client.request("GET", "/-/healthy").status, 200)
        server.stop(SIGTERM)
    }
}
