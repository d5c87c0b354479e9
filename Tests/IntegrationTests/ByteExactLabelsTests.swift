import Foundation
import TallyLoad
import TallyStorage
import TallyWire
import XCTest

/// Label values that differ in their bytes are different labels, as Prometheus compares them, even
/// where Unicode calls them canonically equivalent: `é` as one scalar and as `e` with a combining
/// accent, `Å` and the Ångström sign. Swift's `==` on strings calls each pair equal, so a store that
/// compared or keyed labels by it would merge two series into one or give one series' bytes to
/// another. Each check below compares bytes (`Array(utf8)`), never strings.
final class ByteExactLabelsTests: XCTestCase {
    private let values = ["\u{E9}", "e\u{301}", "\u{C5}", "\u{212B}"]
    private let start: Int64 = 1_700_000_000_000 / 3_600_000 * 3_600_000
    private let hours: Int64 = 7
    private let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "bytes")]

    /// Series `k` (label `a` is `values[k]`) holds k + 1 at every minute.
    private var end: Int64 { start + hours * 3_600_000 - 60_000 }

    func testCanonicallyEquivalentLabelValuesStayDistinctSeriesWithTheirOwnBytes() throws {
        let storage = try makeTemporaryDirectory("byte-labels")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        var server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        for hour in 0..<hours {
            var encoder = WriteRequestEncoder()
            for (k, value) in values.enumerated() {
                encoder.addSeries(labels: [("__name__", "m"), ("a", value)], samples: (0..<60).map { minute in
                    WireSample(timestamp: start + (hour * 60 + Int64(minute)) * 60_000, valueBits: Double(k + 1).bitPattern)
                })
            }
            let response = try server.client.request("POST", "/api/v1/write", headers: headers, body: encoder.compressed())
            XCTAssertEqual(response.status, 204, response.body)
        }
        try checkAnswers(server, "from the head")

        // The head rebuilt from the WAL and the head chunk files.
        server.stop(SIGKILL)
        server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        try checkAnswers(server, "after a restart")

        // Blocks cut from the head (7 hours hold two whole 2-hour ranges past the head's reach).
        let tenant = storage + "/bytes"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (try FileManager.default.contentsOfDirectory(atPath: tenant)).filter({ ULID($0) != nil }).count < 2 {
            usleep(50_000)
        }
        try checkAnswers(server, "with blocks")
        server.stop(SIGTERM)

        let expected = values.enumerated().flatMap { k, value in
            (0..<(hours * 60)).map { minute in "{__name__=\"m\", a=\"\(value)\"} \(k + 1) \(start + minute * 60_000)" }
        }
        XCTAssertEqual(Self.byteLines(try tallyDump(storage: storage, tenant: "bytes")), Self.byteLines(expected), "tally dump")
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "bytes"])
        XCTAssertEqual(compact.status, 0, compact.stderr)
        XCTAssertEqual(Self.byteLines(try tallyDump(storage: storage, tenant: "bytes")), Self.byteLines(expected), "tally dump after compaction")
        XCTAssertEqual(Self.byteLines(try BlockInteropTests.promtoolDump(tenant)), Self.byteLines(expected), "promtool dump")
        server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        try checkAnswers(server, "after compaction")
        server.stop(SIGTERM)
    }

    /// The series, label values, equality matchers, grouping and `label_replace`, each per value.
    private func checkAnswers(_ server: TallyServerProcess, _ when: String) throws {
        let bytes = Set(values.map { Array($0.utf8) })
        let seconds = end / 1000
        let series = try data(server, "/api/v1/series?match[]=m&start=\(start / 1000)&end=\(seconds)") as? [[String: String]]
        XCTAssertEqual(Set((series ?? []).compactMap { $0["a"].map { Array($0.utf8) } }), bytes, "series, \(when)")
        XCTAssertEqual(series?.count, values.count, "series, \(when)")
        let labelValues = try data(server, "/api/v1/label/a/values?start=\(start / 1000)&end=\(seconds)") as? [String]
        XCTAssertEqual(Set((labelValues ?? []).map { Array($0.utf8) }), bytes, "label values, \(when)")
        XCTAssertEqual(labelValues?.count, values.count, "label values, \(when)")

        for (k, value) in values.enumerated() {
            let result = try vector(server, "m{a=\"\(value)\"}", at: seconds)
            XCTAssertEqual(result.map { Array(($0.labels["a"] ?? "").utf8) }, [Array(value.utf8)], "m{a=\(value.unicodeScalars.map { $0.value }), \(when)")
            XCTAssertEqual(result.map(\.value), ["\(k + 1)"], "m{a=\(value.unicodeScalars.map { $0.value })}, \(when)")
            let others = try vector(server, "m{a!=\"\(value)\"}", at: seconds)
            XCTAssertEqual(others.count, values.count - 1, "!= \(value.unicodeScalars.map { $0.value }), \(when)")
            let set = try vector(server, "m{a=~\"\(value)|x\"}", at: seconds)
            XCTAssertEqual(set.map(\.value), ["\(k + 1)"], "=~ \(value.unicodeScalars.map { $0.value }), \(when)")
        }
        let groups = try vector(server, "count by (a) (m)", at: seconds)
        XCTAssertEqual(Set(groups.map { Array(($0.labels["a"] ?? "").utf8) }), bytes, "count by (a), \(when)")
        XCTAssertEqual(groups.map(\.value), Array(repeating: "1", count: values.count), "count by (a), \(when)")
        let copied = try vector(server, "label_replace(m, \"b\", \"$1\", \"a\", \"(.*)\")", at: seconds)
        XCTAssertEqual(copied.count, values.count, "label_replace, \(when)")
        for element in copied { XCTAssertEqual(Array((element.labels["b"] ?? "").utf8), Array((element.labels["a"] ?? "-").utf8), "label_replace, \(when)") }
    }

    private func data(_ server: TallyServerProcess, _ path: String) throws -> Any? {
        let response = try server.client.request("GET", path, headers: [("THANOS-TENANT", "bytes")])
        XCTAssertEqual(response.status, 200, response.body)
        let object = try JSONSerialization.jsonObject(with: Data(response.bytes)) as? [String: Any]
        return object?["data"]
    }

    private func vector(_ server: TallyServerProcess, _ query: String, at seconds: Int64) throws -> [(labels: [String: String], value: String)] {
        let result = (try data(server, "/api/v1/query?query=\(Self.percentEncoded(query))&time=\(seconds)") as? [String: Any])?["result"] as? [[String: Any]]
        return (result ?? []).map { (($0["metric"] as? [String: String]) ?? [:], (($0["value"] as? [Any])?.last as? String) ?? "") }
    }

    /// Every byte but letters and digits as %XX: Foundation's encoders work on strings.
    private static func percentEncoded(_ text: String) -> String {
        text.utf8.map { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }.joined()
    }

    /// The lines as bytes, sorted by bytes.
    private static func byteLines<S: Sequence>(_ lines: S) -> [[UInt8]] where S.Element: StringProtocol {
        lines.map { Array($0.utf8) }.filter { !$0.isEmpty }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private static func byteLines(_ text: String) -> [[UInt8]] { byteLines(text.split(separator: "\n")) }
}
