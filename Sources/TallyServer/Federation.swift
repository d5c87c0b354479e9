import TallyQuery
import TallyStorage
import TallyWire

/// `GET /federate`: each selected series' latest float sample of the last `--query.lookback-delta`,
/// in the exposition format another Prometheus scrapes, as Prometheus 2.42's federation handler
/// writes it: series of every `match[]` (once each), grouped into untyped families by metric name,
/// `instance=""` added where a series has no `instance`, a staleness marker leaving its series
/// out, explicit timestamps. The text format unless the client's `Accept` prefers the delimited
/// protobuf one. Errors are plain text: 400 for parameters Go's `ParseForm` refuses or a selector
/// that does not parse, 500 for storage
/// that cannot be read. Native histograms are not federated (Prometheus 2.42 sends them only in
/// protobuf; Tally's read path gives floats).
enum Federation {
    static let textFormat = "text/plain; version=0.0.4; charset=utf-8"
    static let protobufFormat = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    /// The answer at `now` (ms) over `database`.
    static func answer(_ form: QueryString, accept: String?, database: () throws(PrometheusAPIError) -> TenantDatabase,
                       now: Int64, lookbackDelta: Int64) -> HTTPAnswer {
        if let error = form.parseError { return HTTPAnswer(status: 400, body: "error parsing form values: \(error)\n") }
        var sets: [[TallyStorage.LabelMatcher]] = []
        for text in form.all("match[]") {
            do {
                // `{}` parses here (no check for a non-empty matcher, as in Prometheus) and, as in
                // Prometheus' storage, selects nothing: it is not "every series".
                let matchers = try PromQL.parseMetricSelector(text)
                if !matchers.isEmpty { sets.append(matchers) }
            } catch { return HTTPAnswer(status: 400, body: "\(error)\n") }
        }
        let protobuf = prefersProtobuf(accept)
        let (minTime, maxTime) = (now.subtractingReportingOverflow(lookbackDelta).partialValue, now)
        var latest: [(labels: Labels, timestamp: Int64, value: Double)] = []
        if !sets.isEmpty {
            let querier: TenantQuerier
            do { querier = try database().querier(minTime: minTime, maxTime: maxTime) } catch {
                return HTTPAnswer(status: 500, body: error.message + "\n")
            }
            let selected: [QueriedSeries]
            do { selected = try union(sets.map { matchers in try querier.select(matchers, minTime: minTime, maxTime: maxTime) }) } catch {
                return HTTPAnswer(status: 500, body: "reading the tenant failed: \(error)\n")
            }
            for series in selected {
                guard let (timestamp, bits) = lastSample(series, minTime: minTime, maxTime: maxTime), bits != staleMarkerBits else { continue }
                latest.append((series.labels, timestamp, Double(bitPattern: bits)))
            }
        }
        // Grouped by name as Prometheus 2.42 groups them: the label-ordered vector through Go 1.19's
        // sort.Sort by name alone, which is not stable, so 13 or more series of one name come out of
        // label order exactly as Go's steps leave them.
        var families = latest.compactMap { sample in sample.labels[metricNameLabel].map { (ByteString($0), sample) } }
        GoPdqsort.sort(&families) { $0.0 < $1.0 }
        var out: any FamilyWriter = protobuf ? ProtobufFamilies() : TextFamilies()
        var familyName: ByteString?
        for (name, sample) in families {
            if name != familyName {
                out.startFamily(name.string)
                familyName = name
            }
            var labels = sample.labels.pairs.filter { $0.name != metricNameLabel && !$0.value.isEmpty }
            if sample.labels["instance"] == nil || sample.labels["instance"] == "" { labels.append(Label("instance", "")) }
            out.addSample(labels: labels, value: sample.value, timestamp: sample.timestamp)
        }
        // Prometheus names the format even when nothing is selected.
        return HTTPAnswer(status: 200, bytes: out.finished(), contentType: protobuf ? protobufFormat : textFormat).typedWhenEmpty()
    }

    private static let metricNameLabel = "__name__"

    /// The series of several selections, each once, in label order.
    private static func union(_ selections: [[QueriedSeries]]) -> [QueriedSeries] {
        guard selections.count > 1 else { return selections.first ?? [] }
        var seen = Set<Labels>()
        return selections.joined().filter { seen.insert($0.labels).inserted }.sorted { $0.labels < $1.labels }
    }

    /// The last sample in [minTime, maxTime].
    private static func lastSample(_ series: QueriedSeries, minTime: Int64, maxTime: Int64) -> (Int64, UInt64)? {
        var iterator = series.makeIterator()
        var last: (Int64, UInt64)?
        guard iterator.seek(minTime) else { return nil }
        repeat {
            guard iterator.timestamp <= maxTime else { break }
            last = (iterator.timestamp, iterator.valueBits)
        } while iterator.advance()
        return last
    }

