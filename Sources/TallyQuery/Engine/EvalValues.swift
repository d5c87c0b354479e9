import Foundation
import TallyStorage

/// One series of an evaluated matrix: at most one point per step, in step order.
struct EvalSeries {
    var labels: Labels
    var points: [Point]
}

typealias Matrix = [EvalSeries]

/// What evaluating a node gives: every numeric type as a matrix over the steps (a scalar is one
/// series without labels), as in Prometheus' evaluator.
enum EvalValue {
    case matrix(Matrix)
    case string(String)

    var matrix: Matrix {
        if case .matrix(let m) = self { return m }
        return []
    }
}

/// One element of an instant vector at a step.
struct VectorElement {
    var labels: Labels
    var timestamp: Int64
    var value: Double
    /// The index of the series it came from in `rangeEval`'s input matrix, whose labels it has;
    /// -1 for one an operator or function made.
    var series = -1
}

/// A failure that ends the evaluation, with the class Prometheus' API gives it.
struct EvalFailure: Error {
    let queryError: QueryError

    static func execution(_ message: String) -> EvalFailure { EvalFailure(queryError: QueryError(.execution, message)) }
    static let tooManySamples = execution("query processing would load too many samples into memory in query execution")

    static func labelBytesExceeded(_ function: String, limit: Int) -> EvalFailure {
        execution("\(function)(): the label values this query makes would pass \(limit) bytes (16 bytes for each sample --query.max-samples allows)")
    }
    static let timedOut = EvalFailure(queryError: QueryError(.timeout, "query timed out in expression evaluation"))
    static let canceled = EvalFailure(queryError: QueryError(.canceled, "query was canceled in expression evaluation"))
}

/// When the query must stop: its time is up, or whoever asked it is gone.
final class Deadline: @unchecked Sendable {
    private let end: ContinuousClock.Instant
    private let cancellation: QueryCancellation?
    private var checks = 0

    init(milliseconds: Int64, cancellation: QueryCancellation? = nil) {
        end = ContinuousClock.now.advanced(by: .milliseconds(max(0, min(milliseconds, Int64(Int32.max) * 1000))))
        self.cancellation = cancellation
    }

    /// The same end, with a count of checks of its own (for another thread).
    init(sharing other: Deadline) {
        end = other.end
        cancellation = other.cancellation
    }

    /// Throws once the time is up or the query is canceled; looks only every 256th call, so loops
    /// can call it freely.
    func check() throws(EvalFailure) {
        checks &+= 1
        guard checks & 255 == 0 else { return }
        if ContinuousClock.now >= end { throw EvalFailure.timedOut }
        if cancellation?.isCanceled == true { throw EvalFailure.canceled }
    }
}

/// Samples held in memory by the query at once, against `--query.max-samples`: shared by the
/// evaluators of subqueries and step-invariant parts, as Prometheus carries its count through them.
final class SampleBudget {
    let limit: Int
    var current = 0
    /// The most `current` has been.
    private(set) var peak = 0

    init(limit: Int) { self.limit = limit }

    func take(_ n: Int = 1) throws(EvalFailure) {
        current += n
        peak = max(peak, current)
        if current > limit { throw EvalFailure.tooManySamples }
    }

    func release(_ n: Int) { current = max(0, current - n) }

    /// Bytes of label values made by `label_replace` and `label_join` so far. A nest of them can grow
    /// a value tenfold a level (Prometheus has no bound), so they are held to the memory the sample
    /// limit allows: 16 bytes a sample.
    private var madeLabelBytes = 0

    var labelByteLimit: Int { limit.multipliedReportingOverflow(by: 16).overflow ? Int.max : limit * 16 }

    func takeLabelBytes(_ n: Int, in function: String) throws(EvalFailure) {
        madeLabelBytes = madeLabelBytes.addingReportingOverflow(n).overflow ? Int.max : madeLabelBytes + n
        if madeLabelBytes > labelByteLimit { throw EvalFailure.labelBytesExceeded(function, limit: labelByteLimit) }
    }
}

extension Labels {
    static let metricName = "__name__"

    var withoutMetricName: Labels { removing([Labels.metricName]) }

    func removing(_ names: Set<String>) -> Labels {
        guard pairs.contains(where: { names.contains($0.name) }) else { return self }
        return Labels(pairs.filter { !names.contains($0.name) })
    }

    func keeping(_ names: Set<String>) -> Labels { Labels(pairs.filter { names.contains($0.name) }) }

    /// Prometheus' `labels.Builder.Set`: an empty value removes the label.
    func setting(_ name: String, _ value: String) -> Labels {
        var kept = pairs.filter { $0.name != name }
        if !value.isEmpty { kept.append(Label(name, value)) }
        return Labels(kept)
    }

    /// The value of `name`, "" when absent (Prometheus' `labels.Get`).
    func value(_ name: String) -> String { self[name] ?? "" }
}

/// Go's `int64(f)` on amd64: truncation, and the minimum for NaN and values out of range.
func goInt64(_ value: Double) -> Int64 {
    guard value > -9.223372036854775808e18 && value < 9.223372036854775808e18 else { return .min }
    return Int64(value)
}

extension PromQL {
    /// Prometheus' label name syntax (`model.LabelName.IsValid`): `^[a-zA-Z_][a-zA-Z0-9_]*$`.
    public static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.utf8.first else { return false }
        func letter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 }
        return letter(first) && name.utf8.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }
}
