import Foundation
@testable import TallyQuery
import TallyStorage
import XCTest

/// Runs engine test scripts in the format of Prometheus' `promql/testdata`: `load <step>` with
/// series and values (`1 2 _ stale 0+10x5`), `eval instant at <time> <query>` (`eval_ordered`,
/// `eval_fail`) followed by the expected elements, and `clear`. Data goes through a real tenant
/// database in a temporary directory, so the engine reads it the way the server does.
final class PromQLScript {
    private var directory: String
    private var database: TenantDatabase
    private let engine = QueryEngine()
    private(set) var failures: [String] = []
    private(set) var evaluations = 0
    /// The tenant the script loaded.
    var tenant: TenantDatabase { database }

    init() throws {
        directory = try Self.makeDirectory()
        database = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(syncPolicy: .interval(.seconds(60))))
    }

    deinit {
        try? database.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func makeDirectory() throws -> String {
        var template = Array("/tmp/tally-promql-XXXXXX".utf8CString)
        guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw CocoaError(.fileWriteUnknown) }
        return String(cString: path)
    }

    /// A script runner whose tenant holds `series` (lines of a `load 1m` block).
    static func loaded(_ series: [String]) throws -> PromQLScript {
        let script = try PromQLScript()
        try script.run("load 1m\n" + series.map { "  " + $0 + "\n" }.joined(), name: "load")
        return script
    }

    func run(_ script: String, name: String) throws {
        let lines = script.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        var i = 0
        while i < lines.count {
            let line = lines[i].trimmingCharacters(in: .whitespaces)
            i += 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line == "clear" {
                try database.close()
                try FileManager.default.removeItem(atPath: directory)
                directory = try Self.makeDirectory()
                database = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(syncPolicy: .interval(.seconds(60))))
                continue
            }
            var block: [String] = []
            while i < lines.count, lines[i].hasPrefix(" ") || lines[i].hasPrefix("\t") {
                block.append(lines[i].trimmingCharacters(in: .whitespaces))
                i += 1
            }
            if line.hasPrefix("load ") {
                try load(step: Self.duration(String(line.dropFirst(5))), block)
            } else if line.hasPrefix("eval") {
                evaluate(line, expected: block, at: "\(name):\(i - block.count - 1)")
            }
        }
    }

    // MARK: load

    /// A series defined twice in one `load` takes its later definition, as Prometheus' test
    /// harness keeps one definition per label set.
    private func load(step: Int64, _ lines: [String]) throws {
        var definitions: [(labels: Labels, samples: [(Int64, UInt64)])] = []
        for line in lines {
            guard let split = line.lastIndex(where: { $0 == "}" }).map({ line.index(after: $0) })
                ?? line.firstIndex(where: { $0 == " " || $0 == "\t" }) else { continue }
            let labels = try Self.labels(String(line[..<split]))
            let values = Self.values(String(line[split...]).trimmingCharacters(in: .whitespaces))
            let samples = values.enumerated().compactMap { i, v in v.map { (Int64(i) * step, $0) } }
            if let earlier = definitions.firstIndex(where: { $0.labels == labels }) {
                definitions[earlier].samples = samples
            } else {
                definitions.append((labels, samples))
            }
        }
        for definition in definitions { try append(definition.labels, definition.samples) }
    }

    private func append(_ labels: Labels, _ samples: [(Int64, UInt64)]) throws {
        try SeriesWriter(database).append(labels, samples)
    }

    static func labels(_ text: String) throws -> Labels {
        guard case .vectorSelector(let selector) = try PromQL.parse(text) else { return Labels([]) }
        return Labels(selector.allMatchers.map { Label($0.name, $0.value) })
    }

    /// `1 2 _ stale 0+10x3 5x2 -1-1x2 _x3`: nil for a missing sample.
    static func values(_ text: String) -> [UInt64?] {
        var out: [UInt64?] = []
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) {
            if token == "_" { out.append(nil); continue }
            if token == "stale" { out.append(staleMarkerBits); continue }
            if let x = token.firstIndex(of: "x"), let count = Int(token[token.index(after: x)...]) {
                let head = String(token[..<x])
                if head == "_" { out += Array(repeating: nil, count: count); continue }
                var start = head, increment = "0"
                if let sign = head.dropFirst().lastIndex(where: { $0 == "+" || $0 == "-" }), head[head.index(before: sign)] != "e" {
                    start = String(head[..<sign])
                    increment = String(head[sign...])
                }
                let a = number(start), b = number(increment)
                for k in 0...count { out.append((a + Double(k) * b).bitPattern) }
                continue
            }
            out.append(number(token).bitPattern)
        }
        return out
    }

    private static func number(_ text: String) -> Double {
        switch text.lowercased() {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan": return .nan
        default: return Double(text.hasPrefix("+") ? String(text.dropFirst()) : text) ?? .nan
        }
    }

    static func duration(_ text: String) -> Int64 {
        var total: Int64 = 0, number: Int64 = 0
        var chars = Array(text.trimmingCharacters(in: .whitespaces))
        var i = 0
        while i < chars.count {
            if let d = chars[i].wholeNumberValue { number = number * 10 + Int64(d); i += 1; continue }
            var unit = String(chars[i])
            if chars[i] == "m" && i + 1 < chars.count && chars[i + 1] == "s" { unit = "ms"; i += 1 }
            let factor: Int64 = switch unit {
            case "ms": 1
            case "s": 1000
            case "m": 60_000
            case "h": 3_600_000
            case "d": 86_400_000
            case "w": 604_800_000
            case "y": 31_536_000_000
            default: 0
            }
            total += number * factor
            number = 0
            i += 1
        }
        chars = []
        return total
    }

    // MARK: eval

    /// As Prometheus' harness does: the query at its time, then again with `@ <time>` on its
    /// selectors at other times (`pinnedVariants`); each as an instant query, and unless an error
    /// is expected, as a range query over [t - 1m, t + 1m] at 1m whose middle step must agree.
    private func evaluate(_ line: String, expected: [String], at location: String) {
        let words = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true).map(String.init)
        guard words.count == 5, words[1] == "instant", words[2] == "at" else { return }
        let command = words[0], time = Self.duration(words[3]), query = words[4]
        for (variant, at) in [(query, time)] + Self.pinnedVariants(query, time: time) {
            evaluations += 1
            let result = engine.instantQuery(variant, time: at, database: database)
            switch (command, result) {
            case ("eval_fail", .success):
                failures.append("\(location): \(variant) at \(at): expected an error, got a result")
            case ("eval_fail", .failure):
                continue
            case (_, .failure(let error)):
                failures.append("\(location): \(variant) at \(at): \(error.kind.rawValue): \(error.message)")
            case (_, .success(let answer)):
                compare(answer.value, expected, ordered: command == "eval_ordered", query: "\(variant) at \(at)", location: location)
                guard command != "eval_ordered" else { continue }
                switch engine.rangeQuery(variant, start: at - 60_000, end: at + 60_000, step: 60_000, database: database) {
                case let .failure(error):
                    failures.append("\(location): \(variant) at \(at) in range mode: \(error.kind.rawValue): \(error.message)")
                case let .success(range):
                    guard case let .matrix(series) = range.value else {
                        failures.append("\(location): \(variant) at \(at) in range mode: not a matrix")
                        continue
                    }
                    let middle = series.compactMap { s in s.points.first { $0.timestamp == at }.map { InstantSample(labels: s.labels, timestamp: at, value: $0.value) } }
                    let value: QueryValue = if case .scalar = answer.value, let first = middle.first {
                        .scalar(timestamp: at, value: first.value)
                    } else {
                        .vector(middle)
                    }
                    compare(value, expected, ordered: false, query: "\(variant) at \(at) in range mode", location: location)
                }
            }
        }
    }

    /// Prometheus' `atModifierTestCases`: every selector and subquery outside a subquery that has
    /// a time gets `@ time` (a subquery's inside is left alone), asked at -10t, 0, t/5, t and 10t
    /// (-1s, 0 and 1s for t = 0); none for a query calling a function whose answer depends on the
    /// evaluation time even with step-invariant arguments.
    static func pinnedVariants(_ query: String, time: Int64) -> [(String, Int64)] {
        guard let expr = try? PromQL.parse(query) else { return [] }
        var unsafe = false
        let pinned = pin(expr, at: time, unsafe: &unsafe)
        guard !unsafe else { return [] }
        let times: [Int64] = time == 0 ? [-1000, 0, 1000] : [-10 * time, 0, time / 5, time, 10 * time]
        return times.map { (pinned.description, $0) }
    }

    private static let timeDependentFunctions: Set<String> = [
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month", "year",
        "predict_linear", "time", "timestamp",
    ]

    private static func pin(_ expr: Expr, at t: Int64, unsafe: inout Bool) -> Expr {
        func pinned(_ at: AtModifier?) -> AtModifier {
            if case let .timestamp(fixed)? = at { return .timestamp(fixed) }
            return .timestamp(t)
        }
        switch expr {
        case .number, .string:
            return expr
        case var .vectorSelector(v):
            v.at = pinned(v.at)
            return .vectorSelector(v)
        case var .matrixSelector(m):
            m.selector.at = pinned(m.selector.at)
            return .matrixSelector(m)
        case var .subquery(s):
            s.at = pinned(s.at)
            return .subquery(s)
        case var .aggregate(a):
            a.expr = pin(a.expr, at: t, unsafe: &unsafe)
            if let parameter = a.parameter { a.parameter = pin(parameter, at: t, unsafe: &unsafe) }
            return .aggregate(a)
        case var .binary(b):
            b.lhs = pin(b.lhs, at: t, unsafe: &unsafe)
            b.rhs = pin(b.rhs, at: t, unsafe: &unsafe)
            return .binary(b)
        case var .call(c):
            if timeDependentFunctions.contains(c.function.name) { unsafe = true }
            for i in c.args.indices { c.args[i] = pin(c.args[i], at: t, unsafe: &unsafe) }
            return .call(c)
        case var .paren(p):
            p.expr = pin(p.expr, at: t, unsafe: &unsafe)
            return .paren(p)
        case var .unary(u):
            u.expr = pin(u.expr, at: t, unsafe: &unsafe)
            return .unary(u)
        }
    }

    private func compare(_ value: QueryValue, _ expected: [String], ordered: Bool, query: String, location: String) {
        var want: [(Labels, Double)] = []
        for line in expected where !line.isEmpty {
            if let close = line.lastIndex(of: "}") {
                let labelText = String(line[...close])
                let labels = labelText == "{}" ? Labels([]) : ((try? Self.labels(labelText)) ?? Labels([]))
                want.append((labels, Self.number(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))))
            } else if let space = line.firstIndex(of: " "), Double(line[..<space]) == nil, !["NaN", "Inf", "-Inf", "+Inf"].contains(String(line[..<space])) {
                want.append((Labels([Label("__name__", String(line[..<space]))]), Self.number(line[space...].trimmingCharacters(in: .whitespaces))))
            } else {
                want.append((Labels([]), Self.number(line)))
            }
        }
        var got: [(Labels, Double)]
        switch value {
        case .scalar(_, let v): got = [(Labels([]), v)]
        case .vector(let samples): got = samples.map { ($0.labels, $0.value) }
        case .string: return
        case .matrix: return
        }
        func equal(_ a: Double, _ b: Double) -> Bool {
            if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
            if a == b { return true }
            return abs(a - b) <= 1e-6 * max(abs(a), abs(b))
        }
        let describe = { (list: [(Labels, Double)]) in list.map { "\($0.0) \($0.1)" }.joined(separator: "; ") }
        if !ordered {
            got.sort { $0.0 < $1.0 }
            want.sort { $0.0 < $1.0 }
        }
        let same = got.count == want.count && zip(got, want).allSatisfy { $0.0 == $1.0 && equal($0.1, $1.1) }
        if !same { failures.append("\(location): \(query)\n    want: \(describe(want))\n    got:  \(describe(got))") }
    }
}

