import Foundation
import TallyLoad
import TallyQuery
import TallyStorage

/// One way a query is asked: an instant query at a time, or a range query; times in milliseconds.
enum PromQLEvaluation: Sendable, CustomStringConvertible {
    case instant(Int64)
    case range(start: Int64, end: Int64, step: String)
    /// A request of the metadata API (`/api/v1/series?...`), asked once as it is written (each
    /// parameter percent-encoded).
    case asWritten
    /// `/api/v1/format_query` of the query: its canonical text, split as Prometheus splits it.
    case formatted

    /// The API path and parameters, the query percent-encoded.
    func path(_ query: String) -> String {
        let q = "query=" + LoopbackHTTP.escaped(query)
        switch self {
        case .asWritten:
            guard let mark = query.firstIndex(of: "?") else { return query }
            let parameters = query[query.index(after: mark)...].split(separator: "&").map { parameter in
                let equals = parameter.firstIndex(of: "=") ?? parameter.endIndex
                let value = parameter[equals...].dropFirst()
                return LoopbackHTTP.escaped(String(parameter[..<equals])) + (equals < parameter.endIndex ? "=" + LoopbackHTTP.escaped(String(value)) : "")
            }
            return query[..<mark] + "?" + parameters.joined(separator: "&")
        case .formatted: return "/api/v1/format_query?\(q)"
        case .instant(let t): return "/api/v1/query?\(q)&time=\(Self.seconds(t))"
        case .range(let start, let end, let step): return "/api/v1/query_range?\(q)&start=\(Self.seconds(start))&end=\(Self.seconds(end))&step=\(step)"
        }
    }

    /// A range query's step in milliseconds: `15s`, `7m`, `1h`, or seconds (`37.5`).
    static func milliseconds(step: String) -> Int64 {
        let units: [Character: Double] = ["s": 1000, "m": 60_000, "h": 3_600_000]
        guard let unit = step.last.flatMap({ units[$0] }) else { return Int64(((Double(step) ?? 0) * 1000).rounded()) }
        return Int64((Double(step.dropLast()) ?? 0) * unit)
    }

    /// Unix seconds with milliseconds, as Grafana sends them.
    static func seconds(_ ms: Int64) -> String {
        "\(ms / 1000).\(String(format: "%03d", ms % 1000))"
    }

    var description: String {
        switch self {
        case .instant(let t): "instant @\(Self.seconds(t))"
        case .range(let start, let end, let step): "range \(Self.seconds(start))..\(Self.seconds(end)) step \(step)"
        case .asWritten: "as written"
        case .formatted: "format_query"
        }
    }
}

/// What a Prometheus HTTP API answer says, in a form two answers can be compared in: the outcome
/// (`success` or the `errorType`), the result type, and each series' labels with its points. A scalar
/// or string result is one series without labels; an instant vector's series have one point each. The
/// metadata API's lists are of type "list": label sets (`/api/v1/series`), or names and values as
/// series labelled `value`; `format_query`'s text is of type "text", one series labelled `value`.
struct PromQLAnswer: Sendable {
    struct Series: Sendable {
        var labels: [String: String]
        /// Milliseconds, and the value as the API wrote it ("NaN", "+Inf", a number, or a string result).
        var points: [(Int64, String)]
        var key: String { PromQLDifferentialData.labelKey(labels.map { ($0.key, $0.value) }) }
    }

    var httpStatus: Int
    /// "success", or the error type ("bad_data", "execution", ...); "unreadable" for an answer that is
    /// not the API's JSON envelope.
    var outcome: String
    var error = ""
    var resultType = ""
    var series: [Series] = []
    var warnings: [String] = []
    var raw: String

    init(status: Int, body: String) {
        httpStatus = status
        raw = body
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let status = object["status"] as? String else {
            outcome = "unreadable"
            error = "HTTP \(status): \(body.prefix(300))"
            return
        }
        warnings = object["warnings"] as? [String] ?? []
        guard status == "success" else {
            outcome = object["errorType"] as? String ?? "error without errorType"
            error = object["error"] as? String ?? ""
            return
        }
        if let text = object["data"] as? String {
            outcome = status
            resultType = "text"
            series = [Series(labels: ["value": text], points: [])]
            return
        }
        if let list = object["data"] as? [Any] {
            outcome = status
            resultType = "list"
            series = list.map { Series(labels: $0 as? [String: String] ?? ["value": "\($0)"], points: []) }
            return
        }
        guard let data = object["data"] as? [String: Any], let type = data["resultType"] as? String else {
            outcome = "unreadable"
            error = "success without data.resultType: \(body.prefix(300))"
            return
        }
        outcome = status
        resultType = type
        switch (type, data["result"]) {
        case ("scalar", let pair as [Any]), ("string", let pair as [Any]):
            series = [Series(labels: [:], points: Self.point(pair).map { [$0] } ?? [])]
        case (_, let list as [[String: Any]]):
            series = list.map { element in
                let points = element["value"].map { [$0] } ?? element["values"] as? [Any] ?? []
                return Series(labels: element["metric"] as? [String: String] ?? [:], points: points.compactMap { Self.point($0 as? [Any] ?? []) })
            }
        default:
            outcome = "unreadable"
            error = "result of type \(type) not understood: \(body.prefix(300))"
        }
    }

