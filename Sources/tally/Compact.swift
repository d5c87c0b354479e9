import ArgumentParser
import Foundation
import TallyStorage

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compact tenants' blocks now: merge overlapping blocks, then 2h -> 6h -> 24h (UTC days), then rewrite blocks with 5% or more deleted.",
        discussion: """
        Safe at any time. With no server on the storage, this process takes the storage lock and compacts. \
        When a server holds the lock, the server is asked to compact (POST /api/v1/admin/compact), so two \
        compactors never touch one tenant. The output says which happened.
        """)

    @OptionGroup var target: MaintenanceTarget

    @Flag(help: "Print the plan (every step and the block count after) and change nothing.")
    var dryRun = false

    func run() throws {
        if dryRun { return try plan(try target.tenants()) }
        try target.run("compact", header: ["TENANT", "BLOCKS BEFORE", "BLOCKS AFTER", "MERGED", "REASON", "CHILD"],
                       serverPath: { "/api/v1/admin/compact?tenant=\($0)" }) { db in
            let report = try db.compact { done, group in
                if isatty(STDERR_FILENO) != 0 {
                    Output.error("\r\(db.tenant): merged \(done) group(s); last: \(group.parents.count) blocks -> 1 (\(group.reason.rawValue))   ")
                }
            }
            if isatty(STDERR_FILENO) != 0 && !report.groups.isEmpty { Output.error("\n") }
            var rows = [[db.tenant, String(report.blocksBefore), String(report.blocksAfter), "", "", ""]]
            for (group, child) in zip(report.groups, report.written) {
                rows.append(["", "", "", "\(group.parents.count) blocks", group.reason.rawValue,
                             child.map { "\($0.ulid) [\(Blocks.List.utc($0.minTime)), \(Blocks.List.utc($0.maxTime)))" } ?? "none: every sample was deleted"])
            }
            return (report.json(tenant: db.tenant, by: "this process"), rows, report.failures.map { "left as they were: \($0)" })
        }
    }

    private func plan(_ tenants: [String]) throws {
        var lines = ""
        for name in tenants {
            let metas = try BlockCatalog.list(tenantDirectory: target.storage + "/" + name).map(\.meta)
            let (steps, after) = CompactionPlanner.simulate(metas)
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
