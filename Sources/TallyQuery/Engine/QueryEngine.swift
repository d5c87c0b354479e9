import Foundation
import Synchronization
import TallyStorage

/// Set by whoever asked a query once its answer is no longer wanted (the client went away): the
/// evaluation stops at its next deadline check.
public final class QueryCancellation: Sendable {
    private let canceled = Atomic<Bool>(false)

    public init() {}

    public func cancel() { canceled.store(true, ordering: .relaxed) }

    public var isCanceled: Bool { canceled.load(ordering: .relaxed) }
}

/// Limits and defaults of query evaluation, as Prometheus 2.42's flags of the same names.
public struct QueryOptions: Sendable {
    /// `--query.lookback-delta`: how far back an instant vector looks for a sample, in ms.
    public var lookbackDelta: Int64
    /// `--query.max-samples`: the most samples a query may hold in memory at once.
    public var maxSamples: Int
    /// `--query.timeout`, in ms.
    public var timeout: Int64
    /// The step of a subquery written without one (Prometheus' global evaluation interval), in ms.
    public var defaultSubqueryStep: Int64
    /// Samples and steps a per-series loop goes through, about, from which its series are split
    /// between the cores (`Evaluator.perSeries`); tests move it to take either way.
    var parallelWork = 50_000
    /// Range functions that can work on several steps' windows at once do (`RangeFunctions.sideBySide`);
    /// tests turn it off to compare.
    var sideBySideWindows = true
    /// Stops the evaluation once set (not a flag: one per query).
    public var cancellation: QueryCancellation?

    public init(lookbackDelta: Int64 = 300_000, maxSamples: Int = 50_000_000, timeout: Int64 = 120_000, defaultSubqueryStep: Int64 = 60_000) {
        self.lookbackDelta = lookbackDelta
        self.maxSamples = maxSamples
        self.timeout = timeout
        self.defaultSubqueryStep = defaultSubqueryStep
    }
}

/// A query's answer: one of PromQL's four value types, and what the reader should know about it.
public struct QueryResult: Sendable {
    public var value: QueryValue
    public var warnings: [String]
}

public enum QueryValue: Sendable {
    case scalar(timestamp: Int64, value: Double)
    case string(timestamp: Int64, value: String)
    case vector([InstantSample])
    case matrix([RangeSeries])
}

public struct InstantSample: Sendable, Equatable {
    public var labels: Labels
    /// Milliseconds.
    public var timestamp: Int64
    public var value: Double
}

public struct Point: Sendable, Equatable {
    /// Milliseconds.
    public var timestamp: Int64
    public var value: Double

    public init(timestamp: Int64, value: Double) {
        self.timestamp = timestamp
        self.value = value
    }
}

public struct RangeSeries: Sendable {
    public var labels: Labels
    public var points: [Point]
}

/// Why a query has no answer, in the classes of Prometheus' HTTP API (`errorType`).
public struct QueryError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The request is wrong: the query does not parse or cannot be asked this way (HTTP 400).
        case badData = "bad_data"
        /// The query is valid but failed while it ran (HTTP 422).
        case execution
        /// It ran out of time (HTTP 503).
        case timeout
        case canceled
        /// Storage could not be read (HTTP 500).
        case `internal`
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Evaluates PromQL over one tenant's data, with Prometheus 2.42's semantics.
public final class QueryEngine: Sendable {
    public let options: QueryOptions

    public init(options: QueryOptions = QueryOptions()) { self.options = options }

    /// The query at one time (ms).
    public func instantQuery(_ query: String, time: Int64, database: TenantDatabase) -> Result<QueryResult, QueryError> {
        instantQuery(query, time: time, querier: database.querier(minTime: .min, maxTime: .max))
    }

    /// The query at one time (ms), over a querier made earlier: it reads the data as it was then.
    public func instantQuery(_ query: String, time: Int64, querier: TenantQuerier) -> Result<QueryResult, QueryError> {
        Result { () throws(QueryError) -> QueryResult in
            let expr = try Self.checkedInstant(query)
            return try run(expr, start: time, end: time, step: 0, querier: querier)
        }
    }

    /// The error an instant query would answer before reading any data (its parse and type
    /// errors), if any: a server answers it without waiting for a query thread.
    public static func refusal(instant query: String) -> QueryError? {
        do { _ = try checkedInstant(query) } catch { return error }
        return nil
    }

    /// The error a range query would answer before reading any data, if any (see `refusal(instant:)`).
    public static func refusal(range query: String, start: Int64, end: Int64, step: Int64) -> QueryError? {
        do { _ = try checkedRange(query, start: start, end: end, step: step) } catch { return error }
        return nil
    }

