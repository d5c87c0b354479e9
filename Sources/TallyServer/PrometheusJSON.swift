import TallyCost
import TallyQuery
import TallyStorage

/// An error answer of Prometheus' HTTP API: its `errorType`, its message and the status code
/// Prometheus 2.42 sends with it (`respondError` in `web/api/v1/api.go`).
struct PrometheusAPIError: Error, Sendable, CustomStringConvertible {
    enum Kind: String, Sendable {
        case badData = "bad_data", execution, timeout, canceled, `internal`, notFound = "not_found", unavailable
    }

    let kind: Kind
    let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `invalid parameter "name": message`, Prometheus' `invalidParamError`.
    static func invalidParameter(_ name: String, _ message: String) -> PrometheusAPIError {
        PrometheusAPIError(.badData, "invalid parameter \(GoFormat.quote(name)): \(message)")
    }

    /// The engine's error as the API reports it.
    init(_ error: QueryError) {
        let kind: Kind = switch error.kind {
        case .badData: .badData
        case .execution: .execution
        case .timeout: .timeout
        case .canceled: .canceled
        case .internal: .internal
        }
        self.init(kind, error.message)
    }

    var status: Int {
        switch kind {
        case .badData: 400
        case .execution: 422
        case .timeout, .canceled, .unavailable: 503
        case .notFound: 404
        case .internal: 500
        }
    }

    var description: String { "\(kind.rawValue): \(message)" }
}

/// Prometheus' answer envelope and value encodings, byte for byte as Prometheus 2.42 writes them:
/// `{"status":"success","data":...,"warnings":[...]}` and
/// `{"status":"error","errorType":"bad_data","error":"..."}`; sample values as strings in Go's
/// shortest form; timestamps as Unix seconds with milliseconds.
enum PrometheusJSON {
    static let contentType = "application/json"

