import Foundation
import TallyLoad
import XCTest

/// A stopped store of three days of the cost dataset under tenant `acme`, and readers of it.
struct StoreFixture {
    let dataset = costDataset(days: 3)

    /// A stopped store holding the dataset in 2h blocks under tenant `acme`.
    func makeStore(_ root: String) throws -> String {
        let storage = root + "/storage"
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s"])
        try server.waitReady()
        try push(dataset.requests(senders: 1)[0], to: server.client, headers: [("THANOS-TENANT", "acme")])
        // The server cuts blocks in the background, and a stop leaves what it still owes to the next
        // open. Stop only once the cuts have settled, so the store is the same on a busy machine.
        var cuts = -1.0, settledSince = Date()
        for _ in 0..<480 {
            let now = try MetricsPage(of: server)["tally_block_cuts_total"] ?? 0
            if now != cuts {
                cuts = now
                settledSince = Date()
            } else if Date().timeIntervalSince(settledSince) >= 3 {
                break
            }
            usleep(250_000)
        }
        server.stop(SIGTERM)
        return storage
    }

    func costs(_ storage: String) throws -> [String: [String: Double]] {
        let r = try runCommand(Binaries.tally, ["costs", "daily", "--storage", storage, "--tenant", "acme", "--from", utcDate(dataset.start),
                                                "--to", utcDate(dataset.start + 2 * 86_400_000), "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try dailyRows(r.stdout).mapValues { $0.filter { $0.key != "complete" } }
    }

    func blocks(_ storage: String) throws -> [[String: Any]] {
        let r = try runCommand(Binaries.tally, ["blocks", "ls", "--storage", storage, "--tenant", "acme", "--json"])
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []).compactMap { $0["meta"] as? [String: Any] }
    }

    /// "acme: N blocks -> M blocks in K step(s)" from `--dry-run`.
    func plannedCount(_ storage: String) throws -> Int {
        let r = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme", "--dry-run"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = r.stdout.split(separator: "\n").first ?? ""
        return try XCTUnwrap(first.split(separator: ">").last?.split(separator: " ").first.flatMap { Int($0) }, r.stdout)
    }

}