    /// Whether the delimited protobuf format comes before the text format in `Accept`, as Prometheus'
    /// `expfmt.Negotiate` reads it: media ranges by `q`, concrete types before wildcards, the first
    /// that names either format wins, the text format when none does. (The protobuf text formats,
    /// which Prometheus also writes, are answered in the exposition text format.)
    static func prefersProtobuf(_ accept: String?) -> Bool {
        guard let accept else { return false }
        struct MediaRange {
            var type = "", subtype = "", quality = 1.0
            var parameters: [String: String] = [:]
        }
        var ranges: [MediaRange] = []
        for part in accept.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ";", omittingEmptySubsequences: false)
            let typeParts = pieces[0].split(separator: "/", omittingEmptySubsequences: false)
            var range = MediaRange()
            range.type = trimmed(typeParts[0])
            if typeParts.count == 1 && range.type == "*" {
                range.subtype = "*"
            } else if typeParts.count == 2 {
                range.subtype = trimmed(typeParts[1])
            } else {
                continue
            }
            for parameter in pieces.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2 else { continue }
                let token = trimmed(pair[0])
                if token == "q" {
                    // As Go's ParseFloat(q, 32) leaves it, errors ignored.
                    switch GoNumbers.parseFloat(String(pair[1])) {
                    case let .value(q): range.quality = Double(Float(q))
                    case .outOfRange: range.quality = pair[1].hasPrefix("-") ? -.infinity : .infinity
                    case .invalidSyntax: range.quality = 0
                    }
                } else {
                    range.parameters[token] = trimmed(pair[1])
                }
            }
            ranges.append(range)
        }
        func before(_ a: MediaRange, _ b: MediaRange) -> Bool {
            a.quality > b.quality || (a.type != "*" && b.type == "*") || (a.subtype != "*" && b.subtype == "*")
        }
        for range in ranges.sorted(by: before) {
            if range.type + "/" + range.subtype == "application/vnd.google.protobuf", range.parameters["proto"] == "io.prometheus.client.MetricFamily",
               range.parameters["encoding"] == "delimited" {
                return true
            }
            if range.type == "text", range.subtype == "plain", [nil, "0.0.4"].contains(range.parameters["version"]) { return false }
        }
        return false
    }

    private static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

/// Metric families written one after another, each started by its name.
private protocol FamilyWriter {
    mutating func startFamily(_ name: String)
    mutating func addSample(labels: [Label], value: Double, timestamp: Int64)
    mutating func finished() -> [UInt8]
}

/// The exposition text format 0.0.4, as Prometheus' `expfmt` writes an untyped family without help.
private struct TextFamilies: FamilyWriter {
    private var bytes: [UInt8] = []
    private var name = ""

    mutating func startFamily(_ name: String) {
        self.name = name
        bytes.append(contentsOf: "# TYPE \(name) untyped\n".utf8)
    }

    mutating func addSample(labels: [Label], value: Double, timestamp: Int64) {
        bytes.append(contentsOf: name.utf8)
        for (index, label) in labels.enumerated() {
            bytes.append(index == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
            bytes.append(contentsOf: label.name.utf8)
            bytes.append(contentsOf: #"=""#.utf8)
            for byte in label.value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
                case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
        if !labels.isEmpty { bytes.append(UInt8(ascii: "}")) }
        // expfmt writes 0 (either sign), 1 and -1 as integers, other values as Go's %g.
        let text = value == 0 ? "0" : GoNumbers.format(value)
        bytes.append(contentsOf: " \(text) \(timestamp)\n".utf8)
    }

    mutating func finished() -> [UInt8] { bytes }
}

/// `MetricFamily` messages (name, type untyped, metrics of labels, untyped value and timestamp),
/// each after its length as a varint, in the field order Prometheus marshals them.
private struct ProtobufFamilies: FamilyWriter {
    private var bytes = ProtobufWriter()
    private var family = ProtobufWriter()

    mutating func startFamily(_ name: String) {
        flush()
        family.bytesField(1, Array(name.utf8))
        family.varintField(3, 3)
    }

    mutating func addSample(labels: [Label], value: Double, timestamp: Int64) {
        family.messageField(4) { metric in
            for label in labels {
                metric.messageField(1) { pair in
                    pair.bytesField(1, Array(label.name.utf8))
                    pair.bytesField(2, Array(label.value.utf8))
                }
            }
            metric.messageField(5) { $0.fixed64Field(1, value.bitPattern) }
            metric.varintField(6, UInt64(bitPattern: timestamp))
        }
    }

    private mutating func flush() {
        guard !family.bytes.isEmpty else { return }
        bytes.varint(UInt64(family.bytes.count))
        bytes.bytes.append(contentsOf: family.bytes)
        family = ProtobufWriter()
    }

    mutating func finished() -> [UInt8] {
        flush()
        return bytes.bytes
    }
}
