import ArgumentParser
import Foundation
import TallyLoad
import TallyQuery
import TallyServer
import TallyStorage

struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a PromQL query over a tenant, as GET /api/v1/query and /api/v1/query_range answer it.",
        discussion: """
        Reads a stopped or running store without changing it (--storage), or asks a running server (--server). \
        Both give the answer the server gives; --format json prints its JSON as the server sends it.
        """,
        subcommands: [Instant.self, Range.self],
        defaultSubcommand: Instant.self)

    /// Where the query runs and how the answer is printed.
    struct Target: ParsableArguments {
        @Option(help: "Storage root (it must exist), read directly.")
        var storage = "storage"

        @Option(help: "A running server to ask instead, http://HOST:PORT.")
        var server: String?

        @Option(help: "Tenant to read.")
        var tenant: String

        @Option(help: "table or json.")
        var format = "table"

        @Option(help: "Longest the query may run, e.g. 30s (default on a stopped store: 2m; a server applies its own --query.timeout).")
        var timeout: String?

        @Option(help: "Lookback delta for a stopped store (a server uses its own --query.lookback-delta).")
        var lookbackDelta = "5m"

        @Option(help: "Most samples the query may hold, for a stopped store (a server uses its own --query.max-samples).")
        var maxSamples = 50_000_000

        func validate() throws {
            guard TenantID.isValid(tenant) else { throw ValidationError(TenantError.invalidName(tenant).description) }
            guard ["table", "json"].contains(format) else { throw ValidationError("--format: expected table or json") }
            guard let lookback = ServerConfiguration.milliseconds(lookbackDelta), lookback > 0 else {
                throw ValidationError("--lookback-delta: expected a positive duration like 5m")
            }
            guard maxSamples > 0 else { throw ValidationError("--max-samples must be positive") }
            if let server { _ = try ServerAddress(server) }
        }

        /// Runs the query with these parameters (as the API names them) and prints the answer;
        /// an error answer is printed on stderr and fails the command.
        func run(_ kind: QueryEvaluation.Kind, _ parameters: [(name: String, value: String)]) throws {
            var parameters = parameters
            if let timeout { parameters.append(("timeout", timeout)) }
            let (status, body) = try server.map { try ask(ServerAddress($0), kind, parameters) } ?? evaluate(kind, parameters)
            let answer = try QueryAnswer(status: status, body: body)
            if format == "json" {
                Output.write(String(decoding: body, as: UTF8.self) + "\n")
            } else if let table = answer.table {
                Output.write(table)
            }
            for warning in answer.warnings { Output.error("tally query: warning: \(warning)\n") }
            if let error = answer.error { throw CommandFailure(error) }
        }

        private func evaluate(_ kind: QueryEvaluation.Kind, _ parameters: [(name: String, value: String)]) throws -> (Int, [UInt8]) {
            let directory = try StoreLocation.tenantDirectory(storage: storage, tenant: tenant)
            let db = try TenantDatabase.open(directory: directory, tenant: tenant, readOnly: true)
            for problem in db.replay.problems { Output.error("tally query: \(problem)\n") }
            let options = QueryOptions(lookbackDelta: ServerConfiguration.milliseconds(lookbackDelta)!, maxSamples: maxSamples)
            let answer = QueryEvaluation.answer(kind, parameters: parameters, database: db, options: options,
                                                now: Int64(Date().timeIntervalSince1970 * 1000))
            return (answer.status, answer.body)
        }

        /// A form POST, the way Grafana asks; the tenant as `?tenant=`, which every server takes
        /// whatever its --tenant-header.
        private func ask(_ address: ServerAddress, _ kind: QueryEvaluation.Kind, _ parameters: [(name: String, value: String)]) throws -> (Int, [UInt8]) {
            let path = (kind == .instant ? "/api/v1/query" : "/api/v1/query_range") + "?tenant=" + LoopbackHTTP.escaped(tenant)
            let form = parameters.map { LoopbackHTTP.escaped($0.name) + "=" + LoopbackHTTP.escaped($0.value) }.joined(separator: "&")
            let seconds = timeout.flatMap(ServerConfiguration.milliseconds).map { Int(clamping: $0 / 1000 + 10) } ?? 130
            let client = LoopbackHTTP(port: address.port, timeoutSeconds: seconds, host: address.host)
            do {
                let answer = try client.request("POST", path, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8))
                return (answer.status, answer.bytes)
            } catch {
                throw CommandFailure("could not ask \(server ?? ""): \(error)")
            }
        }
    }

    struct Instant: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The query's value at one time (default: now).")

        @Argument(help: "PromQL expression.")
        var expression: String

        @Option(parsing: .unconditional, help: "Evaluation time: \(TimeArgument.forms). Default: now.")
        var time: String?

        @OptionGroup var target: Target

        func validate() throws {
            if let time { guard TimeArgument.milliseconds(time, as: .start) != nil else { throw ValidationError("--time \(time): expected \(TimeArgument.forms)") } }
        }

        func run() throws {
            var parameters = [(name: "query", value: expression)]
            if let time { parameters.append(("time", TimeArgument.secondsText(TimeArgument.milliseconds(time, as: .start)!))) }
            try target.run(.instant, parameters)
        }
    }

    struct Range: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The query's values from --start to --end every --step.")

        @Argument(help: "PromQL expression.")
        var expression: String

        @Option(parsing: .unconditional, help: "First evaluation time: \(TimeArgument.forms) (a day means its start).")
        var start: String

        @Option(parsing: .unconditional, help: "Last evaluation time: \(TimeArgument.forms) (a day means its end).")
        var end: String

        @Option(help: "Time between evaluations: a duration like 1h, or seconds.")
        var step: String

        @OptionGroup var target: Target

        func validate() throws {
            for (flag, text, bound) in [("--start", start, TimeArgument.Bound.start), ("--end", end, .end)] {
                guard TimeArgument.milliseconds(text, as: bound) != nil else { throw ValidationError("\(flag) \(text): expected \(TimeArgument.forms)") }
            }
        }

        func run() throws {
            try target.run(.range, [("query", expression),
                                    ("start", TimeArgument.secondsText(TimeArgument.milliseconds(start, as: .start)!)),
                                    ("end", TimeArgument.secondsText(TimeArgument.milliseconds(end, as: .end)!)),
                                    ("step", step)])
        }
    }
}

/// `http://HOST:PORT` of a server to ask; the host a name or an IPv4 address.
struct ServerAddress {
    let host: String
    let port: Int

    init(_ url: String) throws {
        guard let parsed = URLComponents(string: url), parsed.scheme == "http", let name = parsed.host, !name.isEmpty,
              parsed.path.isEmpty || parsed.path == "/" else {
            throw ValidationError("--server \(url): expected http://HOST:PORT (https is not supported; use curl with the same parameters)")
        }
        // A port given must be one; URLComponents reads `:` alone or one past 65535 as none.
        let authority = url.dropFirst("http://".count).prefix { $0 != "/" }
        guard let port = parsed.port ?? (authority.contains(":") ? nil : 80), (1...65535).contains(port) else {
            throw ValidationError("--server \(url): the port must be 1-65535")
        }
        self.port = port
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        defer { if let found { freeaddrinfo(found) } }
        guard getaddrinfo(name, nil, &hints, &found) == 0, let first = found, let address = first.pointee.ai_addr else {
            throw ValidationError("--server \(url): \(name) does not resolve to an IPv4 address")
        }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var inet = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        inet_ntop(AF_INET, &inet, &text, socklen_t(text.count))
        host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
