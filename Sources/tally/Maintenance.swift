import ArgumentParser
import Foundation
import TallyLoad
import TallyServer
import TallyStorage

/// Which tenants a command works on, and how it prints: shared by every operator command.
struct TenantSelection: ParsableArguments {
    @Option(help: "Storage root.")
    var storage = "storage"

    @Option(help: "Tenant to work on.")
    var tenant: String?

    @Flag(help: "Work on every tenant.")
    var allTenants = false

    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    func validate() throws {
        guard (tenant != nil) != allTenants else { throw ValidationError("name one --tenant, or --all-tenants") }
        if let tenant, !TenantID.isValid(tenant) { throw ValidationError(TenantError.invalidName(tenant).description) }
    }

    func tenants() throws -> [String] {
        let names = allTenants ? TenantRegistry.existingTenants(root: storage) : [tenant!]
        for name in names where !FileManager.default.fileExists(atPath: storage + "/" + name) {
            throw CommandFailure("no tenant \(name) under \(storage)")
        }
        return names
    }
}

/// What the maintenance commands (`compact`, `retention`, `delete-series`) share: which tenants,
/// and who does the work. With no server on the storage this process takes the storage lock and
/// works; when a server holds it, the server is asked over loopback, so two writers never touch
/// one tenant.
struct MaintenanceTarget: ParsableArguments {
    @OptionGroup var selection: TenantSelection

    @Option(help: "Port of the running server (on 127.0.0.1) to ask when it holds the storage lock.")
    var serverPort = 9201

    var storage: String { selection.storage }
    var json: Bool { selection.json }

    func tenants() throws -> [String] { try selection.tenants() }

    /// Runs `work` on each tenant under the storage lock, or asks the server at `serverPath`.
    /// `work` returns the tenant's JSON line, its table rows and the problems it met (printed to
    /// stderr). Exits 1 if any tenant failed or had a problem.
    func run(_ what: String, header: [String], serverPath: (String) -> String,
             work: (TenantDatabase) throws -> (json: String, rows: [[String]], problems: [String])) throws {
        let names = try tenants()
        let lock: StorageRootLock
        do { lock = try StorageRootLock(root: storage) } catch { return try ask(names, what, serverPath) }
        var failed = false
        var rows = [header]
        var lines = ""
        for name in names {
            let db = try TenantDatabase.open(directory: storage + "/" + name, tenant: name)
            do {
                let (line, tenantRows, problems) = try work(db)
                lines += line + "\n"
                rows += tenantRows
                for problem in problems { Output.error("tally \(what): \(name): \(problem)\n") }
                if !problems.isEmpty { failed = true }
            } catch {
                failed = true
                Output.error("tally \(what): \(name): \(error)\n")
            }
            try db.close()
        }
        withExtendedLifetime(lock) {}
        Output.write(json ? lines : "No server holds \(storage); this process did the work.\n" + Table.render(rows))
        if failed { throw ExitCode.failure }
    }

    private func ask(_ names: [String], _ what: String, _ serverPath: (String) -> String) throws {
        let client = LoopbackHTTP(port: serverPort, timeoutSeconds: 3600)
        // The server that holds this storage wrote its admin token there; a server serving another
        // storage refuses it, so the command never acts on the wrong store.
        let token: String
        do { token = try OwnerOnlyFile.read(storage + "/" + AdminAccess.tokenFile).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
            throw CommandFailure("\(storage) is locked by a running server, but its admin token is unreadable (run as the storage's owner): \(error)")
        }
        var out = json ? "" : "\(storage) is held by a running server; asked it to \(what) (127.0.0.1:\(serverPort)).\n"
        for name in names {
            let answer: LoopbackHTTP.Response
            do { answer = try client.request("POST", serverPath(name), headers: [(AdminAccess.tokenHeader, token)]) } catch {
                throw CommandFailure("\(storage) is locked by a running server, and asking it on 127.0.0.1:\(serverPort) failed: \(error)")
            }
            if answer.status == 403 && answer.body.contains("admin token refused") {
                throw CommandFailure("the server on 127.0.0.1:\(serverPort) does not serve \(storage); pass the --server-port of the server that does")
            }
            out += answer.body
            guard answer.status == 200 else {
                Output.write(out)
                throw CommandFailure("the server answered \(answer.status) for tenant \(name) (see above)")
            }
        }
        Output.write(out)
    }
}
