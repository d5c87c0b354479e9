import Foundation
import TallyLoad
import TallyWire
import XCTest

/// `POST /api/v1/read`: a real Prometheus 2.42 reading a tenant through `remote_read` answers its
/// queries as Tally answers them itself, and sees no other tenant; requests Tally cannot answer get
/// a 400 naming why.
final class RemoteReadTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("remote-read")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private static let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]
    private static let staleNaN: UInt64 = 0x7FF0_0000_0000_0002
    /// The last whole minute, and the samples' times: every minute of the half hour before it.
    private let end = Int64(Date().timeIntervalSince1970) / 60 * 60_000
    private var minutes: [Int64] { (0..<30).map { end - Int64(29 - $0) * 60_000 } }

    private func write(_ tally: TallyServerProcess, tenant: String, _ series: [([(String, String)], [WireSample])]) throws {
        var encoder = WriteRequestEncoder()
        for (labels, samples) in series { encoder.addSeries(labels: labels, samples: samples) }
        let answer = try tally.client.request("POST", "/api/v1/write", headers: Self.protobuf + [("THANOS-TENANT", tenant)], body: encoder.compressed())
        XCTAssertEqual(answer.status, 204, answer.body)
    }

    private func result(_ response: LoopbackHTTP.Response, _ context: String) throws -> [NSDictionary] {
        XCTAssertEqual(response.status, 200, "\(context): \(response.body)")
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        let data = try XCTUnwrap(object?["data"] as? [String: Any], "\(context): \(response.body)")
        return try XCTUnwrap(data["result"] as? [NSDictionary], context)
    }

    func testPrometheusReadingATenantAnswersAsTallyDoesAndSeesNoOtherTenant() throws {
        let tally = try TallyServerProcess(storage: root + "/tally")
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        // A counter with a reset, a gauge that goes stale half-way, values whose bits matter.
        let counter = minutes.enumerated().map { WireSample(timestamp: $0.element, valueBits: Double($0.offset < 20 ? $0.offset * 10 : ($0.offset - 20) * 3).bitPattern) }
        let gauge = minutes.prefix(15).map { WireSample(timestamp: $0, valueBits: 0.1.bitPattern) } + [WireSample(timestamp: minutes[15], valueBits: Self.staleNaN)]
        try write(tally, tenant: "acme", [
            ([("__name__", "kubecost_cluster_requests_total"), ("cluster_id", "a"), ("node", "n1")], counter),
            ([("__name__", "kubecost_cluster_requests_total"), ("cluster_id", "a"), ("node", "n2")], counter.map { WireSample(timestamp: $0.timestamp, valueBits: (Double(bitPattern: $0.valueBits) * 2).bitPattern) }),
            ([("__name__", "node_ram_hourly_cost"), ("cluster_id", "a"), ("node", "n1")], gauge),
            ([("__name__", "pv_hourly_cost"), ("cluster_id", "a"), ("volume", "v")], minutes.map { WireSample(timestamp: $0, valueBits: (-0.0).bitPattern) }),
        ])
        try write(tally, tenant: "beta", [([("__name__", "kubecost_cluster_requests_total"), ("cluster_id", "b"), ("node", "n9")], counter)])

        // Prometheus 2.42's remote_read sends no configured headers: the tenant goes in the URL.
        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in
            """
            global:
              scrape_interval: 1m
            remote_read:
              - url: http://127.0.0.1:\(tally.port)/api/v1/read?tenant=acme
                read_recent: true
            """
        }, arguments: ["--storage.tsdb.path=\(root)/prometheus"])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        let theirs = prometheus.client()
        for _ in 0..<300 where (try? theirs.request("GET", "/-/ready").status) != 200 { usleep(20_000) }

        let range = "start=\(Double(end) / 1000 - 1800)&end=\(Double(end) / 1000)&step=60"
        for query in ["kubecost_cluster_requests_total", "rate(kubecost_cluster_requests_total[5m])", "node_ram_hourly_cost", "pv_hourly_cost",
                      "sum by (cluster_id) (increase(kubecost_cluster_requests_total[10m]))", "count({__name__=~\".+\"})",
                      "kubecost_cluster_requests_total{node!~\"n1\"}", "last_over_time(node_ram_hourly_cost[1h])"] {
            let path = "/api/v1/query_range?query=\(LoopbackHTTP.escaped(query))&\(range)"
            let ours = try result(try tally.client.request("GET", path, headers: [("THANOS-TENANT", "acme")]), "Tally: \(query)")
            let read = try result(try theirs.request("GET", path), "Prometheus: \(query)")
            XCTAssertFalse(ours.isEmpty, query)
            XCTAssertEqual(read, ours, query)
            XCTAssertFalse("\(read)".contains("\"b\"") || "\(read)".contains("n9"), "another tenant's series: \(query)")
        }
        let instant = "/api/v1/query?query=\(LoopbackHTTP.escaped("sum(kubecost_cluster_requests_total)"))&time=\(Double(end) / 1000)"
        XCTAssertEqual(try result(try theirs.request("GET", instant), "Prometheus, instant"),
                       try result(try tally.client.request("GET", instant, headers: [("THANOS-TENANT", "acme")]), "Tally, instant"))
    }

    /// A `ReadRequest` as a client builds it: each query's range and matchers (type, name, value),
    /// and the response types it accepts.
    private func readRequest(_ queries: [(start: Int64, end: Int64, matchers: [(UInt64, String, String)])], accepting types: [UInt64] = []) -> [UInt8] {
        var writer = ProtobufWriter()
        for query in queries {
            writer.messageField(1) { q in
                q.varintField(1, UInt64(bitPattern: query.start))
                q.varintField(2, UInt64(bitPattern: query.end))
                for (type, name, value) in query.matchers {
                    q.messageField(3) { m in
                        m.varintField(1, type)
                        m.bytesField(2, Array(name.utf8))
                        m.bytesField(3, Array(value.utf8))
                    }
                }
            }
        }
        for type in types { writer.varintField(2, type) }
        return SnappyBlock.compress(writer.bytes)
    }

    /// The series count of each `QueryResult` of a `ReadResponse`, and every sample's (timestamp, value bits).
    private func decodeResponse(_ body: [UInt8]) throws -> (seriesPerResult: [Int], samples: [(Int64, UInt64)]) {
        let bytes = try SnappyBlock.decompress(body, maxDecodedBytes: 1 << 26)
        var position = 0
        func varint(_ end: Int) -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while position < end {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            return value
        }
        /// Calls `body` with each field's number and, for a length-delimited one, its end; skips the rest.
        func fields(until end: Int, _ body: (UInt64, Int) -> Void) {
            while position < end {
                let key = varint(end)
                switch key & 7 {
                case 2:
                    let length = Int(varint(end))
                    let fieldEnd = position + length
                    body(key >> 3, fieldEnd)
                    position = fieldEnd
                case 1: position += 8
                default: _ = varint(end)
                }
            }
        }
        var seriesPerResult: [Int] = []
        var samples: [(Int64, UInt64)] = []
        fields(until: bytes.count) { field, resultEnd in
            guard field == 1 else { return }
            var count = 0
            fields(until: resultEnd) { field, seriesEnd in
                guard field == 1 else { return }
                count += 1
                fields(until: seriesEnd) { field, sampleEnd in
                    guard field == 2 else { return }
                    var timestamp: Int64 = 0, bits: UInt64 = 0
                    while position < sampleEnd {
                        let key = varint(sampleEnd)
                        if key == 0x09 {
                            bits = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[position + $1]) << (8 * UInt64($1)) }
                            position += 8
                        } else {
                            timestamp = Int64(bitPattern: varint(sampleEnd))
                        }
                    }
                    samples.append((timestamp, bits))
                }
            }
            seriesPerResult.append(count)
        }
        return (seriesPerResult, samples)
    }

    func testEachQueryGetsItsResultAndWhatCannotBeAnsweredIs400() throws {
        let tally = try TallyServerProcess(storage: root + "/tally", extraArguments: ["--query.max-samples", "35"])
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        let samples = minutes.map { WireSample(timestamp: $0, valueBits: 1.5.bitPattern) }
        try write(tally, tenant: "acme", [([("__name__", "m"), ("i", "1")], samples), ([("__name__", "m"), ("i", "2")], Array(samples.prefix(5))),
                                          ([("__name__", "z"), ("i", "1")], [WireSample(timestamp: minutes[3], valueBits: (-0.0).bitPattern)])])
        let acme = Self.protobuf + [("THANOS-TENANT", "acme")]
        func read(_ body: [UInt8], headers: [(String, String)] = acme) throws -> LoopbackHTTP.Response {
            try tally.client.request("POST", "/api/v1/read", headers: headers, body: body)
        }

        // Three queries, one result each in order: a range inside the data (closed at both ends),
        // a regex and a negative matcher, and one matching nothing; -0.0 arrives with its sign.
        let answer = try read(readRequest([(minutes[10], minutes[19], [(0, "__name__", "m")]),
                                           (minutes[0], end, [(2, "__name__", "z|y"), (1, "i", "2")]),
                                           (minutes[0], end, [(0, "__name__", "nothing")])]))
        XCTAssertEqual(answer.status, 200, answer.body)
        XCTAssertEqual(answer.headers["content-type"], "application/x-protobuf")
        XCTAssertEqual(answer.headers["content-encoding"], "snappy")
        let decoded = try decodeResponse(answer.bytes)
        XCTAssertEqual(decoded.seriesPerResult, [1, 1, 0], "m{i=2} ends before the first range; z matches the regex, i != 2")
        XCTAssertEqual(decoded.samples.prefix(10).map(\.0), Array(minutes[10...19]))
        XCTAssertEqual(decoded.samples.last.map { $0.1 }, (-0.0).bitPattern)
        XCTAssertEqual(decoded.samples.count, 11)
        // Another tenant's name reads nothing of acme's; gzip asked for changes nothing.
        let beta = try decodeResponse(try read(readRequest([(minutes[0], end, [(0, "__name__", "m")])]), headers: Self.protobuf + [("THANOS-TENANT", "beta")]).bytes)
        XCTAssertEqual(beta.seriesPerResult, [0])
        let gzipAsked = try read(readRequest([(minutes[0], end, [(0, "__name__", "m")])]), headers: acme + [("Accept-Encoding", "gzip")])
        XCTAssertEqual(gzipAsked.headers["content-encoding"], "snappy")
        XCTAssertEqual(try decodeResponse(gzipAsked.bytes).samples.count, 35)

        let refusals: [(String, [UInt8], String)] = [
            ("more samples than --query.max-samples (36)", readRequest([(minutes[0], end, [(2, "__name__", ".+")])]), "exceeded sample limit (35)"),
            ("only streamed chunks accepted", readRequest([(minutes[0], end, [(0, "__name__", "m")])], accepting: [1]), "server does not support any of the requested response types"),
            ("a regex that does not compile", readRequest([(minutes[0], end, [(2, "__name__", "(m")])]), "invalid regex"),
            ("an unknown matcher type", readRequest([(minutes[0], end, [(7, "__name__", "m")])]), "label matcher type 7"),
            ("a body that is not snappy", Array("not snappy".utf8), "snappy"),
            ("a matcher that is not UTF-8", SnappyBlock.compress([0x0a, 0x07, 0x1a, 0x05, 0x12, 0x03, 0xff, 0xfe, 0xfd]), "not UTF-8"),
        ]
        for (what, body, message) in refusals {
            let refused = try read(body)
            XCTAssertEqual(refused.status, 400, "\(what): \(refused.body)")
            XCTAssertTrue(refused.body.contains(message), "\(what): \(refused.body)")
        }
        // A query without matchers selects nothing, as in Prometheus (its postings intersect no list).
        let unmatched = try read(readRequest([(minutes[0], end, [])]))
        XCTAssertEqual(unmatched.status, 200, unmatched.body)
        XCTAssertEqual(try decodeResponse(unmatched.bytes).seriesPerResult, [0])
        // Streamed chunks listed after raw samples: raw samples, which the client also takes.
        XCTAssertEqual(try read(readRequest([(minutes[0], end, [(0, "__name__", "m")])], accepting: [1, 0])).status, 200)
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/read", headers: acme).status, 405)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tally/beta"), "reading creates no tenant")
    }
}
