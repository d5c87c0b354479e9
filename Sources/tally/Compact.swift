import ArgumentParser
import Foundation
import TallyLoad
import TallyStorage

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compact tenants' blocks now: merge overlapping blocks, then 2h -> 6h -> 24h (UTC days).",
        discussion: """
        Safe at any time. With no server on the storage, this process takes the storage lock and compacts. \
        When a server holds the lock, the server is asked to compact (POST /api/v1/admin/compact on --server), \
        so two compactors never touch one tenant. The output says which happened.
        """)

    @Option(help: "Storage root.")
    var storage = "storage"

    @Option(help: "Tenant to compact.")
    var tenant: String?

    @Flag(help: "Compact every tenant.")
    var allTenants = false

    @Flag(help: "Print the plan (every step and the block count after) and change nothing.")
    var dryRun = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Port of the running server (on 127.0.0.1) to ask when it holds the storage lock.")
    var serverPort = 9201

    func validate() throws {
        guard (tenant != nil) != allTenants else { throw ValidationError("name one --tenant, or --all-tenants") }
        if let tenant, !TenantID.isValid(tenant) { throw ValidationError(TenantError.invalidName(tenant).description) }
    }

    func run() throws {
        let tenants = allTenants ? TenantRegistry.existingTenants(root: storage) : [tenant!]
        for name in tenants where !FileManager.default.fileExists(atPath: storage + "/" + name) {
            throw ValidationError("no tenant \(name) under \(storage)")
        }
        if dryRun { return try plan(tenants) }
        let lock: StorageRootLock
        do { lock = try StorageRootLock(root: storage) } catch { return try askServer(tenants) }
        var failed = false
        var rows = [["TENANT", "BLOCKS BEFORE", "BLOCKS AFTER", "MERGED", "REASON", "CHILD"]]
        var jsonLines = ""
        for name in tenants {
            let db = try TenantDatabase.open(directory: storage + "/" + name, tenant: name)
            do {
                let report = try db.compact { done, group in
                    if isatty(STDERR_FILENO) != 0 {
                        Output.error("\r\(name): merged \(done) group(s); last: \(group.parents.count) blocks -> 1 (\(group.reason.rawValue))   ")
                    }
                }
                if isatty(STDERR_FILENO) != 0 { Output.error("\n") }
                jsonLines += report.json(tenant: name, by: "this process") + "\n"
                rows.append([name, String(report.blocksBefore), String(report.blocksAfter), "", "", ""])
                for (group, child) in zip(report.groups, report.written) {
                    rows.append(["", "", "", "\(group.parents.count) blocks", group.reason.rawValue,
                                 "\(child.ulid) [\(Blocks.List.utc(child.minTime)), \(Blocks.List.utc(child.maxTime)))"])
                }
            } catch {
                failed = true
                Output.error("tally compact: \(name): \(error)\n")
            }
            try db.close()
        }
        withExtendedLifetime(lock) {}
        Output.write(json ? jsonLines : "No server holds \(storage); compacted by this process.\n" + Table.render(rows))
        if failed { throw ExitCode.failure }
    }

    private func plan(_ tenants: [String]) throws {
        var lines = ""
        for name in tenants {
            let metas = try BlockCatalog.list(tenantDirectory: storage + "/" + name).map(\.meta)
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

    private func askServer(_ tenants: [String]) throws {
        let client = LoopbackHTTP(port: serverPort, timeoutSeconds: 3600)
        var out = json ? "" : "\(storage) is held by a running server; asked it to compact (127.0.0.1:\(serverPort)).\n"
        for name in tenants {
            let answer: LoopbackHTTP.Response
            do { answer = try client.request("POST", "/api/v1/admin/compact?tenant=\(name)") } catch {
                throw ValidationError("\(storage) is locked by a running server, and asking it on 127.0.0.1:\(serverPort) failed: \(error)")
            }
            guard answer.status == 200 else { throw ValidationError("the server answered \(answer.status): \(answer.body)") }
            out += answer.body
        }
        Output.write(out)
    }
}
