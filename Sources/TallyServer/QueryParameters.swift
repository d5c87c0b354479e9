import TallyQuery
import TallyStorage

/// The parameters of Prometheus' query API read as Prometheus 2.42 reads them (`parseTime`,
/// `parseDuration`, `parseMatchersParam` in `web/api/v1/api.go`), with its error messages. Every
/// value is checked before any arithmetic on it, so no client value can trap.
struct QueryParameters {
    let form: QueryString

    init(_ form: QueryString) { self.form = form }

    /// Most points a range query may return per series.
    static let maxPointsPerSeries: Int64 = 11_000

    /// A parameter's value; an empty one counts as absent, as Go's `FormValue` gives "" for both.
    func value(_ name: String) -> String? {
        guard let text = form[name], !text.isEmpty else { return nil }
        return text
    }

    /// An optional time (`time`, `start`, `end` of the metadata endpoints); `rounding` as the
    /// endpoint's Prometheus code takes it.
    func time(_ name: String, default fallback: Int64, rounding: TimeParameter.Rounding) throws(PrometheusAPIError) -> Int64 {
        guard let text = value(name) else { return fallback }
        guard let milliseconds = TimeParameter.milliseconds(text, rounding: rounding) else {
            throw .invalidParameter(name, "Invalid time value for '\(name)': cannot parse \(GoFormat.quote(text)) to a valid timestamp")
        }
        return milliseconds
    }

    /// A time that must be given (`start` and `end` of a range query), as the query engine takes it.
    func requiredTime(_ name: String) throws(PrometheusAPIError) -> Int64 {
        let text = form[name] ?? ""
        guard let milliseconds = TimeParameter.milliseconds(text, rounding: .towardZero) else {
            throw .invalidParameter(name, "cannot parse \(GoFormat.quote(text)) to a valid timestamp")
        }
        return milliseconds
    }

    /// A duration (`timeout`) in milliseconds, rounded toward zero as Prometheus turns its
    /// nanoseconds into milliseconds.
    func duration(_ name: String) throws(PrometheusAPIError) -> Int64? {
        try nanoseconds(name).map { $0 / 1_000_000 }
    }

    /// A duration (`step`, `timeout`) as Prometheus' `parseDuration` reads it: float seconds or a
    /// PromQL duration (`5m`, `1h30m`), in nanoseconds.
    private func nanoseconds(_ name: String) throws(PrometheusAPIError) -> Int64? {
        guard let text = value(name) else { return nil }
        // Go's `strconv.ParseFloat` first; what it refuses (out of range too) is tried as a PromQL duration.
        if case let .value(seconds) = GoNumbers.parseFloat(text) {
            let nanoseconds = seconds * 1e9
            guard !nanoseconds.isNaN else { throw .invalidParameter(name, "cannot parse \(GoFormat.quote(text)) to a valid duration") }
            // 2^63 itself is past Int64, as in Go's check against float64(math.MaxInt64).
            guard nanoseconds < 0x1p63, nanoseconds >= -0x1p63 else {
                throw .invalidParameter(name, "cannot parse \(GoFormat.quote(text)) to a valid duration. It overflows int64")
            }
            return Int64(nanoseconds)
        }
        // A PromQL duration is at most Go's ~292 years, so its nanoseconds fit.
        guard let milliseconds = PromQL.parseDuration(text),
              case let (nanoseconds, false) = milliseconds.multipliedReportingOverflow(by: 1_000_000) else {
            throw .invalidParameter(name, "cannot parse \(GoFormat.quote(text)) to a valid duration")
        }
        return nanoseconds
    }

    /// Every `match[]` selector; each must have a matcher that does not match the empty value.
    func matcherSets() throws(PrometheusAPIError) -> [[TallyStorage.LabelMatcher]] {
        var sets: [[TallyStorage.LabelMatcher]] = []
        for text in form.all("match[]") {
            do { sets.append(try PromQL.parseMetricSelector(text)) } catch {
                throw PrometheusAPIError(.badData, error.description)
            }
        }
        for set in sets where set.allSatisfy({ $0.predicate()("") }) {
            throw PrometheusAPIError(.badData, "match[] must contain at least one non-empty matcher")
        }
        return sets
    }

    /// `limit` as Prometheus takes it since 2.49 (2.42 has none): a non-negative integer, 0 or
    /// absent for no limit.
    func limit() throws(PrometheusAPIError) -> Int? {
        guard let text = value("limit") else { return nil }
        guard let limit = Int(text) else {
            throw .invalidParameter("limit", "strconv.Atoi: parsing \(GoFormat.quote(text)): \(Self.isDecimal(text) ? "value out of range" : "invalid syntax")")
        }
        guard limit >= 0 else { throw .invalidParameter("limit", "limit must be non-negative") }
        return limit == 0 ? nil : limit
    }

    private static func isDecimal(_ text: String) -> Bool {
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `start` and `end` of a range query, checked: `end` not before `start`, a positive step, and
    /// at most 11,000 points per series.
    func range() throws(PrometheusAPIError) -> (start: Int64, end: Int64, step: Int64) {
        let start = try requiredTime("start")
        let end = try requiredTime("end")
        guard end >= start else { throw .invalidParameter("end", "end timestamp must not be before start time") }
        guard let stepNanoseconds = try nanoseconds("step") else { throw .invalidParameter("step", "cannot parse \"\" to a valid duration") }
        guard stepNanoseconds > 0 else {
            throw .invalidParameter("step", "zero or negative query resolution step widths are not accepted. Try a positive integer")
        }
        // Counted in nanoseconds, as Prometheus does, so a step under a millisecond over a long range
        // gets this error, not the one below; in 128 bits, so a span past 292 years is counted truly
        // (Go saturates it, and lets through queries of more points). Points > max exactly when
        // span >= (max + 1) * step.
        let (span, overflow) = end.subtractingReportingOverflow(start)
        let spanNanoseconds = span.multipliedFullWidth(by: 1_000_000)
        let tooMany = stepNanoseconds.multipliedFullWidth(by: Self.maxPointsPerSeries + 1)
        guard !overflow, (spanNanoseconds.high, spanNanoseconds.low) < (tooMany.high, tooMany.low) else {
            throw PrometheusAPIError(.badData, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
        }
        // Prometheus' engine divides by the step in milliseconds and fails with "integer divide by zero".
        let step = stepNanoseconds / 1_000_000
        guard step > 0 else { throw .invalidParameter("step", "query resolution step widths under 1ms are not accepted") }
        return (start, end, step)
    }
}