    /// A success answer around `data` (already JSON); `warnings` only when there are some.
    static func success(_ data: JSONText, warnings: [String] = []) -> HTTPAnswer {
        var out = JSONText(#"{"status":"success","data":"#)
        out.append(data)
        appendWarnings(warnings, to: &out)
        out.append("}")
        return HTTPAnswer(status: 200, bytes: out.bytes, contentType: contentType)
    }

    static func failure(_ error: PrometheusAPIError, warnings: [String] = []) -> HTTPAnswer {
        var out = JSONText(#"{"status":"error","errorType":"#)
        out.appendString(error.kind.rawValue)
        out.append(#","error":"#)
        out.appendString(error.message)
        appendWarnings(warnings, to: &out)
        out.append("}")
        return HTTPAnswer(status: error.status, bytes: out.bytes, contentType: contentType)
    }

    private static func appendWarnings(_ warnings: [String], to out: inout JSONText) {
        guard !warnings.isEmpty else { return }
        out.append(#","warnings":"#)
        out.append(strings(warnings))
    }

    /// `{"resultType":"vector","result":[...]}` for a query's value.
    static func queryData(_ value: QueryValue) -> JSONText {
        JSONText { out in
            switch value {
            case let .scalar(timestamp, value): appendResult("scalar", to: &out) { appendTimed(timestamp, PromQL.formatValue(value), to: &$0) }
            case let .string(timestamp, value): appendResult("string", to: &out) { appendTimed(timestamp, value, to: &$0) }
            case let .vector(samples):
                appendResult("vector", to: &out) {
                    $0.appendList(samples) { sample, out in
                        appendSeries(sample.labels, "value", to: &out) { appendPoint(sample.timestamp, sample.value, to: &$0) }
                    }
                }
            case let .matrix(series):
                appendResult("matrix", to: &out) {
                    $0.appendList(series) { one, out in
                        appendSeries(one.labels, "values", to: &out) { $0.appendList(one.points) { appendPoint($0.timestamp, $0.value, to: &$1) } }
                    }
                }
            }
        }
    }

    private static func appendResult(_ type: String, to out: inout JSONText, _ result: (inout JSONText) -> Void) {
        out.append(#"{"resultType":"#)
        out.appendString(type)
        out.append(#","result":"#)
        result(&out)
        out.append("}")
    }

    /// `{"metric":{...},"<field>":...}`.
    private static func appendSeries(_ labels: Labels, _ field: String, to out: inout JSONText, _ value: (inout JSONText) -> Void) {
        out.append(#"{"metric":"#)
        appendLabels(labels, to: &out)
        out.append(",")
        out.appendString(field)
        out.append(":")
        value(&out)
        out.append("}")
    }

    /// A scalar's or string's `[time,"value"]`.
    private static func appendTimed(_ timestamp: Int64, _ value: String, to out: inout JSONText) {
        out.append("[" + scalarTimestamp(timestamp) + ",")
        out.appendString(value)
        out.append("]")
    }

    /// A list of label sets, as `/api/v1/series` answers.
    static func labelSets(_ sets: [Labels]) -> JSONText {
        JSONText { $0.appendList(sets) { labels, out in appendLabels(labels, to: &out) } }
    }

    /// `/api/v1/query_exemplars`' list: `{"seriesLabels":{...},"exemplars":[{"labels":{...},
    /// "value":"1","timestamp":1.5}]}` per series (Prometheus' `marshalExemplarJSON`).
    static func exemplars(_ found: [SeriesExemplars]) -> JSONText {
        JSONText {
            $0.appendList(found) { series, out in
                out.append(#"{"seriesLabels":"#)
                appendLabels(series.seriesLabels, to: &out)
                out.append(#","exemplars":"#)
                out.appendList(series.exemplars) { exemplar, out in
                    out.append(#"{"labels":"#)
                    appendLabels(exemplar.labels, to: &out)
                    out.append(#","value":"#)
                    out.appendSampleValue(exemplar.value)
                    out.append(#","timestamp":"# + pointTimestamp(exemplar.timestamp) + "}")
                }
                out.append("}")
            }
        }
    }

    /// A list of strings, as `/api/v1/labels` and `/api/v1/label/<name>/values` answer.
    /// `status/tsdb`, in the fields and order of Prometheus 2.42's `TSDBStatus`.
    static func tsdbStatus(_ head: HeadCardinality) -> JSONText {
        JSONText { out in
            out.append("{\"headStats\":{\"numSeries\":\(head.series),\"numLabelPairs\":\(head.labelPairs),\"chunkCount\":\(head.chunks),")
            out.append("\"minTime\":\(head.minTime),\"maxTime\":\(head.maxTime)}")
            for (field, counts) in [("seriesCountByMetricName", head.seriesByMetricName), ("labelValueCountByLabelName", head.valuesByLabelName),
                                    ("memoryInBytesByLabelName", head.valueBytesByLabelName), ("seriesCountByLabelValuePair", head.seriesByLabelPair)] {
                out.append(",\"\(field)\":")
                out.appendList(counts) { count, out in
                    out.append("{\"name\":")
                    out.appendString(count.name)
                    out.append(",\"value\":\(count.count)}")
                }
            }
            out.append("}")
        }
    }

    static func strings(_ values: [String]) -> JSONText {
        JSONText { $0.appendList(values) { value, out in out.appendString(value) } }
    }

    /// An object of string fields, in the order given.
    static func object(_ fields: [(String, String)]) -> JSONText {
        JSONText { $0.appendObject(fields) }
    }

    /// `{"name":"value",...}`: labels are kept sorted by name, which is the order Go's encoder
    /// writes a map's keys in.
    private static func appendLabels(_ labels: Labels, to out: inout JSONText) {
        out.appendObject(labels.pairs.lazy.map { ($0.name, $0.value) })
    }

    /// `[1435781451.781,"1"]`, Prometheus' `marshalPointJSON`.
    /// `[time,"value"]`, written straight into the bytes: an answer has a point per series and step,
    /// and building each one's text as strings first cost more than the query behind it.
    private static func appendPoint(_ timestamp: Int64, _ value: Double, to out: inout JSONText) {
        out.append("[")
        out.appendPointTimestamp(timestamp)
        out.append(",")
        out.appendSampleValue(value)
        out.append("]")
    }

    /// A vector or matrix point's time (`jsonutil.MarshalTimestamp`): whole seconds, then the
    /// milliseconds as three digits when there are any (`1.5` is written `1.500`).
    static func pointTimestamp(_ milliseconds: Int64) -> String {
        String(decoding: JSONText { $0.appendPointTimestamp(milliseconds) }.bytes, as: UTF8.self)
    }

    /// A scalar's or string's time: Go's `encoding/json` of `float64(t) / 1000` (`1.5`), shortest
    /// digits; the exponent form it uses below 1e-6 is out of reach of whole milliseconds.
    static func scalarTimestamp(_ milliseconds: Int64) -> String {
        PromQL.formatValue(Double(milliseconds) / 1000)
    }
}

/// JSON being written, as UTF-8 bytes: answers can be large, and strings are escaped as appended.
struct JSONText: Sendable {
    private(set) var bytes: [UInt8]

    init(_ literal: String) { bytes = Array(literal.utf8) }

    /// The JSON `write` writes.
    init(_ write: (inout JSONText) -> Void) {
        bytes = []
        write(&self)
    }

    /// `text` as a JSON string.
    static func string(_ text: String) -> JSONText { JSONText { $0.appendString(text) } }

    /// Appends JSON written elsewhere.
    mutating func append(_ json: String) { bytes.append(contentsOf: json.utf8) }

    mutating func append(_ json: JSONText) { bytes.append(contentsOf: json.bytes) }

    /// Appends `text` as a quoted, escaped JSON string.
    mutating func appendString(_ text: String) { CostReport.appendQuoted(text, to: &bytes) }

    /// Appends a sample value, quoted (`jsonutil.MarshalValue`): Go's `'f'` form, and its `'e'` form
    /// below 1e-6 and from 1e21 on, where `%g` writes the same text (`1e-07`, `1.5e+21`); `NaN`,
    /// `+Inf`, `-Inf`.
    mutating func appendSampleValue(_ value: Double) {
        bytes.append(UInt8(ascii: "\""))
        let magnitude = value.magnitude
        if value != 0 && value.isFinite && (magnitude < 1e-6 || magnitude >= 1e21) {
            bytes.append(contentsOf: GoFormat.float(value).utf8)
        } else {
            PromQL.appendFormattedValue(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends a point's time (`PrometheusJSON.pointTimestamp`): whole seconds, then three digits
    /// of milliseconds when there are any.
    mutating func appendPointTimestamp(_ milliseconds: Int64) {
        if milliseconds < 0 { bytes.append(UInt8(ascii: "-")) }
        let magnitude = milliseconds.magnitude
        appendDigits(magnitude / 1000, atLeast: 1)
        let fraction = magnitude % 1000
        guard fraction != 0 else { return }
        bytes.append(UInt8(ascii: "."))
        appendDigits(fraction, atLeast: 3)
    }

    /// The decimal digits of `value`, padded with leading zeros to `atLeast`.
    private mutating func appendDigits(_ value: UInt64, atLeast minimum: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 digits, more than UInt64 has
        withUnsafeMutableBytes(of: &digits) { buffer in
            var v = value, end = buffer.count
            repeat {
                end -= 1
                buffer[end] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            } while v > 0 || buffer.count - end < minimum
            bytes.append(contentsOf: buffer[end...])
        }
    }

    /// Appends `[a,b,...]`, each element written by `element`.
    mutating func appendList<T>(_ items: [T], _ element: (T, inout JSONText) -> Void) {
        append("[")
        for (index, item) in items.enumerated() {
            if index > 0 { append(",") }
            element(item, &self)
        }
        append("]")
    }

    /// Appends `{"name":"value",...}` in the order given.
    mutating func appendObject<Fields: Sequence<(String, String)>>(_ fields: Fields) {
        append("{")
        for (index, (name, value)) in fields.enumerated() {
            if index > 0 { append(",") }
            appendString(name)
            append(":")
            appendString(value)
        }
        append("}")
    }
}
