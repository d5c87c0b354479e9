// SCRATCH STAND-IN for the lead's QueryEngine. Deleted before merging main.
import Foundation
import TallyStorage

public struct QueryOptions: Sendable {
    public var lookbackDelta: Int64
    public var maxSamples: Int
    public var timeout: Int64
    public init(lookbackDelta: Int64 = 300_000, maxSamples: Int = 50_000_000, timeout: Int64 = 120_000) {
        self.lookbackDelta = lookbackDelta
        self.maxSamples = maxSamples
        self.timeout = timeout
    }
}

public struct QueryResult: Sendable { public var value: QueryValue; public var warnings: [String] }
public enum QueryValue: Sendable {
    case scalar(timestamp: Int64, value: Double)
    case string(timestamp: Int64, value: String)
    case vector([InstantSample])
    case matrix([RangeSeries])
}
public struct InstantSample: Sendable { public var labels: Labels; public var timestamp: Int64; public var value: Double }
public struct RangeSeries: Sendable { public var labels: Labels; public var points: [Point] }
public struct Point: Sendable { public var timestamp: Int64; public var value: Double }
public struct QueryError: Error, Sendable {
    public enum Kind: String, Sendable { case badData = "bad_data", execution, timeout, canceled, `internal` }
    public var kind: Kind
    public var message: String
    public init(kind: Kind, message: String) { self.kind = kind; self.message = message }
}

public final class QueryEngine: Sendable {
    let options: QueryOptions
    public init(options: QueryOptions) { self.options = options }

    public func instantQuery(_ query: String, time: Int64, database: TenantDatabase) -> Result<QueryResult, QueryError> {
        evaluate(query, [time], database).map { value in
            if case let .matrix(series) = value { return QueryResult(value: .vector(series.map { InstantSample(labels: $0.labels, timestamp: time, value: $0.points[0].value) }), warnings: []) }
            return QueryResult(value: value, warnings: [])
        }
    }

    public func rangeQuery(_ query: String, start: Int64, end: Int64, step: Int64, database: TenantDatabase) -> Result<QueryResult, QueryError> {
        var times: [Int64] = []
        var t = start
        while t <= end { times.append(t); t += step }
        return evaluate(query, times, database).map { value in
            if case let .scalar(_, v) = value { return QueryResult(value: .matrix([RangeSeries(labels: Labels([]), points: times.map { Point(timestamp: $0, value: v) })]), warnings: []) }
            return QueryResult(value: value, warnings: [])
        }
    }

    private func evaluate(_ query: String, _ times: [Int64], _ db: TenantDatabase) -> Result<QueryValue, QueryError> {
        let expr: Expr
        do { expr = try PromQL.parse(query) } catch { return .failure(QueryError(kind: .badData, message: error.description)) }
        switch expr {
        case .number(let n): return .success(.scalar(timestamp: times[0], value: n.value))
        case .string(let s): return .success(.string(timestamp: times[0], value: s.value))
        case .binary(let b):
            if case .number(let l) = b.lhs, case .number(let r) = b.rhs, b.op.rawValue == "+" { return .success(.scalar(timestamp: times[0], value: l.value + r.value)) }
            return .failure(QueryError(kind: .execution, message: "stand-in: not implemented"))
        case .vectorSelector(let v):
            do {
                let matchers = try v.allMatchers.map { m in
                    try TallyStorage.LabelMatcher(m.name, TallyStorage.LabelMatcher.Kind(rawValue: m.kind.rawValue)!, m.value)
                }
                let series = try db.querier(minTime: times.first! - options.lookbackDelta, maxTime: times.last!).select(matchers, minTime: times.first! - options.lookbackDelta, maxTime: times.last!)
                var out: [RangeSeries] = []
                for s in series {
                    var points: [Point] = []
                    for t in times {
                        if let last = s.samples.last(where: { $0.timestamp <= t && $0.timestamp > t - options.lookbackDelta }) {
                            points.append(Point(timestamp: t, value: Double(bitPattern: last.valueBits)))
                        }
                    }
                    if !points.isEmpty { out.append(RangeSeries(labels: s.labels, points: points)) }
                }
                if out.reduce(0, { $0 + $1.points.count }) > options.maxSamples {
                    return .failure(QueryError(kind: .execution, message: "query processing would load too many samples into memory in query execution"))
                }
                return .success(.matrix(out))
            } catch {
                return .failure(QueryError(kind: .internal, message: "\(error)"))
            }
        default:
            return .failure(QueryError(kind: .execution, message: "stand-in: not implemented"))
        }
    }
}