    private static func checkedInstant(_ query: String) throws(QueryError) -> Expr { try parse(query, parameterPrefix: true) }

    private static func checkedRange(_ query: String, start: Int64, end: Int64, step: Int64) throws(QueryError) -> Expr {
        // Prometheus 2.42 answers a range query's parse and type errors without naming the parameter.
        let expr = try parse(query, parameterPrefix: false)
        guard expr.type == .vector || expr.type == .scalar else {
            throw QueryError(.badData, "invalid expression type \"\(expr.type.documentedName)\" for range query, must be Scalar or instant Vector")
        }
        guard step > 0 else { throw QueryError(.badData, "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer") }
        guard end >= start else { throw QueryError(.badData, "invalid parameter \"end\": end timestamp must not be before start time") }
        return expr
    }

    /// The query at `start`, `start + step`, ... up to `end` (ms), as a matrix sorted by labels.
    public func rangeQuery(_ query: String, start: Int64, end: Int64, step: Int64, database: TenantDatabase) -> Result<QueryResult, QueryError> {
        rangeQuery(query, start: start, end: end, step: step, querier: database.querier(minTime: .min, maxTime: .max))
    }

    /// The range query over a querier made earlier: it reads the data as it was then.
    public func rangeQuery(_ query: String, start: Int64, end: Int64, step: Int64, querier: TenantQuerier) -> Result<QueryResult, QueryError> {
        Result { () throws(QueryError) -> QueryResult in
            let expr = try Self.checkedRange(query, start: start, end: end, step: step)
            return try run(expr, start: start, end: end, step: step, querier: querier)
        }
    }

    private static func parse(_ query: String, parameterPrefix: Bool) throws(QueryError) -> Expr {
        do {
            return try PromQL.parse(query)
        } catch {
            throw QueryError(.badData, (parameterPrefix ? "invalid parameter \"query\": " : "") + "\(error)")
        }
    }

    private func run(_ expr: Expr, start: Int64, end: Int64, step: Int64, querier: TenantQuerier) throws(QueryError) -> QueryResult {
        var tree = try EvalNode.compile(expr)
        tree = tree.preprocessed(start: start, end: end)
        tree = tree.withAtOffsets(evaluationTime: start)
        tree = tree.withReadableTimes(start: start, end: end, lookback: options.lookbackDelta)
        let deadline = Deadline(milliseconds: options.timeout, cancellation: options.cancellation)
        let budget = SampleBudget(limit: options.maxSamples)
        let instant = step == 0
        let evaluator = Evaluator(start: start, end: end, interval: instant ? 1 : step, options: options, querier: querier,
                                  deadline: deadline, budget: budget)
        let value: EvalValue
        do {
            value = try evaluator.eval(tree)
        } catch let failure as EvalFailure {
            throw failure.queryError
        } catch let error as BlockError {
            throw QueryError(.internal, "\(error)")
        } catch {
            throw QueryError(.internal, "\(error)")
        }
        // What storage could not read first, as Prometheus' querier warnings come before its own.
        let warnings = querier.warnings + evaluator.warnings
        switch value {
        case .string(let text):
            return QueryResult(value: .string(timestamp: start, value: text), warnings: warnings)
        case .matrix(let matrix):
            if !instant {
                let sorted = matrix.sorted { $0.labels < $1.labels }
                return QueryResult(value: .matrix(sorted.map { RangeSeries(labels: $0.labels, points: $0.points) }), warnings: warnings)
            }
            switch expr.type {
            case .vector:
                return QueryResult(value: .vector(matrix.map { InstantSample(labels: $0.labels, timestamp: start, value: $0.points[0].value) }), warnings: warnings)
            case .scalar:
                return QueryResult(value: .scalar(timestamp: start, value: matrix.first?.points.first?.value ?? .nan), warnings: warnings)
            default:
                return QueryResult(value: .matrix(matrix.map { RangeSeries(labels: $0.labels, points: $0.points) }), warnings: warnings)
            }
        }
    }
}

extension PromQL {
    /// A sample value as Prometheus' HTTP API writes it (Go's `FormatFloat(v, 'f', -1, 64)`):
    /// `0.5`, `100000000`, `NaN`, `+Inf`.
    public static func formatValue(_ value: Double) -> String { GoNumbers.fixed(value) }

    /// `formatValue(value)` appended to `bytes` as UTF-8.
    public static func appendFormattedValue(_ value: Double, to bytes: inout [UInt8]) { GoNumbers.appendFixed(value, to: &bytes) }
}
