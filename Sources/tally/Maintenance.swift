import ArgumentParser
import Foundation
import TallyLoad
import TallyServer
import TallyStorage

/// Which tenants a command works on, and how it prints: shared by every operator command.
struct TenantSelection: ParsableArguments {
    @Option(help: "Storage root (it must exist).")
    var storage = "storage"

    @Option(help: "Tenant to work on.")
    var tenant: String?

    @Flag(help: "Work on every tenant.")
    var allTenants = false

    @Flag(help: "Print JSON instead of a table: a line per tenant (`blocks ls`: one array of blocks).")
    var json = false

    func validate() throws {
        if tenant != nil && allTenants { throw ValidationError("--tenant and --all-tenants exclude each other: name one") }
        if let tenant, !TenantID.isValid(tenant) { throw ValidationError(TenantError.invalidName(tenant).description) }
    }

    /// The tenants named, each known to exist under an existing storage root.
    func tenants() throws -> [String] {
        // Checked here rather than in `validate`, so a mistyped option (`--tennant`) is reported
        // as such by the parser before the missing tenant is.
        guard tenant != nil || allTenants else { throw ValidationError("name the tenant to work on with --tenant T, or --all-tenants") }
        let root = try StoreLocation.root(storage)
        let names = allTenants ? TenantRegistry.existingTenants(root: root) : [tenant!]
        for name in names { _ = try StoreLocation.tenantDirectory(storage: root, tenant: name) }
        return names
    }
}

/// A maintenance answer as the admin endpoints and `--json` print it, one JSON line per tenant,
/// and the table rows it reads as: the same whether this process or the server did the work.
protocol MaintenanceAnswer: Decodable {
    static var header: [String] { get }
    var rows: [[String]] { get }
    /// The rows of tenant `tenant`'s answer; `rows` unless the answer does not name its tenant.
    func rows(tenant: String) -> [[String]]
    /// What went wrong in part (printed to stderr; the command exits 1).
    var problems: [String] { get }
}

extension MaintenanceAnswer {
    var problems: [String] { [] }

    func rows(tenant: String) -> [[String]] { rows }

    static func decode(_ line: String) -> Self? {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(Self.self, from: Data(line.utf8))
    }
}

/// What the maintenance commands (`compact`, `retention`, `delete-series`, `snapshot`) share: which tenants,
/// and who does the work. With no server on the storage this process takes the storage lock and
/// works; when a server holds it, that server is asked, found through what it announced inside the
/// storage (`StorageServer`), so two writers never touch one tenant and no other store is touched.
struct MaintenanceTarget: ParsableArguments {
    @OptionGroup var selection: TenantSelection

    @Option(help: ArgumentHelp(
        "Port the storage's running server must be listening on (a check, never a way to find it).",
        discussion: "The server is found through <storage>/.server, which it writes when it starts; with this option the command also refuses a server on another port."))
    var serverPort: Int?

    @OptionGroup var progress: ProgressOption

    var storage: String { selection.storage }
    var json: Bool { selection.json }

    func tenants() throws -> [String] { try selection.tenants() }

    /// Runs `work` on each tenant under the storage lock, or asks the storage's server at
    /// `serverPath`; both give one JSON line per tenant, printed as `Answer`'s table or as is with
    /// `--json`. Exits 1 if any tenant failed or had a problem.
    func run<Answer: MaintenanceAnswer>(_ what: String, _ answer: Answer.Type, serverPath: (String) -> String,
                                        work: (TenantDatabase) throws -> String) throws {
        let names = try tenants()
        var outcomes: [(tenant: String, line: String?, error: String?)] = []
        let who: String
        if let lock = try storageLock() {
            let meter = progress.meter(what, total: names.count, unit: "tenants")
            for name in names {
                do {
                    let db = try TenantDatabase.open(directory: storage + "/" + name, tenant: name)
                    let line: String
                    do { line = try work(db) } catch {
                        try? db.close()
                        throw error
                    }
                    try db.close()
                    outcomes.append((name, line, nil))
                } catch {
                    outcomes.append((name, nil, "\(error)"))
                }
                meter.advance(name)
            }
            meter.finish()
            withExtendedLifetime(lock) {}
            who = "No server holds \(storage); this process did the work.\n"
        } else {
            let server = try StorageServer.holding(storage, expectedPort: serverPort)
            let meter = progress.meter("\(what) (by the server)", total: names.count, unit: "tenants")
            for name in names {
                let answer = try server.post(serverPath(name))
                // 200: the tenant's JSON line; 500: its JSON line with what failed, or an error.
                let line = answer.body.trimmingCharacters(in: .whitespacesAndNewlines)
                if answer.status == 200 || (answer.status == 500 && Answer.decode(line) != nil) {
                    outcomes.append((name, line, nil))
                } else {
                    outcomes.append((name, nil, "the server answered \(answer.status): \(line)"))
                }
                meter.advance(name)
            }
            meter.finish()
            who = "\(storage) is held by a running server (\(server.label)); asked it to \(what).\n"
        }
        var failed = false
        var rows = [Answer.header]
        var lines = ""
        for outcome in outcomes {
            guard let line = outcome.line, let decoded = Answer.decode(line) else {
                failed = true
                Output.error("tally \(what): \(outcome.tenant): \(outcome.error ?? "unreadable answer: \(outcome.line ?? "")")\n")
                continue
            }
            lines += line + "\n"
            rows += decoded.rows(tenant: outcome.tenant)
            for problem in decoded.problems { Output.error("tally \(what): \(outcome.tenant): \(problem)\n") }
            failed = failed || !decoded.problems.isEmpty
        }
        Output.write(json ? lines : who + Table.render(rows))
        if failed { throw ExitCode.failure }
    }