/// Appends a series' samples to a tenant through the write path the server uses.
struct SeriesWriter {
    let database: TenantDatabase

    init(_ database: TenantDatabase) { self.database = database }

    func append(_ labels: [String: String], _ samples: [(Int64, Double)]) throws {
        try append(Labels(labels.map { Label($0.key, $0.value) }), samples.map { ($0.0, $0.1.bitPattern) })
    }

    func append(_ labels: Labels, _ samples: [(Int64, UInt64)]) throws {
        let names = labels.pairs.map { Array($0.name.utf8) }, values = labels.pairs.map { Array($0.value.utf8) }
        let bytes = zip(names, values).flatMap { [$0, $1] }
        let pointers = bytes.map { bytes -> UnsafeMutableRawBufferPointer in
            let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            p.copyBytes(from: bytes)
            return UnsafeMutableRawBufferPointer(rebasing: p[0..<bytes.count])
        }
        defer { pointers.forEach { UnsafeMutableRawBufferPointer(start: $0.baseAddress, count: max(1, $0.count)).deallocate() } }
        let raw = stride(from: 0, to: pointers.count, by: 2).map { RawLabel(name: UnsafeRawBufferPointer(pointers[$0]), value: UnsafeRawBufferPointer(pointers[$0 + 1])) }
        _ = try database.append { batch in
            let handle = raw.withUnsafeBufferPointer { try! batch.series($0) }
            for (t, v) in samples { _ = batch.add(handle, timestamp: t, valueBits: v) }
        }
    }

}

/// Every label set, time and value bit pattern of a query's answer in order, or its error: two
/// ways of evaluating that must agree exactly compare these.
func describeBits(_ result: Result<QueryResult, QueryError>) -> String {
    switch result {
    case .failure(let error): return "error \(error.kind.rawValue): \(error.message)"
    case .success(let answer):
        guard case .matrix(let series) = answer.value else { return "\(answer.value)" }
        return series.map { s in s.labels.description + s.points.map { " \($0.timestamp):\(bits($0.value))" }.joined() }.joined(separator: "\n")
    }
}

/// A value's bits, every NaN as one: which NaN an operation on two NaNs gives depends on the order
/// the compiler puts its operands in, and no answer shows it (JSON and every PromQL operation
/// see NaN alike).
func bits(_ value: Double) -> String {
    value.isNaN ? "NaN" : String(value.bitPattern)
}
