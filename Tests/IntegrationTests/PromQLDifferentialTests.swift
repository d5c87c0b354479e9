import Foundation
import Synchronization
import TallyLoad
import TallyQuery
import TallyStorage
import TallyTestSupport
import XCTest

/// Issue 15's differential test: Tally's query API against a real Prometheus 2.42 holding the same
/// data (`PromQLDifferentialData`): promtool's blocks from one OpenMetrics file, loaded by Prometheus
/// and by `tally import blocks`, plus the same remote-write pushes with staleness markers and late
/// samples. Every query of `Resources/promql-differential-queries.txt` is asked of both as an instant
/// query at several times and as range queries with several steps and unaligned starts.
///
/// `TALLY_DIFF_PEER=prometheus` compares a second Prometheus on the same data instead of Tally: the
/// harness checked against itself (every answer must then agree). `TALLY_DIFF_PEER=engine` asks Tally's
/// engine in-process over the tenant instead of its HTTP API (no metadata requests then; a trap in the
/// engine ends the test process, where over HTTP it ends only the server and fails the test).
final class PromQLDifferentialTests: XCTestCase {
    /// The share of evaluations that must agree for the test to pass. The aim is 1 (all of them);
    /// lowered only to watch the score while the engine matures.
    static let requiredAgreement = 1.0

    /// Where the full report goes (`TALLY_DIFF_REPORT` to choose another path).
    static var reportPath: String {
        ProcessInfo.processInfo.environment["TALLY_DIFF_REPORT"] ?? DocsLinkTests.repository + "/.build/promql-differential-report.txt"
    }

    private typealias Dataset = PromQLDifferentialData

    /// Instant times: between samples, on a block boundary (also midnight and a new month), a
    /// millisecond before one, in the pushed part on and off the sample grid, and past the end within
    /// and beyond the 5 m lookback.
    static let evaluations: [PromQLEvaluation] = [
        .instant(Dataset.origin + Dataset.hour + 3 * Dataset.minute + 7_123),
        .instant(Dataset.origin + 2 * Dataset.hour),
        .instant(Dataset.origin + 4 * Dataset.hour - 1),
        .instant(Dataset.blockEnd + 20 * Dataset.minute + 30_500),
        .instant(Dataset.blockEnd + 60 * Dataset.minute),
        .instant(Dataset.pushEnd + 2 * Dataset.minute),
        .instant(Dataset.pushEnd + 7 * Dataset.minute),
        // Across the blocks' end into the pushes.
        .range(start: Dataset.blockEnd - 20 * Dataset.minute + 7_300, end: Dataset.blockEnd + 30 * Dataset.minute, step: "15s"),
        // Across two block boundaries.
        .range(start: Dataset.origin + 90 * Dataset.minute + 500, end: Dataset.origin + 330 * Dataset.minute, step: "60"),
        // From before the first sample to past the last.
        .range(start: Dataset.origin - 13 * Dataset.minute + 1, end: Dataset.pushEnd + 15 * Dataset.minute, step: "7m"),
        .range(start: Dataset.origin + 17 * Dataset.minute + 11_000, end: Dataset.origin + 8 * Dataset.hour, step: "1h"),
        // Around midnight, at an odd step.
        .range(start: Dataset.origin + 110 * Dataset.minute, end: Dataset.origin + 130 * Dataset.minute + 1, step: "37.5"),
    ]

    override func setUpWithError() throws {
        _ = try Binaries.debian("promtool")
        _ = try Binaries.debian("prometheus")
    }

