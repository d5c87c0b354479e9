import Foundation
import TallyLoad
import TallyTestSupport
import TallyWire
import XCTest

/// The query API's `time`, `start`, `end` and `step` read as a real Prometheus 2.42 reads them (Go's
/// `strconv.ParseFloat` and `time.Parse(time.RFC3339Nano)`): the same texts asked of both servers,
/// empty, through `time()` (which answers the time it was asked at) and range queries, must get the
/// same status, error type and answer. Hand-picked edges, then texts generated to hit every rule.
///
/// Left out, as `docs/query.md` says: numbers that are not finite or past ±9e15 seconds, and times
/// outside 1678-2262, which Prometheus wraps around its nanosecond clock into other times.
final class QueryParameterOracleTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("prometheus")
    }

    static let edges = [
        // Unix seconds: Go's float syntax, and the fraction rounded on its own.
        "0", "1", "+1", "-1", ".5", "5.", ".", "1e3", "1E+3", "-.5e-2", "1e", "1e+", "1.2.3", " 1", "1 ",
        "1.0005", "-1.0005", "1.0015", "1795910400.0015", "1795910400.9995", "-0.0005", "0.003", "1e-400",
        "1_000", "1_0.5", "1__0", "_10", "10_", "1._5", "1_.5", "1e1_0", "1e_1", "1_2e1_0",
        "0x10", "0x1p-2", "0x1.8p1", "0x.8p1", "0x1.p1", "0xp1", "0x_1p0", "0_x1p0", "-nan", "+nan", "infin", "１",
        // RFC 3339 as Go 1.19 reads it.
        "2026-12-01T00:00:00Z", "2026-12-01T00:00:00.9999Z", "2026-12-01T00:00:00,5Z", "2026-12-01T1:00:00Z",
        "2026-12-01t01:00:00Z", "2026-12-01T01:00:00z", "2026-12-01T00:00:00.123456789Z", "2026-12-01T00:00:00.1234567891Z",
        "2026-12-01T00:00:00+24:00", "2026-12-01T00:00:00+25:00", "2026-12-01T00:00:00-99:99", "2026-12-01T00:00:00+0100",
        "2026-12-01T00:00:00+1:00", "2026-12-01T00:00:00+01:00:00", "2026-12-01T00:00:60Z", "2026-12-01T24:00:00Z",
        "2026-12-01T00:00:00.Z", "2026-12-01 00:00:00Z", "2026-02-30T00:00:00Z", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z",
        "2000-02-29T12:00:00Z", "1900-02-29T00:00:00Z", "1969-12-31T23:59:59.9995Z", "1969-12-31T23:59:58.9999999Z",
        "2026-1-01T00:00:00Z", "02026-12-01T00:00:00Z", "-2026-12-01T00:00:00Z", "2026-12-01T00:00:00.5+01:30",
    ]

    static let stepEdges = [
        "1", "1_0", "0x1p3", "0x10", "10.5", "0.0015", "0.001", "1e-3", "1ms", "1m", "1h1m", "1d", "1w", "5m30s", "1_000ms",
        "-1", "0", "+5", "inf", "1e400", "10s_", "0.0009999", "1y",
    ]

    /// A Prometheus 2.42 and a Tally, both ready and empty, in a new directory the caller removes.
    static func emptyServers(_ name: String) throws -> (root: String, prometheus: PrometheusProcess, tally: TallyServerProcess) {
        let root = try makeTemporaryDirectory(name)
        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in "global:\n  scrape_interval: 1h\n" },
                                               arguments: ["--storage.tsdb.path=\(root)/prometheus"])
        try prometheus.waitReady()
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        return (root, prometheus, tally)
    }

    func testTimesAndStepsReadAsPrometheusReadsThem() throws {
        let (root, prometheus, tally) = try Self.emptyServers("query-parameter-oracle")
        defer { try? FileManager.default.removeItem(atPath: root) }

        var random = SeededGenerator(test: "QueryParameterOracleTests")
        var times = Self.edges
        for _ in 0..<400 { times.append(Self.randomRFC3339(&random)) }
        for _ in 0..<400 { times.append(Self.randomSeconds(&random)) }
        var paths = times.filter(Self.isComparable).flatMap { time in
            let t = Self.escape(time)
            return ["/api/v1/query?query=time()&time=\(t)", "/api/v1/query_range?query=time()&start=\(t)&end=\(t)&step=1"]
        }
        var steps = Self.stepEdges
        for _ in 0..<200 { steps.append(Self.randomSeconds(&random)) }
        for step in steps where Self.isComparable(step) {
            for end in ["10", "0.1", "11", "11.002", "16.502", "86400"] {
                paths.append("/api/v1/query_range?query=time()&start=0&end=\(end)&step=\(Self.escape(step))")
            }
        }

        var differences: [String] = []
        var accepted = 0
        for path in paths {
            let ours = try tally.client.request("GET", path), theirs = try prometheus.client().request("GET", path)
            let (a, b) = (try Self.outcome(ours), try Self.outcome(theirs))
            if a != b { differences.append("\(path)\n  Tally:      \(ours.status) \(ours.body.prefix(300))\n  Prometheus: \(theirs.status) \(theirs.body.prefix(300))") }
            if theirs.status == 200 { accepted += 1 }
        }
        XCTAssertEqual(differences, [], "\(differences.count) of \(paths.count) requests differ")
        // The generated texts reach both verdicts often enough to mean something.
        XCTAssertGreaterThan(accepted, paths.count / 4)
        XCTAssertLessThan(accepted, paths.count * 3 / 4)
    }

    /// `series`, `labels` and `label/<name>/values` with `start` and `end` (also past a series' last
    /// sample, and `start` after `end`, which Prometheus answers by chunks reaching across), and instant queries around a staleness marker, on the same
    /// remote-written series in both servers' heads: the same answers. Prometheus names the labels
    /// of every series its head holds for a range the head overlaps, where `series` looks at chunks.
    func testSeriesAndLabelsOverARangeAnswerAsPrometheus() throws {
        let root = try makeTemporaryDirectory("query-range-oracle")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in "global:\n  scrape_interval: 1h\n" },
                                               arguments: ["--storage.tsdb.path=\(root)/prometheus", "--web.enable-remote-write-receiver"])
        try prometheus.waitReady()
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()

        // Three hours ending at the last whole minute: a head, no block, in both.
        let base = Int64(Date().timeIntervalSince1970) / 60 * 60 - 3 * 3600
        func samples(_ minutes: StrideTo<Int64>, _ value: Double) -> [WireSample] {
            minutes.map { WireSample(timestamp: (base + $0 * 60) * 1000, valueBits: value.bitPattern) }
        }
        let staleNaN: UInt64 = 0x7ff0_0000_0000_0002
        var encoder = WriteRequestEncoder()
        for cluster in ["cluster-0", "cluster-1"] {
            for node in ["n1", "n2"] {
                encoder.addSeries(labels: [("__name__", "node_cpu_hourly_cost"), ("cluster_id", cluster), ("instance", node), ("node", node)],
                                  samples: samples(stride(from: 0, to: 180, by: 1), 0.05))
                encoder.addSeries(labels: [("__name__", "node_ram_hourly_cost"), ("cluster_id", cluster), ("instance", node), ("node", node)],
                                  samples: samples(stride(from: 0, to: 180, by: 2), 0.01))
            }
            encoder.addSeries(labels: [("__name__", "container_cpu_allocation"), ("cluster_id", cluster), ("container", "c"), ("namespace", "ns-0"), ("pod", "p")],
                              samples: samples(stride(from: 0, to: 180, by: 1), 1.5))
            encoder.addSeries(labels: [("__name__", "stale_one"), ("cluster_id", cluster)],
                              samples: samples(stride(from: 0, to: 2, by: 1), 1) + [WireSample(timestamp: (base + 120) * 1000, valueBits: staleNaN)]
                                  + samples(stride(from: 10, to: 11, by: 1), 4))
        }
        encoder.addSeries(labels: [("__name__", "early"), ("a", "x\ny"), ("b", "é"), ("c", "\\")], samples: samples(stride(from: 0, to: 3, by: 1), 2))
        let body = encoder.compressed()
        let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/write", headers: headers, body: body).status, 204)
        XCTAssertEqual(try prometheus.client().request("POST", "/api/v1/write", headers: headers, body: body).status, 204)

        // Minutes 59 and 61 are inside one chunk: `start` after `end` between them still finds its series.
        let times = ["", "\(base - 100_000)", "\(base)", "\(base + 59 * 60)", "\(base + 61 * 60)", "\(base + 3600)", "\(base + 179 * 60)",
                     "\(base + 5 * 3600)", "0", "\(base + 100 * 86_400)"]
        var paths: [String] = []
        for start in times {
            for end in times {
                let range = (start.isEmpty ? "" : "&start=\(start)") + (end.isEmpty ? "" : "&end=\(end)")
                for selector in ["node_cpu_hourly_cost", #"{cluster_id="cluster-0"}"#, "early", #"{__name__=~"stale.*"}"#, #"{__name__=~".+"}"#] {
                    let match = "match[]=" + LoopbackHTTP.escaped(selector)
                    paths += ["/api/v1/series?\(match)\(range)", "/api/v1/labels?\(match)\(range)", "/api/v1/label/cluster_id/values?\(match)\(range)"]
                }
                paths += ["/api/v1/labels?x=1\(range)", "/api/v1/label/__name__/values?x=1\(range)"]
            }
        }
        for minute in [0, 1, 2, 3, 5, 7, 10, 15, 60, 184, 185] as [Int64] {
            for query in ["stale_one", "early", "count(stale_one)", "timestamp(stale_one)", "last_over_time(stale_one[10m])", #"early{a=~"x.y"}"#] {
                paths.append("/api/v1/query?query=\(LoopbackHTTP.escaped(query))&time=\(base + minute * 60)")
            }
        }
        var differences: [String] = []
        for path in paths {
            let ours = try tally.client.request("GET", path), theirs = try prometheus.client().request("GET", path)
            if try Self.answer(ours) != Self.answer(theirs) {
                differences.append("\(path)\n  Tally:      \(ours.status) \(ours.body.prefix(300))\n  Prometheus: \(theirs.status) \(theirs.body.prefix(300))")
            }
        }
        XCTAssertEqual(differences, [], "\(differences.count) of \(paths.count) requests differ")
    }

    /// Status and data, with a vector's elements in a fixed order (neither server promises one).
    static func answer(_ response: LoopbackHTTP.Response) throws -> String {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.bytes)) as? [String: Any], response.body)
        var data = object["data"] ?? NSNull()
        if let vector = data as? [String: Any], let result = vector["result"] as? [Any] {
            let sorted = try result.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }.sorted()
            data = [vector["resultType"] as? String ?? "", sorted]
        }
        return "\(response.status) \(object["errorType"] as? String ?? "") "
            + String(decoding: try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    /// Status, error type and the answer's data (the time asked for, and errors' messages but for
    /// Prometheus' divide-by-zero on steps under a millisecond, which Tally refuses with a 400).
    private static func outcome(_ response: LoopbackHTTP.Response) throws -> String {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.bytes)) as? [String: Any], response.body)
        if response.status == 200 {
            let data = try JSONSerialization.data(withJSONObject: object["data"] as Any, options: [.sortedKeys])
            return "200 " + String(decoding: data, as: UTF8.self)
        }
        let error = object["error"] as? String ?? ""
        if error.contains("integer divide by zero") || error.contains("step widths under 1ms") { return "step under 1ms" }
        return "\(response.status) \(object["errorType"] as? String ?? "")"
    }

    /// Whether Prometheus' answer is its reading rather than a wrapped one (see the type's comment).
    private static func isComparable(_ text: String) -> Bool {
        // An empty value means "now", a moment the two servers cannot share.
        guard !text.isEmpty else { return false }
        guard let value = Double(text.filter { $0 != "_" }), !text.lowercased().contains("inf"), !text.lowercased().contains("nan") else {
            // Not a number to Swift either: RFC 3339 or rubbish; the year keeps it inside Go's clock.
            guard let year = Int(text.prefix(4)) else { return true }
            return year > 1678 && year < 2262
        }
        return value.isFinite && abs(value) < 9e9
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// A date and time that breaks each of Go's rules now and then: month, day (leap years too), a
    /// one-digit hour, minutes and seconds out of range, fractions of 0-11 digits after `.` or `,`,
    /// zones in and out of form.
    static func randomRFC3339(_ random: inout SeededGenerator) -> String {
        func two(_ range: ClosedRange<Int>) -> String {
            let n = Int.random(in: range, using: &random)
            return n < 10 && Int.random(in: 0..<8, using: &random) == 0 ? "\(n)" : String(format: "%02d", n)
        }
        let year = Int.random(in: 1700...2200, using: &random)
        let month = Int.random(in: 0..<10, using: &random) == 0 ? two(0...13) : two(1...12)
        let day = two(Int.random(in: 0..<4, using: &random) == 0 ? 0...32 : 27...31)
        let hour = Int.random(in: 0..<6, using: &random) == 0 ? "\(Int.random(in: 0...9, using: &random))" : two(0...24)
        let minute = two(Int.random(in: 0..<10, using: &random) == 0 ? 0...61 : 0...59)
        let second = two(Int.random(in: 0..<10, using: &random) == 0 ? 0...61 : 0...59)
        var text = "\(year)-\(month)-\(day)\(Int.random(in: 0..<30, using: &random) == 0 ? "t" : "T")\(hour):\(minute):\(second)"
        switch Int.random(in: 0..<4, using: &random) {
        case 0: break
        default:
            text += Int.random(in: 0..<5, using: &random) == 0 ? "," : "."
            text += String((0..<Int.random(in: 0...11, using: &random)).map { _ in Character("\(Int.random(in: 0...9, using: &random))") })
        }
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<4: text += "Z"
        case 4: text += ["z", "", "+0100", "+1:00", "Z0"].randomElement(using: &random)!
        default: text += "\(Bool.random(using: &random) ? "+" : "-")\(two(0...30)):\(two(0...70))"
        }
        return text
    }

    /// Unix seconds in Go's float syntax and around it: signs, underscores well and badly placed,
    /// fractions, exponents, hex with and without `p`.
    static func randomSeconds(_ random: inout SeededGenerator) -> String {
        func digits(_ count: Int) -> String {
            var text = ""
            for i in 0..<count {
                if i > 0, Int.random(in: 0..<8, using: &random) == 0 { text += "_" }
                text += "\(Int.random(in: 0...9, using: &random))"
            }
            return text
        }
        var text = ["", "", "", "-", "+"].randomElement(using: &random)!
        if Int.random(in: 0..<8, using: &random) == 0 {
            text += "0x" + String((0..<Int.random(in: 1...4, using: &random)).map { _ in "0123456789abcdefABCDEF".randomElement(using: &random)! })
            if Bool.random(using: &random) { text += "p" + ["", "-", "+"].randomElement(using: &random)! + "\(Int.random(in: 0...20, using: &random))" }
            return text
        }
        text += digits(Int.random(in: 0...10, using: &random))
        if Bool.random(using: &random) { text += "." + digits(Int.random(in: 0...6, using: &random)) }
        if Int.random(in: 0..<4, using: &random) == 0 {
            text += ["e", "E"].randomElement(using: &random)! + ["", "-", "+"].randomElement(using: &random)! + digits(Int.random(in: 0...2, using: &random))
        }
        if Int.random(in: 0..<12, using: &random) == 0 { text.insert("_", at: text.index(text.startIndex, offsetBy: Int.random(in: 0...text.count, using: &random))) }
        return text
    }
}
