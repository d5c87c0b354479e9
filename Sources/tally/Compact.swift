import ArgumentParser
import Foundation
import TallyStorage

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compact tenants' blocks now: merge overlapping blocks, then 2h -> 6h -> 24h (UTC days), then rewrite blocks with 5% or more deleted.",
        discussion: """
        Safe at any time. With no server on the storage, this process takes the storage lock and compacts. \
        When a server holds the lock, the server that announced itself in <storage>/.server is asked to \
        compact (POST /api/v1/admin/compact), so two compactors never touch one tenant. The output says \
        which happened.
        """)

    @OptionGroup var target: MaintenanceTarget

    @Flag(help: "Print the plan (every step and the block count after) and change nothing.")
    var dryRun = false

    @Flag(help: "Also rewrite every block holding a deletion, however small, so that deleted samples leave the disk now (Prometheus' clean_tombstones; POST /api/v1/admin/tsdb/clean_tombstones on a server).")
    var cleanTombstones = false

    /// `tally compact --json` and `POST /api/v1/admin/compact`, one tenant.
    struct Answer: MaintenanceAnswer {
        struct Merge: Decodable {
            var reason: String
            var parents: [String]
            var child: String?
            var minTime: Int64
            var maxTime: Int64
        }

        var tenant: String
        var blocksBefore: Int
        var blocksAfter: Int
        var merged: [Merge]
        var failed: [String]

        static let header = ["TENANT", "BLOCKS BEFORE", "BLOCKS AFTER", "MERGED", "REASON", "CHILD"]

        var rows: [[String]] {
            [[tenant, String(blocksBefore), String(blocksAfter), "", "", ""]] + merged.map { merge in
                ["", "", "", "\(merge.parents.count) blocks", merge.reason,
                 merge.child.map { "\($0) [\(Blocks.List.utc(merge.minTime)), \(Blocks.List.utc(merge.maxTime)))" } ?? "none: every sample was deleted"]
            }
        }

        var problems: [String] { failed.map { "left as they were: \($0)" } }
    }

    func run() throws {
        if dryRun { return try plan(try target.tenants()) }
        let path = cleanTombstones ? "/api/v1/admin/tsdb/clean_tombstones" : "/api/v1/admin/compact"
        try target.run("compact", Answer.self, serverPath: { "\(path)?tenant=\($0)" }) { db in
            let steps = CompactionPlanner.simulate(db.blockMetas, cleaningTombstones: cleanTombstones).steps
            let meter = target.progress.meter("compact \(db.tenant)", total: steps.reduce(0) { $0 + $1.count }, unit: "groups")
            let report = try db.compact(cleaningTombstones: cleanTombstones) { _, group in
                meter.advance("\(group.parents.count) blocks -> 1, \(group.reason.rawValue)")
            }
            meter.finish()
            return report.json(tenant: db.tenant, by: "this process")
        }
    }

    private func plan(_ tenants: [String]) throws {
        var lines = ""
        for name in tenants {
            let metas = try BlockCatalog.list(tenantDirectory: target.storage + "/" + name).map(\.meta)
            let (steps, after) = CompactionPlanner.simulate(metas, cleaningTombstones: cleanTombstones)
            lines += "\(name): \(metas.count) blocks -> \(after) blocks in \(steps.count) step(s)\n"
            for (i, step) in steps.enumerated() {
                for group in step {
                    lines += "  step \(i + 1): \(group.reason.rawValue) \(group.parents.count) blocks [\(Blocks.List.utc(group.minTime)), \(Blocks.List.utc(group.maxTime)))\n"
                }
            }
        }
        Output.write(lines)
    }
}