    /// The storage lock, or nil when another process (a server, another command) holds it.
    private func storageLock() throws -> StorageRootLock? {
        do { return try StorageRootLock(root: storage) } catch {
            if error.errno == EWOULDBLOCK { return nil }
            throw error
        }
    }
}

/// The running server that holds a storage, reached only through what it announced inside that
/// storage (`<storage>/.server`) with the storage's admin token; every answer must name the same
/// storage root, or the command stops before anything is done.
struct StorageServer {
    let storage: String
    let canonicalRoot: String
    let announcement: ServerAnnouncement
    let token: String

    /// The server of `storage`, whose lock another process holds.
    static func holding(_ storage: String, expectedPort: Int?) throws -> StorageServer {
        guard let canonicalRoot = ServerAnnouncement.canonicalRoot(storage) else { throw CommandFailure("no storage at \(storage)") }
        let path = storage + "/" + ServerAnnouncement.fileName
        guard let announced = try? ServerAnnouncement.read(path), announced.processExists else {
            throw CommandFailure("\(storage) is locked by another process, and no running server announces itself in \(path) "
                + "(another maintenance command may hold the lock): try again when it has finished")
        }
        guard announced.storage == canonicalRoot else {
            throw CommandFailure("\(path) announces the server of \(announced.storage), not of \(canonicalRoot) (a copied storage?); nothing was done")
        }
        let address = "\(announced.host):\(announced.port)"
        if let expectedPort, expectedPort != announced.port {
            throw CommandFailure("the server on port \(expectedPort) does not serve \(storage): its server (pid \(announced.pid)) listens on \(address)")
        }
        guard !announced.tls else {
            throw CommandFailure("the server holding \(storage) (pid \(announced.pid), \(address)) serves HTTPS, which this command does not speak: "
                + "stop it to run the command without it, or call the admin endpoints with a credential (docs/operations.md)")
        }
        let token: String
        do { token = try OwnerOnlyFile.read(storage + "/" + AdminAccess.tokenFile).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
            throw CommandFailure("\(storage) is held by a running server, but its admin token is unreadable (run as the storage's owner): \(error)")
        }
        return StorageServer(storage: storage, canonicalRoot: canonicalRoot, announcement: announced, token: token)
    }

    var label: String { "pid \(announcement.pid), \(announcement.host):\(announcement.port)" }

    /// POSTs to `path` with the token; an answer that does not name this storage is refused.
    func post(_ path: String) throws -> LoopbackHTTP.Response {
        let client = LoopbackHTTP(port: announcement.port, timeoutSeconds: 3600, host: announcement.host)
        let answer: LoopbackHTTP.Response
        do { answer = try client.request("POST", path, headers: [(AdminAccess.tokenHeader, token)]) } catch {
            throw CommandFailure("\(storage) is held by a running server (\(label)), but asking it failed: \(error)")
        }
        let named = answer.headers[ServerAnnouncement.storageHeader.lowercased()]
        guard named == canonicalRoot else {
            throw CommandFailure("the server at \(announcement.host):\(announcement.port) does not serve \(canonicalRoot)"
                + (named.map { " (it serves \($0))" } ?? "") + "; nothing was done")
        }
        return answer
    }
}
