import Foundation
import TallyLoad
import XCTest

/// The same question gives the same answer wherever the data sits: head, WAL replay, level-1
/// blocks, a stopped store read by the CLI, and Tally's own compacted blocks after a restart.
final class CostStabilityTests: XCTestCase {
    func testAnswerDoesNotDependOnWhereTheDataIs() throws {
        let root = try makeTemporaryDirectory("cost-stable")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        let dataset = costDataset(days: 3)
        let question = "/api/v1/costs/daily?start=\(utcDate(dataset.start))&end=\(utcDate(dataset.start + 3 * 86_400_000))"
        let tenant = [("THANOS-TENANT", "acme")]
        func ask(_ server: TallyServerProcess) throws -> [String: [String: Double]] {
            let r = try server.client.request("GET", question, headers: tenant)
            XCTAssertEqual(r.status, 200, r.body)
            return try dailyRows(r.body)
        }
        func assertSame(_ a: [String: [String: Double]], _ b: [String: [String: Double]], _ what: String) {
            XCTAssertEqual(Set(a.keys), Set(b.keys), what)
            for (key, row) in a {
                for (field, value) in row where field != "complete" {
                    let other = b[key]?[field] ?? .nan
                    XCTAssertTrue(agree(value, other, within: 1e-12), "\(what): \(key) \(field) \(value) vs \(other)")
                }
            }
        }

        // 1. Everything in the head: a 30-day block range cuts nothing.
        var server = try TallyServerProcess(storage: storage, extraArguments: ["--block-range", "30d"])
        try server.waitReady()
        try push(dataset.requests(senders: 1)[0], to: server.client, headers: tenant)
        let inHead = try ask(server)
        XCTAssertEqual(inHead.count, 4 * dataset.clusters)
        XCTAssertGreaterThan(inHead.values.reduce(0) { $0 + $1["total"]! }, 100)
        XCTAssertEqual(try blockCount(storage), 0)

        // 2. Killed, restarted: everything comes back from the WAL.
        server.stop(SIGKILL)
        server = try TallyServerProcess(storage: storage, extraArguments: ["--block-range", "30d"])
        try server.waitReady()
        assertSame(inHead, try ask(server), "WAL replay")

        // 3. Restarted with 2h blocks: the owed cuts write level-1 blocks in the background.
        server.stop(SIGTERM)
        server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        let deadline = Date().addingTimeInterval(120)
        while try blockCount(storage) < 34 && Date() < deadline { usleep(200_000) }
        XCTAssertGreaterThanOrEqual(try blockCount(storage), 34)
        assertSame(inHead, try ask(server), "level-1 blocks")

        // 4. Stopped: the CLI reads blocks and the WAL's remainder.
        server.stop(SIGTERM)
        let cli = try runCommand(Binaries.tally, ["costs", "daily", "--storage", storage, "--tenant", "acme", "--from", utcDate(dataset.start),
                                                  "--to", utcDate(dataset.start + 3 * 86_400_000), "--format", "json"])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        assertSame(inHead, try dailyRows(cli.stdout), "CLI on a stopped store")

        // 5. Compacted by Tally (2h -> 6h -> 24h blocks), then read after a restart.
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(compact.status, 0, compact.stderr)
        XCTAssertLessThan(try blockCount(storage), 34 / 4)
        server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        assertSame(inHead, try ask(server), "Tally's compacted blocks, after a restart")
        server.stop(SIGTERM)
    }

    private func blockCount(_ storage: String) throws -> Int {
        let r = try runCommand(Binaries.tally, ["blocks", "ls", "--storage", storage, "--tenant", "acme", "--json"])
        guard r.status == 0, let blocks = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Any] else { return -1 }
        return blocks.count
    }
}
