import Foundation
import TallyLoad
import TallyStorage
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
        try prometheus.waitReady()

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
            ("only response types this server does not write", readRequest([(minutes[0], end, [(0, "__name__", "m")])], accepting: [5, 2]),
             "server does not support any of the requested response types: [5, 2]"),
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
        // The first response type the client lists that Tally writes, as Prometheus negotiates.
        for (types, contentType) in [([5, 0, 1], "application/x-protobuf"), ([1, 0], Self.streamedContentType)] as [([UInt64], String)] {
            let negotiated = try read(readRequest([(minutes[0], end, [(0, "__name__", "m")])], accepting: types))
            XCTAssertEqual(negotiated.status, 200, negotiated.body)
            XCTAssertEqual(negotiated.headers["content-type"], contentType, "\(types)")
        }
        let streamedOverLimit = try read(readRequest([(minutes[0], end, [(2, "__name__", ".+")])], accepting: [1]))
        XCTAssertEqual(streamedOverLimit.status, 400, streamedOverLimit.body)
        XCTAssertTrue(streamedOverLimit.body.contains("exceeded sample limit (35)"), streamedOverLimit.body)
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/read", headers: acme).status, 405)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tally/beta"), "reading creates no tenant")
    }

    private static let streamedContentType = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"

    private struct MalformedStream: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// One frame of a streamed answer: its query index, its series' labels, and each chunk's
    /// (min time, max time, encoding, data).
    private struct Frame {
        var queryIndex: Int64 = 0
        var labels: [String] = []
        var chunks: [(minTime: Int64, maxTime: Int64, encoding: UInt64, data: [UInt8])] = []
        var messageBytes = 0
    }

    /// Splits a streamed answer into frames, checking each frame's CRC32C.
    private func decodeFrames(_ bytes: [UInt8]) throws -> [Frame] {
        var position = 0
        func varint(_ end: Int) throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard position < end, shift < 64 else { throw MalformedStream("varint runs past \(end)") }
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }
        func fields(until end: Int, _ body: (UInt64, UInt64, Int) throws -> Void) throws {
            while position < end {
                let key = try varint(end)
                if key & 7 == 2 {
                    let length = Int(try varint(end))
                    let fieldEnd = position + length
                    guard fieldEnd <= end else { throw MalformedStream("field \(key >> 3) runs past its message") }
                    try body(key >> 3, 0, fieldEnd)
                    position = fieldEnd
                } else {
                    guard key & 7 == 0 else { throw MalformedStream("unexpected wire type in \(key)") }
                    try body(key >> 3, try varint(end), -1)
                }
            }
        }
        var frames: [Frame] = []
        while position < bytes.count {
            let length = Int(try varint(bytes.count))
            guard position + 4 + length <= bytes.count else { throw MalformedStream("frame at \(position) runs past the answer") }
            let checksum = bytes[position..<position + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            position += 4
            let messageEnd = position + length
            XCTAssertEqual(CRC32C.checksum(bytes[position..<messageEnd]), checksum, "frame \(frames.count)")
            var frame = Frame(messageBytes: length)
            try fields(until: messageEnd) { field, value, fieldEnd in
                if field == 2 { frame.queryIndex = Int64(bitPattern: value) }
                guard field == 1 else { return }
                try fields(until: fieldEnd) { field, _, innerEnd in
                    if field == 1 {
                        var label = ("", "")
                        try fields(until: innerEnd) { field, _, end in
                            let text = String(decoding: bytes[position..<end], as: UTF8.self)
                            if field == 1 { label.0 = text } else { label.1 = text }
                        }
                        frame.labels.append("\(label.0)=\(label.1)")
                    } else if field == 2 {
                        var chunk: (minTime: Int64, maxTime: Int64, encoding: UInt64, data: [UInt8]) = (0, 0, 0, [])
                        try fields(until: innerEnd) { field, value, end in
                            switch field {
                            case 1: chunk.minTime = Int64(bitPattern: value)
                            case 2: chunk.maxTime = Int64(bitPattern: value)
                            case 3: chunk.encoding = value
                            default: chunk.data = Array(bytes[position..<end])
                            }
                        }
                        frame.chunks.append(chunk)
                    }
                }
            }
            position = messageEnd
            frames.append(frame)
        }
        return frames
    }

    /// A streamed answer as query index -> series labels in the order sent -> the samples of
    /// their chunks that fall in the query's range, in order.
    private func streamedSamples(_ frames: [Frame], ranges: [ClosedRange<Int64>]) -> [Int64: [(labels: String, samples: [(Int64, UInt64)])]] {
        var out: [Int64: [(labels: String, samples: [(Int64, UInt64)])]] = [:]
        for frame in frames {
            let labels = frame.labels.joined(separator: ",")
            var samples: [(Int64, UInt64)] = []
            for chunk in frame.chunks {
                XCTAssertEqual(chunk.encoding, 1, "XOR")
                chunk.data.withUnsafeBufferPointer { bytes in
                    var iterator = XORIterator(bytes)
                    while let sample = iterator.next() {
                        if ranges[Int(frame.queryIndex)].contains(sample.timestamp) { samples.append(sample) }
                    }
                    XCTAssertFalse(iterator.failed, labels)
                }
            }
            // A series split over frames comes in consecutive frames.
            if out[frame.queryIndex]?.last?.labels == labels {
                out[frame.queryIndex]![out[frame.queryIndex]!.count - 1].samples += samples
            } else {
                out[frame.queryIndex, default: []].append((labels, samples))
            }
        }
        return out
    }

    func testStreamedChunksHoldWhatPrometheusStreamsForTheSameWrites() throws {
        let tally = try TallyServerProcess(storage: root + "/tally")
        defer { tally.stop(SIGTERM) }
        try tally.waitReady()
        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in "global:\n  scrape_interval: 1m\n" },
                                               arguments: ["--storage.tsdb.path=\(root)/prometheus", "--web.enable-remote-write-receiver"])
        defer { stopChild(prometheus.process, SIGTERM, within: 10) }
        let theirs = prometheus.client(timeoutSeconds: 60)
        try prometheus.waitReady()

        // A counter with a reset, a gauge that goes stale, -0.0, and a series of 300,000 samples
        // with values that change in every bit, whose chunks take more than two frames.
        let counter = minutes.enumerated().map { WireSample(timestamp: $0.element, valueBits: Double($0.offset < 20 ? $0.offset * 10 : ($0.offset - 20) * 3).bitPattern) }
        let gauge = minutes.prefix(15).map { WireSample(timestamp: $0, valueBits: 0.1.bitPattern) } + [WireSample(timestamp: minutes[15], valueBits: Self.staleNaN)]
        var state: UInt64 = 42
        let noisy = (0..<300_000).map { i -> WireSample in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return WireSample(timestamp: end - 1_500_000 + Int64(i) * 5, valueBits: (Double(state >> 11) * 0x1p-53).bitPattern)
        }
        let series: [([(String, String)], [WireSample])] = [
            ([("__name__", "kubecost_cluster_requests_total"), ("cluster_id", "a"), ("node", "n1")], counter),
            ([("__name__", "kubecost_cluster_requests_total"), ("cluster_id", "a"), ("node", "n2")], counter.map { WireSample(timestamp: $0.timestamp, valueBits: (Double(bitPattern: $0.valueBits) * 2).bitPattern) }),
            ([("__name__", "node_ram_hourly_cost"), ("cluster_id", "a"), ("node", "n1")], gauge),
            ([("__name__", "pv_hourly_cost"), ("cluster_id", "a"), ("volume", "v")], minutes.map { WireSample(timestamp: $0, valueBits: (-0.0).bitPattern) }),
            ([("__name__", "noisy"), ("cluster_id", "a")], noisy),
        ]
        try write(tally, tenant: "acme", series)
        try write(tally, tenant: "beta", [([("__name__", "kubecost_cluster_requests_total"), ("cluster_id", "b"), ("node", "n9")], counter)])
        var encoder = WriteRequestEncoder()
        for (labels, samples) in series { encoder.addSeries(labels: labels, samples: samples) }
        let written = try theirs.request("POST", "/api/v1/write", headers: Self.protobuf, body: encoder.compressed())
        XCTAssertEqual(written.status, 204, written.body)

        // Ranges that start and end inside chunks; a query matching nothing in the middle.
        let queries: [(start: Int64, end: Int64, matchers: [(UInt64, String, String)])] = [
            (minutes[3] + 1, minutes[25], [(2, "__name__", "kubecost_.*|node_.*|pv_.*"), (1, "node", "n2")]),
            (minutes[0], end, [(0, "__name__", "nothing")]),
            (end - 1_400_000 + 3, end - 2, [(0, "__name__", "noisy")]),
        ]
        let body = readRequest(queries, accepting: [1])
        // gzip asked for changes nothing: the frames go as they are, as Prometheus sends them.
        let ours = try tally.client.request("POST", "/api/v1/read", headers: Self.protobuf + [("THANOS-TENANT", "acme"), ("Accept-Encoding", "gzip")], body: body)
        let read = try theirs.request("POST", "/api/v1/read", headers: Self.protobuf + [("Accept-Encoding", "gzip")], body: body)
        XCTAssertEqual(ours.status, 200, ours.body)
        XCTAssertEqual(read.status, 200, read.body)
        XCTAssertEqual(ours.headers["content-type"], Self.streamedContentType)
        XCTAssertEqual(ours.headers["content-type"], read.headers["content-type"])
        XCTAssertNil(ours.headers["content-encoding"])
        XCTAssertNil(read.headers["content-encoding"])
        // A read matching nothing is an empty stream, its type named as Prometheus names it.
        let nothing = readRequest([(minutes[0], end, [(0, "__name__", "nothing")])], accepting: [1])
        let ourEmpty = try tally.client.request("POST", "/api/v1/read", headers: Self.protobuf + [("THANOS-TENANT", "acme")], body: nothing)
        let theirEmpty = try theirs.request("POST", "/api/v1/read", headers: Self.protobuf, body: nothing)
        XCTAssertEqual([ourEmpty.status, theirEmpty.status], [200, 200])
        XCTAssertEqual(ourEmpty.bytes, theirEmpty.bytes)
        XCTAssertEqual(ourEmpty.headers["content-type"], theirEmpty.headers["content-type"])

        let ranges = queries.map { $0.start...$0.end }
        let ourFrames = try decodeFrames(ours.bytes), theirFrames = try decodeFrames(read.bytes)
        let mine = streamedSamples(ourFrames, ranges: ranges), prometheusSamples = streamedSamples(theirFrames, ranges: ranges)
        XCTAssertEqual(mine.keys.sorted(), [0, 2], "no frame for the query matching nothing")
        XCTAssertEqual(mine.keys.sorted(), prometheusSamples.keys.sorted())
        for index in mine.keys.sorted() {
            let a = mine[index] ?? [], b = prometheusSamples[index] ?? []
            XCTAssertEqual(a.map(\.labels), b.map(\.labels), "query \(index): the series, in order")
            for (x, y) in zip(a, b) {
                XCTAssertEqual(x.samples.count, y.samples.count, "\(x.labels)")
                XCTAssertTrue(x.samples.elementsEqual(y.samples) { $0 == $1 }, "\(x.labels): samples differ")
            }
        }
        XCTAssertEqual(mine[0]?.map(\.labels), ["__name__=kubecost_cluster_requests_total,cluster_id=a,node=n1",
                                                "__name__=node_ram_hourly_cost,cluster_id=a,node=n1", "__name__=pv_hourly_cost,cluster_id=a,volume=v"],
                       "the regex and the negative matcher; beta's series is not acme's")
        XCTAssertEqual(mine[2]?.first?.samples.count, 279_999)
        // Tally's chunks hold only the range's samples, at most 120 each, ends as their headers say.
        // A frame passes 1 MiB by what Prometheus' count leaves out (the last chunk, each chunk's
        // tag and length): 1,052,305 bytes in Prometheus' largest when this was written.
        let noisyFrames = ourFrames.filter { $0.queryIndex == 2 }
        XCTAssertGreaterThan(noisyFrames.count, 2)
        for frame in ourFrames {
            XCTAssertLessThanOrEqual(frame.messageBytes, 1_048_576 + 8_192)
            for chunk in frame.chunks {
                let samples = chunk.data.withUnsafeBufferPointer { bytes in
                    var iterator = XORIterator(bytes)
                    return Array(AnyIterator { iterator.next() })
                }
                XCTAssertTrue((1...120).contains(samples.count))
                XCTAssertEqual(samples.first?.timestamp, chunk.minTime)
                XCTAssertEqual(samples.last?.timestamp, chunk.maxTime)
                XCTAssertTrue(ranges[Int(frame.queryIndex)].contains(chunk.minTime) && ranges[Int(frame.queryIndex)].contains(chunk.maxTime))
            }
        }
    }
}