    func testEveryQueryAnswersAsPrometheus() throws {
        let queries = try Self.corpus()
        try Self.checkCoverage(queries)
        let root = try makeTemporaryDirectory("promql-diff")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = PromQLDifferentialData()
        try data.openMetrics.write(toFile: root + "/data.om", atomically: true, encoding: .utf8)
        let created = try runCommand(Binaries.debian("promtool"), ["tsdb", "create-blocks-from", "openmetrics", root + "/data.om", root + "/blocks"], timeout: 300)
        XCTAssertEqual(created.status, 0, created.stderr)

        let started = Date()
        let reference = try DifferentialPrometheus(directory: root + "/prometheus", blocks: root + "/blocks")
        let peerKind = ProcessInfo.processInfo.environment["TALLY_DIFF_PEER"] ?? "tally"
        let peerIsPrometheus = peerKind == "prometheus"
        let peerPrometheus = peerIsPrometheus ? try DifferentialPrometheus(directory: root + "/peer", blocks: root + "/blocks") : nil
        let tally = peerIsPrometheus ? nil : try DifferentialTally(storage: root + "/tally", blocks: root + "/blocks")
        let servers = [reference.endpoint, peerPrometheus?.endpoint ?? tally!.endpoint]

        for body in data.storedPushes {
            for server in servers {
                let r = try server.push(body)
                XCTAssertEqual(r.status / 100, 2, "\(server.name) refused a push both should store: \(r.status) \(r.body)")
            }
        }
        // Samples before the late-sample window: both refuse the whole request.
        for server in servers {
            let r = try server.push(data.refusedPush)
            XCTAssertNotEqual(r.status / 100, 2, "\(server.name) took samples older than the late-sample window: \(r.body)")
        }

        let peer = try peerPrometheus?.endpoint ?? (peerKind == "engine" ? tally!.inProcessEndpoint() : tally!.endpoint)
        let probe = try peer.ask("1", .instant(Dataset.origin))
        guard probe.outcome == "success" else {
            throw TestEnvironmentFailure(description: "\(peer.name) does not answer the query `1`: \(probe.summary())")
        }
        // Both hold what was sent, no more and no less: Prometheus as its raw samples (staleness markers
        // are never returned), Tally as `tally dump` (staleness markers are NaN there), so that what
        // follows compares query engines, not ingestion.
        let raw = try reference.endpoint.ask(#"{__name__=~".+"}[8h]"#, .instant(Dataset.pushEnd))
        XCTAssertEqual(Dataset.differences(Self.samples(raw), from: data.expectedSamples(staleMarkers: false)), [], "Prometheus holds other samples than sent")
        if let tally {
            XCTAssertEqual(Dataset.differences(try tally.dumpedSamples(), from: data.expectedSamples(staleMarkers: true)), [], "Tally holds other samples than sent")
        } else {
            let peerRaw = try peer.ask(#"{__name__=~".+"}[8h]"#, .instant(Dataset.pushEnd))
            XCTAssertEqual(Dataset.differences(Self.samples(peerRaw), from: data.expectedSamples(staleMarkers: false)), [], "the second Prometheus holds other samples than sent")
        }

        let results = try Self.compare(queries, on: reference.endpoint, and: peer)
        let report = Self.report(results, peer: peer.name, seconds: Date().timeIntervalSince(started))
        try FileManager.default.createDirectory(atPath: (Self.reportPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try report.full.write(toFile: Self.reportPath, atomically: true, encoding: .utf8)
        print(report.summary)
        print("PromQLDifferentialTests: full report in \(Self.reportPath)")

        // Thousands of randomly broken queries: each gets the same outcome (an answer, or an error of
        // the same class) and the same answer, and none takes the server down.
        let mutated = Self.mutations(of: queries.filter { !$0.hasPrefix("/api/") }, count: Self.mutationCount)
        let mutatedResults = try Self.compare(mutated, on: reference.endpoint, and: peer,
                                              at: [.instant(Dataset.blockEnd + 20 * Dataset.minute + 30_500),
                                                   .range(start: Dataset.origin + 90 * Dataset.minute + 500, end: Dataset.origin + 330 * Dataset.minute, step: "60")])
        let mutatedReport = Self.report(mutatedResults, peer: peer.name + " (mutated queries)", seconds: Date().timeIntervalSince(started))
        print(mutatedReport.summary)
        let mutatedOutcomes = Set(mutatedResults.map(\.actual.outcome))
        XCTAssertTrue(mutatedOutcomes.isSubset(of: ["success", "bad_data", "execution"]), "answers to broken queries: \(mutatedOutcomes)")
        XCTAssertTrue(mutatedOutcomes.isSuperset(of: ["success", "bad_data"]), "edits that still parse, and edits that do not")
        let mutatedAgreed = Double(mutatedResults.filter { $0.difference == nil }.count) / Double(mutatedResults.count)
        XCTAssertGreaterThanOrEqual(mutatedAgreed, Self.requiredAgreement, mutatedReport.summary)
        XCTAssertEqual(try peer.ask("1", .instant(Dataset.origin)).outcome, "success", "the server still answers")

        // The corpus reaches every error class as well as success.
        let outcomes = Set(results.map(\.expected.outcome))
        XCTAssertTrue(outcomes.isSuperset(of: ["success", "bad_data", "execution"]), "reference outcomes: \(outcomes)")
        let agreed = Double(results.filter { $0.difference == nil }.count) / Double(results.count)
        XCTAssertGreaterThanOrEqual(agreed, Self.requiredAgreement, report.summary)
        if peerIsPrometheus { XCTAssertEqual(agreed, 1, "two Prometheus servers on the same data must agree") }
    }

    /// A range-vector answer's samples by `labelKey`.
    private static func samples(_ answer: PromQLAnswer) -> [String: [(Int64, Double)]] {
        Dictionary(answer.series.map { ($0.key, $0.points.map { ($0.0, Double($0.1) ?? -.greatestFiniteMagnitude) }) }, uniquingKeysWith: +)
    }

    // MARK: The corpus

    /// The queries, one a line; blank lines and lines starting with `#` are left out. A line starting
    /// with `/api/` is a metadata request, asked once as written.
    static func corpus() throws -> [String] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/promql-differential-queries.txt").path
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// At least 400 queries, no query twice, and every function, aggregation, operator and modifier in
    /// a query that parses.
    static func checkCoverage(_ queries: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertGreaterThanOrEqual(queries.count, 400, file: file, line: line)
        let repeated = Dictionary(grouping: queries, by: { $0 }).filter { $0.value.count > 1 }.keys
        XCTAssertEqual(repeated.sorted(), [], "queries asked twice", file: file, line: line)
        var covered: Set<String> = []
        for query in queries where !query.hasPrefix("/api/") {
            if let expr = try? PromQL.parse(query) { features(of: expr, into: &covered) }
        }
        let required = PromQLFunction.all.keys.map { $0 + "()" } + AggregateOp.allCases.map(\.rawValue) + BinaryOp.allCases.map(\.rawValue)
            + ["bool", "on", "ignoring", "group_left", "group_right", "by", "without", "offset", "negative offset", "@ timestamp",
               "@ start()", "@ end()", "subquery", "subquery default step", "number literal", "string literal", "unary -"]
        XCTAssertEqual(Set(required).subtracting(covered).sorted(), [], "not in any query that parses", file: file, line: line)
    }

    private static func features(of expr: Expr, into covered: inout Set<String>) {
        func modifiers(offset: Int64, at: AtModifier?) {
            if offset > 0 { covered.insert("offset") }
            if offset < 0 { covered.insert("negative offset") }
            switch at {
            case .timestamp: covered.insert("@ timestamp")
            case .start: covered.insert("@ start()")
            case .end: covered.insert("@ end()")
            case nil: break
            }
        }
        switch expr {
        case .number: covered.insert("number literal")
        case .string: covered.insert("string literal")
        case .vectorSelector(let v): modifiers(offset: v.offset, at: v.at)
        case .matrixSelector(let m): modifiers(offset: m.selector.offset, at: m.selector.at)
        case .subquery(let s):
            covered.insert(s.step == 0 ? "subquery default step" : "subquery")
            modifiers(offset: s.offset, at: s.at)
            features(of: s.expr, into: &covered)
        case .aggregate(let a):
            covered.insert(a.op.rawValue)
            if a.without { covered.insert("without") } else if !a.grouping.isEmpty { covered.insert("by") }
            features(of: a.expr, into: &covered)
            if let parameter = a.parameter { features(of: parameter, into: &covered) }
        case .binary(let b):
            covered.insert(b.op.rawValue)
            if b.returnBool { covered.insert("bool") }
            if let m = b.matching {
                if m.on { covered.insert("on") } else if !m.matchingLabels.isEmpty { covered.insert("ignoring") }
                if m.cardinality == .manyToOne { covered.insert("group_left") }
                if m.cardinality == .oneToMany { covered.insert("group_right") }
            }
            features(of: b.lhs, into: &covered)
            features(of: b.rhs, into: &covered)
        case .call(let c):
            covered.insert(c.function.name + "()")
            for arg in c.args { features(of: arg, into: &covered) }
        case .paren(let p): features(of: p.expr, into: &covered)
        case .unary(let u):
            covered.insert("unary " + u.op.rawValue)
            features(of: u.expr, into: &covered)
        }
    }

    // MARK: Broken queries

    static let mutationCount = 2_000

    /// Pieces a mutation may insert: PromQL's punctuation, keywords, literals and edge values.
    private static let fragments = ["(", ")", "{", "}", "[", "]", ",", "\"", "'", "`", "=", "=~", "!=", "!~", "@", ":", "#", " ",
                                    "offset", "by", "without", "on", "ignoring", "group_left", "bool", "and", "or", "unless",
                                    "sum", "rate", "topk", "start()", "end()", "1", "-1", "0", "5m", "1d", "-5m", "1e308", "NaN", "Inf",
                                    "0x1F", "\\", ".*", "+", "-", "*", "/", "%", "^", "atan2", "==", ">", "x", "__name__"]

    /// Corpus queries with random edits (a fixed seed): characters deleted, fragments inserted,
    /// pieces swapped, repeated or cut off, one to three edits each.
    static func mutations(of queries: [String], count: Int) -> [String] {
        var random = SeededGenerator(test: "PromQLDifferentialTests.mutations", fixedSeed: 15)
        var out: [String] = []
        var seen = Set(queries)
        while out.count < count {
            var text = Array(queries.randomElement(using: &random)!)
            for _ in 0..<Int.random(in: 1...3, using: &random) where !text.isEmpty {
                let at = Int.random(in: 0..<text.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0: text.remove(at: at)
                case 1: text.insert(contentsOf: fragments.randomElement(using: &random)!, at: at)
                case 2: text.swapAt(at, Int.random(in: 0..<text.count, using: &random))
                case 3:
                    let end = Int.random(in: at...min(text.count, at + 12), using: &random)
                    text.insert(contentsOf: Array(text[at..<end]), at: end)
                default: text.removeSubrange(at...)
                }
            }
            let query = String(text)
            if !query.isEmpty && seen.insert(query).inserted { out.append(query) }
        }
        return out
    }

    // MARK: Asking and comparing

    struct Result: Sendable {
        let query: String
        let evaluation: PromQLEvaluation
        let expected: PromQLAnswer
        let actual: PromQLAnswer
        let difference: String?
    }

    /// Every query in every evaluation, and its `format_query` text, asked of both on a few threads.
    static func compare(_ queries: [String], on reference: QueryEndpoint, and peer: QueryEndpoint,
                        at evaluations: [PromQLEvaluation] = evaluations) throws -> [Result] {
        let jobs = queries.flatMap { query in query.hasPrefix("/api/") ? [(query, .asWritten)] : (evaluations + [.formatted]).map { (query, $0) } }
        let ordered = Dictionary(queries.map { ($0, promQLDefinesOrder($0)) }, uniquingKeysWith: { a, _ in a })
        let state = Mutex((next: 0, results: [Result?](repeating: nil, count: jobs.count), failure: String?.none))
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while true {
                let index: Int? = state.withLock { s in
                    guard s.next < jobs.count, s.failure == nil else { return nil }
                    s.next += 1
                    return s.next - 1
                }
                guard let index else { return }
                let (query, evaluation) = jobs[index]
                do {
                    let expected = try reference.ask(query, evaluation), actual = try peer.ask(query, evaluation)
                    let ordering: Bool = if case .instant = evaluation { ordered[query] ?? false } else { false }
                    let result = Result(query: query, evaluation: evaluation, expected: expected, actual: actual,
                                        difference: expected.difference(from: actual, ordered: ordering))
                    state.withLock { $0.results[index] = result }
                } catch {
                    state.withLock { $0.failure = "\(query) \(evaluation): \(error)" }
                }
            }
        }
        return try state.withLock { s in
            if let failure = s.failure { throw TestEnvironmentFailure(description: "a query could not be asked: \(failure)") }
            return s.results.compactMap { $0 }
        }
    }

    /// The score and the first mismatches (`summary`), and every mismatch with both answers, every
    /// agreeing error whose message differs, and the count of each outcome (`full`).
    static func report(_ results: [Result], peer: String, seconds: Double) -> (summary: String, full: String) {
        let equal = results.filter { $0.difference == nil }.count
        let queries = Dictionary(grouping: results, by: \.query)
        let queriesEqual = queries.values.filter { $0.allSatisfy { $0.difference == nil } }.count
        let score = String(format: "%@ vs Prometheus 2.42: %d/%d evaluations equal (%.2f%%); %d/%d queries equal in every evaluation; %.0f s",
                           peer, equal, results.count, 100 * Double(equal) / Double(max(results.count, 1)), queriesEqual, queries.count, seconds)
        let mismatches = results.filter { $0.difference != nil }
        func describe(_ r: Result) -> String {
            "\(r.query)\n  \(r.evaluation): \(r.difference ?? "")\n  Prometheus: \(r.expected.summary().replacingOccurrences(of: "\n", with: "\n  "))\n  \(peer): \(r.actual.summary().replacingOccurrences(of: "\n", with: "\n  "))"
        }
        let summary = ([score] + mismatches.prefix(20).map(describe) + (mismatches.count > 20 ? ["... \(mismatches.count - 20) more in the report"] : []))
            .joined(separator: "\n")
        let outcomes = Dictionary(grouping: results, by: { "\($0.expected.outcome) \($0.expected.resultType)" })
            .map { "  \($0.key): \($0.value.count)" }.sorted()
        let messages = results.filter { $0.difference == nil && $0.expected.error != $0.actual.error }
            .map { "\($0.query)\n  \($0.evaluation)\n  Prometheus: \($0.expected.error)\n  \(peer): \($0.actual.error)" }
        // What Prometheus answered each query, evaluation by evaluation: series/points, or the error type.
        let answers = queries.sorted { $0.key < $1.key }.map { query, results in
            query + "\n  " + results.map { r in
                r.expected.outcome == "success" ? "\(r.expected.series.count)/\(r.expected.series.reduce(0) { $0 + $1.points.count })" : r.expected.outcome
            }.joined(separator: " ")
        }
        let full = [score, "", "Prometheus' outcomes:"] + outcomes
            + ["", "Mismatches (\(mismatches.count)):"] + mismatches.map(describe)
            + ["", "Same error type, other message (\(messages.count)):"] + messages
            + ["", "Prometheus' answers, as series/points or the error type, in the order of PromQLDifferentialTests.evaluations:"] + answers
        return (summary, full.joined(separator: "\n") + "\n")
    }
}

/// A server under comparison: where its API is and how its requests name the tenant.
struct QueryEndpoint: Sendable {
    let name: String
    let client: LoopbackHTTP
    let headers: [(String, String)]
    /// Answers queries in place of the HTTP API, when set.
    var local: (@Sendable (String, PromQLEvaluation) -> PromQLAnswer)? = nil

    func ask(_ query: String, _ evaluation: PromQLEvaluation) throws -> PromQLAnswer {
        if let local { return local(query, evaluation) }
        let r = try client.request("GET", evaluation.path(query), headers: headers)
        return PromQLAnswer(status: r.status, body: r.body)
    }

    func push(_ body: [UInt8]) throws -> LoopbackHTTP.Response {
        try client.request("POST", "/api/v1/write", headers: headers + [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
                                                                          ("X-Prometheus-Remote-Write-Version", "0.1.0")], body: body)
    }
}

/// Prometheus 2.42 on a copy of the blocks, taking remote-write, with the late-sample window.
final class DifferentialPrometheus {
    let server: PrometheusProcess

    init(directory: String, blocks: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: blocks, toPath: directory + "/data")
        server = try PrometheusProcess(directory: directory, configuration: { _ in
            "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: \(PromQLDifferentialData.lateWindow)\n"
        }, arguments: ["--storage.tsdb.path=\(directory)/data", "--web.enable-remote-write-receiver"])
        try server.waitReady()
    }

    var endpoint: QueryEndpoint { QueryEndpoint(name: "Prometheus", client: server.client(timeoutSeconds: 60), headers: []) }
}

/// `tally serve` on a storage the blocks were imported into (tenant `diff`), with the same
/// late-sample window.
final class DifferentialTally {
    static let tenant = "diff"
    let server: TallyServerProcess

    init(storage: String, blocks: String) throws {
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        let imported = try runCommand(Binaries.tally, ["import", "blocks", blocks, "--storage", storage, "--tenant", Self.tenant])
        guard imported.status == 0 else { throw TestEnvironmentFailure(description: "tally import blocks: \(imported.stderr)") }
        server = try TallyServerProcess(storage: storage, extraArguments: ["--ooo-window", PromQLDifferentialData.lateWindow])
        try server.waitReady()
    }

    /// `tally dump` of the tenant by `labelKey`, read beside the running server.
    func dumpedSamples() throws -> [String: [(Int64, Double)]] {
        var out: [String: [(Int64, Double)]] = [:]
        for line in try tallyDump(storage: server.storage, tenant: Self.tenant).split(separator: "\n") {
            // {name="value", ...} value timestamp (no label value here holds `", `).
            guard let close = line.lastIndex(of: "}") else { continue }
            let labels = line[line.index(after: line.startIndex)..<close].components(separatedBy: ", ").map { pair in
                let equals = pair.firstIndex(of: "=") ?? pair.endIndex
                return (String(pair[..<equals]), String(pair[equals...].dropFirst(2).dropLast()))
            }
            let fields = line[line.index(after: close)...].split(separator: " ")
            guard fields.count == 2, let value = Double(fields[0]), let time = Int64(fields[1]) else { continue }
            out[PromQLDifferentialData.labelKey(labels), default: []].append((time, value))
        }
        return out
    }

    var endpoint: QueryEndpoint {
        QueryEndpoint(name: "Tally", client: LoopbackHTTP(port: server.port, timeoutSeconds: 60), headers: [("X-Scope-OrgID", Self.tenant)])
    }

    /// Tally's query engine in-process over the tenant opened read-only beside the server (call this
    /// after the pushes); it cannot answer the metadata requests.
    func inProcessEndpoint() throws -> QueryEndpoint {
        let database = try TenantDatabase.open(directory: server.storage + "/" + Self.tenant, tenant: Self.tenant, readOnly: true)
        let engine = QueryEngine()
        return QueryEndpoint(name: "Tally's engine (in-process)", client: endpoint.client, headers: []) { query, evaluation in
            switch evaluation {
            case .instant(let t): PromQLAnswer(engine.instantQuery(query, time: t, database: database))
            case .range(let start, let end, let step):
                PromQLAnswer(engine.rangeQuery(query, start: start, end: end, step: PromQLEvaluation.milliseconds(step: step), database: database))
            case .asWritten, .formatted: PromQLAnswer(status: 404, body: "no HTTP API in-process")
            }
        }
    }
}