    /// The answer Tally's engine gives in-process, as its HTTP API would write it.
    init(_ result: Result<QueryResult, QueryError>) {
        httpStatus = 0
        raw = ""
        switch result {
        case .failure(let error):
            outcome = error.kind.rawValue
            self.error = error.message
        case .success(let answer):
            outcome = "success"
            warnings = answer.warnings
            func labels(_ l: Labels) -> [String: String] { Dictionary(l.pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }) }
            switch answer.value {
            case .scalar(let t, let v): (resultType, series) = ("scalar", [Series(labels: [:], points: [(t, PromQL.formatValue(v))])])
            case .string(let t, let v): (resultType, series) = ("string", [Series(labels: [:], points: [(t, v)])])
            case .vector(let samples): (resultType, series) = ("vector", samples.map { Series(labels: labels($0.labels), points: [($0.timestamp, PromQL.formatValue($0.value))]) })
            case .matrix(let list): (resultType, series) = ("matrix", list.map { Series(labels: labels($0.labels), points: $0.points.map { ($0.timestamp, PromQL.formatValue($0.value)) }) })
            }
        }
    }

    private static func point(_ pair: [Any]) -> (Int64, String)? {
        guard pair.count == 2, let seconds = (pair[0] as? NSNumber)?.doubleValue, let value = pair[1] as? String else { return nil }
        return (Int64((seconds * 1000).rounded()), value)
    }

    /// Short, for reports: the outcome and at most `limit` series.
    func summary(limit: Int = 6) -> String {
        guard outcome == "success" else { return "\(outcome) (HTTP \(httpStatus)): \(error)" }
        var lines = ["\(resultType), \(series.count) series" + (warnings.isEmpty ? "" : ", warnings \(warnings)")]
        for s in series.prefix(limit) {
            let points = s.points.prefix(4).map { "\(PromQLEvaluation.seconds($0.0))=\($0.1)" }.joined(separator: " ")
            lines.append("  {\(s.key)} \(points)\(s.points.count > 4 ? " ... (\(s.points.count) points)" : "")")
        }
        if series.count > limit { lines.append("  ...") }
        return lines.joined(separator: "\n")
    }

    /// The first way `other` differs from this answer (the expected one), or nil when they agree:
    /// the same outcome and, on success, result type, label sets, timestamps and values within
    /// `tolerance` relative (NaN equals NaN, infinities exactly). Series are compared as sets keyed by
    /// their labels; with `ordered`, the sequence of values must also agree (series with equal values
    /// may come in either order, as PromQL's sort leaves them).
    func difference(from other: PromQLAnswer, ordered: Bool, tolerance: Double = 1e-9) -> String? {
        guard outcome == other.outcome else { return "outcome \(outcome) vs \(other.outcome)" }
        guard outcome == "success" else { return nil }
        guard resultType == other.resultType else { return "result type \(resultType) vs \(other.resultType)" }
        let mine = Dictionary(series.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let theirs = Dictionary(other.series.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        guard mine.count == series.count, theirs.count == other.series.count else { return "a label set appears twice" }
        if let missing = mine.keys.sorted().first(where: { theirs[$0] == nil }) { return "missing series {\(missing)}" }
        if let extra = theirs.keys.sorted().first(where: { mine[$0] == nil }) { return "extra series {\(extra)}" }
        for (key, expected) in mine.sorted(by: { $0.key < $1.key }) {
            let actual = theirs[key]!
            guard expected.points.count == actual.points.count else { return "{\(key)}: \(expected.points.count) points vs \(actual.points.count)" }
            for (a, b) in zip(expected.points, actual.points) {
                guard a.0 == b.0 else { return "{\(key)}: timestamp \(PromQLEvaluation.seconds(a.0)) vs \(PromQLEvaluation.seconds(b.0))" }
                guard Self.agree(a.1, b.1, tolerance) else { return "{\(key)} @\(PromQLEvaluation.seconds(a.0)): \(a.1) vs \(b.1)" }
            }
        }
        if ordered {
            let a = series.map { $0.points.first?.1 ?? "" }, b = other.series.map { $0.points.first?.1 ?? "" }
            if let i = a.indices.first(where: { !Self.agree(a[$0], b[$0], tolerance) }) {
                return "order: position \(i) holds \(a[i]) vs \(b[i])"
            }
        }
        return nil
    }

    /// Two values as the API writes them: numbers within `tolerance` relative, NaN equal to NaN,
    /// infinities and anything that is no number (a string result) exactly.
    static func agree(_ a: String, _ b: String, _ tolerance: Double) -> Bool {
        guard let x = Double(a), let y = Double(b) else { return a == b }
        if x.isNaN || y.isNaN { return x.isNaN && y.isNaN }
        if x.isInfinite || y.isInfinite { return x == y }
        return x == y || abs(x - y) <= tolerance * max(abs(x), abs(y))
    }
}

/// Whether PromQL defines the order of a query's instant-vector result: the outermost call is
/// `sort` or `sort_desc`, or the outermost aggregation is `topk` or `bottomk` without grouping
/// (with grouping, only the order inside each group is defined; those are compared as sets).
func promQLDefinesOrder(_ query: String) -> Bool {
    guard var expr = try? PromQL.parse(query) else { return false }
    while case .paren(let p) = expr { expr = p.expr }
    switch expr {
    case .call(let call): return call.function.name == "sort" || call.function.name == "sort_desc"
    case .aggregate(let a): return (a.op == .topk || a.op == .bottomk) && a.grouping.isEmpty && !a.without
    default: return false
    }
}
