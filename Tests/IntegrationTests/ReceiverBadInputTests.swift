import Foundation
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

/// Every rule of the receiver, against a real `tally serve` on loopback: the status, the message,
/// exactly what is stored afterwards, and that nothing is written outside the tenant's directory.
final class ReceiverBadInputTests: XCTestCase {
    private var storage = ""
    private var server: TallyServerProcess!
    /// What tenant t1 must hold: series text form -> (timestamp, value bits).
    private var expected: [String: [Sample]] = [:]

    override func setUpWithError() throws {
        storage = try makeTemporaryDirectory("badinput")
        server = try TallyServerProcess(storage: storage, extraArguments: ["--max-request-bytes", "4096", "--max-decoded-bytes", "8192"])
        try server.waitReady()
    }

    override func tearDown() {
        server.stop(SIGTERM)
        try? FileManager.default.removeItem(atPath: storage)
    }

    private let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
                            ("X-Prometheus-Remote-Write-Version", "0.1.0")]

    private func post(_ body: [UInt8], tenant: String? = "t1", headers extra: [(String, String)] = []) throws -> LoopbackHTTP.Response {
        var headers = protobuf + extra
        if let tenant { headers.append(("THANOS-TENANT", tenant)) }
        return try server.client.request("POST", "/api/v1/write", headers: headers, body: body)
    }

    private func sample(_ t: Int64, _ v: Double) -> WireSample { WireSample(timestamp: t, valueBits: v.bitPattern) }

    /// A request with one valid series (recorded as expected) plus whatever `extra` adds.
    private func request(valid name: String, _ samples: [WireSample], extra: (inout ProtobufWriter) -> Void = { _ in }) -> [UInt8] {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", name), ("job", "ok")], samples: samples)
        expected["{__name__=\"\(name)\", job=\"ok\"}", default: []] += samples.map { Sample(timestamp: $0.timestamp, valueBits: $0.valueBits) }
        var writer = encoder.writer
        extra(&writer)
        return SnappyBlock.compress(writer.bytes)
    }

    private func badSeries(_ labels: [([UInt8], [UInt8])]) -> (inout ProtobufWriter) -> Void {
        { w in
            w.messageField(1) { ts in
                for (n, v) in labels { ts.messageField(1) { $0.bytesField(1, n); $0.bytesField(2, v) } }
                ts.messageField(2) { $0.fixed64Field(1, 1.0.bitPattern); $0.varintField(2, 5000) }
            }
        }
    }

    private func assertStored(file: StaticString = #filePath, line: UInt = #line) throws {
        let db = try TenantDatabase.open(directory: storage + "/t1", tenant: "t1", readOnly: true)
        var actual: [String: [Sample]] = [:]
        for s in try db.select([try LabelMatcher("__name__", .regex, ".+")]) { actual[s.labels.description] = s.samples }
        XCTAssertEqual(actual, expected, file: file, line: line)
        // Nothing but the root lock, the admin token and tenant t1's WAL and read lease exist in the storage root.
        let stray = filesUnder(storage).filter { $0 != ".lock" && $0 != ".admin-token" && $0 != ".server" && $0 != "t1" && $0 != "t1/.read-lease" && $0 != "t1/wal" && !$0.hasPrefix("t1/wal/") }
        XCTAssertEqual(stray, [], "files outside the tenant's WAL", file: file, line: line)
    }

    func testEveryRuleAnswersClearlyAndStoresOnlyValidSamples() throws {
        let name = Array("__name__".utf8)
        let cases: [(String, [UInt8], Int, String)] = [
            ("corrupt snappy", Array("definitely not snappy".utf8), 400, "snappy: corrupt input"),
            ("framed snappy", [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59, 0x00], 400, "framed format"),
            ("invalid protobuf", SnappyBlock.compress([0x0a, 0x05, 0x01]), 400, "invalid protobuf"),
            ("empty label name", request(valid: "v_empty_name", [sample(1000, 1)], extra: badSeries([(name, Array("x".utf8)), ([], Array("v".utf8))])),
             400, "stored 1 of 2 samples; rejected 1: empty_label_name=1"),
            ("duplicate label names", request(valid: "v_dup_name", [sample(1000, 1)], extra: badSeries([(name, Array("x".utf8)), (Array("a".utf8), Array("1".utf8)), (Array("a".utf8), Array("2".utf8))])),
             400, "duplicate_label_name=1"),
            ("invalid UTF-8", request(valid: "v_utf8", [sample(1000, 1)], extra: badSeries([(name, [0xff, 0xfe])])), 400, "invalid_utf8=1"),
            ("no __name__", request(valid: "v_noname", [sample(1000, 1)], extra: badSeries([(Array("job".utf8), Array("x".utf8))])), 400, "missing_metric_name=1"),
        ]
        for (what, body, status, message) in cases {
            let response = try post(body)
            XCTAssertEqual(response.status, status, what)
            XCTAssertTrue(response.body.contains(message), "\(what): \(response.body)")
            // Sent again: refused again (a refused label set is never remembered as a known series).
            let again = try post(body)
            XCTAssertEqual(again.status, status, what)
            XCTAssertTrue(again.body.contains(String(message.split(separator: " ").last!)), "\(what), again: \(again.body)")
        }
        try assertStored()

        // Same timestamp, different value: refused; the other samples of the request are kept.
        XCTAssertEqual(try post(request(valid: "v_conflict", [sample(1000, 1), sample(2000, 2)])).status, 204)
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "v_conflict"), ("job", "ok")], samples: [sample(2000, 3), sample(3000, 4)])
        expected["{__name__=\"v_conflict\", job=\"ok\"}"]!.append(Sample(timestamp: 3000, valueBits: 4.0.bitPattern))
        var response = try post(encoder.compressed())
        XCTAssertEqual(response.status, 400)
        XCTAssertTrue(response.body.contains("duplicate_timestamp_different_value=1"), response.body)

        // Late: inside the out-of-order window (24h) accepted and stored; older than it, 400 too_old.
        encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "v_conflict"), ("job", "ok")], samples: [sample(1500, 9), sample(3000 - 25 * 3_600_000, 9)])
        expected["{__name__=\"v_conflict\", job=\"ok\"}"]!.insert(Sample(timestamp: 1500, valueBits: 9.0.bitPattern), at: 1)
        response = try post(encoder.compressed())
        XCTAssertEqual(response.status, 400)
        XCTAssertTrue(response.body.contains("stored 1 of 2 samples; rejected 1: too_old=1"), response.body)

        // An exact resend of stored samples, old and late ones included, is accepted silently.
        encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("job", "ok"), ("__name__", "v_conflict")], samples: [sample(1000, 1), sample(1500, 9), sample(2000, 2), sample(3000, 4)])
        XCTAssertEqual(try post(encoder.compressed()).status, 204)

        // Unsorted labels are sorted; empty values dropped; staleness markers kept bit-exact.
        encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("zone", "b"), ("empty", ""), ("__name__", "v_norm")],
                          samples: [sample(1000, 1), WireSample(timestamp: 2000, valueBits: 0x7ff0_0000_0000_0002)])
        expected["{__name__=\"v_norm\", zone=\"b\"}"] = [Sample(timestamp: 1000, valueBits: 1.0.bitPattern),
                                                          Sample(timestamp: 2000, valueBits: 0x7ff0_0000_0000_0002)]
        XCTAssertEqual(try post(encoder.compressed()).status, 204)
        try assertStored()
    }

    /// A native histogram that breaks one of Prometheus' rules refuses the whole request: 400 naming
    /// the rule, and nothing of it stored, the valid float series beside it included.
    func testAnInvalidNativeHistogramRefusesTheWholeRequest() throws {
        XCTAssertEqual(try post(request(valid: "v_before", [sample(1000, 1)])).status, 204)
        /// A 1.0 histogram message: count_int, sum, schema (sint32), zero_count_int, positive spans
        /// (offset, length) and deltas (sint64), timestamp.
        func histogram(count: UInt64, sum: Double = 1, schema: Int32 = 0, spans: [(Int32, UInt64)], deltas: [Int64]) -> (inout ProtobufWriter) -> Void {
            { w in
                w.messageField(1) { ts in
                    ts.messageField(1) { $0.bytesField(1, Array("__name__".utf8)); $0.bytesField(2, Array("native".utf8)) }
                    ts.messageField(4) { h in
                        h.varintField(1, count)
                        h.fixed64Field(3, sum.bitPattern)
                        h.varintField(4, UInt64(UInt32(bitPattern: (schema << 1) ^ (schema >> 31))))
                        for (offset, length) in spans {
                            h.messageField(11) { $0.varintField(1, UInt64(UInt32(bitPattern: (offset << 1) ^ (offset >> 31)))); $0.varintField(2, length) }
                        }
                        for d in deltas { h.varintField(12, UInt64(bitPattern: (d << 1) ^ (d >> 63))) }
                        h.varintField(15, 5000)
                    }
                }
            }
        }
        let cases: [(String, (inout ProtobufWriter) -> Void, String)] = [
            ("spans and buckets differ", histogram(count: 3, spans: [(0, 2)], deltas: [3]), "positive side: spans need 2 buckets, have 1 buckets"),
            ("a negative offset past the first span", histogram(count: 2, spans: [(0, 1), (-2, 1)], deltas: [1, 0]), "span number 2 with offset -2"),
            ("schema 9", histogram(count: 1, schema: 9, spans: [(0, 1)], deltas: [1]), "invalid schema"),
            ("custom buckets", histogram(count: 1, schema: -53, spans: [(0, 1)], deltas: [1]), "custom buckets not supported"),
            ("a negative bucket", histogram(count: 1, spans: [(0, 2)], deltas: [2, -3]), "bucket number 2 has observation count of -1"),
            ("a count below its buckets", histogram(count: 2, spans: [(0, 2)], deltas: [2, 0]), "4 observations found in buckets, but the Count field is 2"),
            ("a count above its buckets, sum not NaN", histogram(count: 5, spans: [(0, 1)], deltas: [4]), "should equal the number of observations"),
            ("bucket deltas past int64", histogram(count: 1, spans: [(0, 2)], deltas: [.max, 1]), "overflows int64"),
        ]
        for (what, extra, reason) in cases {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "v_beside_histogram"), ("job", "ok")], samples: [sample(2000, 1)])
            var writer = encoder.writer
            extra(&writer)
            let response = try post(SnappyBlock.compress(writer.bytes))
            XCTAssertEqual(response.status, 400, what)
            XCTAssertTrue(response.body.contains(reason) && response.body.contains("nothing stored"), "\(what): \(response.body)")
        }
        XCTAssertEqual(try MetricsPage(of: server)["tally_write_requests_rejected_total{reason=\"invalid_histogram\"}"], Double(cases.count))
        // The same series with a valid histogram: both are stored.
        let valid = request(valid: "v_beside_valid", [sample(2000, 1)], extra: histogram(count: 4, spans: [(0, 2)], deltas: [2, 0]))
        let response = try post(valid)
        XCTAssertEqual(response.status, 204, response.body)
        try assertStored()
    }

    func testTransportLevelRefusals() throws {
        XCTAssertEqual(try post(request(valid: "v_base", [sample(1000, 1)])).status, 204)
        // A valid write, not recorded as expected: the cases that send it must store nothing.
        let unrecorded = { () -> [UInt8] in
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "refused_write"), ("job", "ok")], samples: [sample(2000, 1)])
            return encoder.compressed()
        }()
        let cases: [(String, () throws -> LoopbackHTTP.Response, Int, String)] = [
            ("body over --max-request-bytes", { try self.post([UInt8](repeating: 7, count: 5000)) }, 413, "over the limit of 4096"),
            ("decoded over --max-decoded-bytes", {
                var e = WriteRequestEncoder()
                e.addSeries(labels: [("__name__", String(repeating: "a", count: 9000))], samples: [self.sample(1, 1)])
                return try self.post(e.compressed())
            }, 413, "over the limit of 8192"),
            ("a remote-write message other than 1.0 and 2.0", { try self.server.client.request("POST", "/api/v1/write", headers: [
                ("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v3.Request"), ("Content-Encoding", "snappy")], body: [0]) },
             415, "io.prometheus.write.v3.Request"),
            ("gzip encoding", { try self.server.client.request("POST", "/api/v1/write", headers: [("Content-Encoding", "gzip")], body: [0]) }, 415, "Content-Encoding"),
            // A header sent twice with different values names no one coding or type; the first alone must not win.
            ("snappy, then gzip", { try self.server.client.request("POST", "/api/v1/write", headers: [
                ("Content-Encoding", "snappy"), ("Content-Encoding", "gzip"), ("THANOS-TENANT", "t1")], body: unrecorded) }, 415, "Content-Encoding"),
            ("two content types", { try self.server.client.request("POST", "/api/v1/write", headers: [
                ("Content-Type", "application/x-protobuf"), ("Content-Type", "text/plain"), ("Content-Encoding", "snappy"), ("THANOS-TENANT", "t1")],
                body: unrecorded) }, 415, "Content-Type"),
            ("GET", { try self.server.client.request("GET", "/api/v1/write") }, 405, "POST"),
            ("PUT", { try self.server.client.request("PUT", "/api/v1/write", body: [1]) }, 405, "POST"),
        ]
        for (what, send, status, message) in cases {
            let response = try send()
            XCTAssertEqual(response.status, status, what)
            XCTAssertTrue(response.body.contains(message), "\(what): \(response.body)")
        }
        try assertStored()
    }

    /// An answer that closes the connection (a 413 here) ends it: a write pipelined behind it is
    /// neither answered nor stored (it was stored, and its sender, never answered, would retry it).
    func testAWritePipelinedBehindAClosingAnswerIsNotRun() throws {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "pipelined"), ("job", "ok")], samples: [sample(1_000, 1)])
        let headers = protobuf + [("THANOS-TENANT", "t1")]
        let oversized = LoopbackHTTP.requestBytes("POST", "/api/v1/write", headers: headers, body: [UInt8](repeating: 0, count: 5000), keepAlive: true)
        let behind = LoopbackHTTP.requestBytes("POST", "/api/v1/write", headers: headers, body: encoder.compressed(), keepAlive: true)
        let fd = try server.client.connect()
        defer { close(fd) }
        try LoopbackHTTP.sendAll(fd, oversized + behind)
        var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65_536)
        // Until the server closes (a reset with the bytes it left unread is a close too).
        for _ in 0..<1000 where (try? LoopbackHTTP.receive(fd, into: &received, buffer: &buffer)) == true {}
        let answers = String(decoding: received, as: UTF8.self).components(separatedBy: "HTTP/1.1 ").dropFirst()
        XCTAssertLessThanOrEqual(answers.count, 1, String(decoding: received, as: UTF8.self))
        if let first = answers.first { XCTAssertTrue(first.hasPrefix("413"), first) }
        let series = try server.client.request("GET", "/api/v1/series?match[]=pipelined&start=0&end=10", headers: [("THANOS-TENANT", "t1")])
        XCTAssertEqual(series.body, #"{"status":"success","data":[]}"#)
    }

    /// A body declared over `--max-request-bytes` is refused as soon as its head arrives: a client
    /// that waits for `100 Continue` (curl, past 1 MiB), or that declared more than it sends, gets
    /// 413 at once, not 408 after the read timeout. Nothing is stored.
    func testADeclaredBodyOverTheLimitIs413AtOnce() throws {
        let headers = protobuf + [("THANOS-TENANT", "t1")]
        for (what, expect, sent) in [("waiting for 100 Continue", true, 0), ("sending less than declared", false, 100)] {
            var bytes = LoopbackHTTP.requestBytes("POST", "/api/v1/write", headers: headers + (expect ? [("Expect", "100-continue")] : []),
                                                  body: [UInt8](repeating: 0, count: 5000), keepAlive: true)
            bytes.removeLast(5000 - sent)
            let fd = try server.client.connect()
            defer { close(fd) }
            try LoopbackHTTP.sendAll(fd, bytes)
            let asked = Date()
            var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65_536)
            for _ in 0..<1000 where (try? LoopbackHTTP.receive(fd, into: &received, buffer: &buffer)) == true {}
            let answer = String(decoding: received, as: UTF8.self)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413"), "\(what): \(answer)")
            XCTAssertTrue(answer.contains("over the limit of 4096"), "\(what): \(answer)")
            XCTAssertLessThan(Date().timeIntervalSince(asked), 10, "\(what): answered after the body's wait, not at its head")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/t1"), "nothing stored, no tenant made")
    }

    /// An HTTP/1.1 request without exactly one Host header is 400, as Go's server answers it.
    func testAnHTTP11RequestWithoutOneHostIs400() throws {
        for (hosts, message) in [("", "missing required Host header"), ("Host: a\r\nHost: b\r\n", "too many Host headers")] {
            let fd = try server.client.connect()
            defer { close(fd) }
            try LoopbackHTTP.sendAll(fd, Array("GET /-/healthy HTTP/1.1\r\n\(hosts)Connection: close\r\n\r\n".utf8))
            var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65_536)
            for _ in 0..<1000 where (try? LoopbackHTTP.receive(fd, into: &received, buffer: &buffer)) == true {}
            let answer = String(decoding: received, as: UTF8.self)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400"), answer)
            XCTAssertTrue(answer.contains(message), answer)
        }
        XCTAssertEqual(try server.client.request("GET", "/-/healthy").status, 200)
    }

    /// A body sent with a transfer coding other than chunked is refused (501, RFC 9112), not read as
    /// if it were not coded.
    func testAnUnknownTransferCodingIs501AndStoresNothing() throws {
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "transfer_coded"), ("job", "ok")], samples: [sample(1_000, 1)])
        let body = encoder.compressed()
        let head = "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Type: application/x-protobuf\r\n"
            + "Content-Encoding: snappy\r\nTHANOS-TENANT: t1\r\nConnection: close\r\n\r\n" + String(body.count, radix: 16) + "\r\n"
        let fd = try server.client.connect()
        defer { close(fd) }
        try LoopbackHTTP.sendAll(fd, Array(head.utf8) + body + Array("\r\n0\r\n\r\n".utf8))
        var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<1000 where (try? LoopbackHTTP.receive(fd, into: &received, buffer: &buffer)) == true {}
        let answer = String(decoding: received, as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 501"), answer)
        XCTAssertTrue(answer.contains("unsupported Transfer-Encoding gzip"), answer)
        let series = try server.client.request("GET", "/api/v1/series?match[]=transfer_coded&start=0&end=10", headers: [("THANOS-TENANT", "t1")])
        XCTAssertEqual(series.body, #"{"status":"success","data":[]}"#)
    }

    /// A refused write stores nothing, so it makes nothing either: no tenant (which would use up
    /// `--limits.max-tenants` and leave a directory) and no head series (which would count against
    /// `--limits.max-series-per-tenant` until a restart).
    func testRefusedWritesMakeNoTenantAndNoSeries() throws {
        let root = try makeTemporaryDirectory("refused")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let limited = try TallyServerProcess(storage: root + "/storage", extraArguments: ["--limits.max-tenants", "2", "--limits.max-series-per-tenant", "3"])
        defer { limited.stop(SIGTERM) }
        try limited.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func write(_ series: [[(String, String)]], at t: Int64, tenant: String) throws -> LoopbackHTTP.Response {
            var encoder = WriteRequestEncoder()
            for labels in series { encoder.addSeries(labels: labels, samples: [sample(t, 1)]) }
            return try limited.client.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", tenant)], body: encoder.compressed())
        }
        let badLabel = try write([[("__name__", "m"), ("bad label", "x")]], at: now, tenant: "junk-a")
        XCTAssertEqual(badLabel.status, 400, badLabel.body)
        XCTAssertTrue(badLabel.body.contains("invalid_label_name"), badLabel.body)
        let future = try write([[("__name__", "m")]], at: now + 3_600_000, tenant: "junk-b")
        XCTAssertEqual(future.status, 400, future.body)
        XCTAssertTrue(future.body.contains("timestamp_out_of_bounds"), future.body)
        XCTAssertEqual(try write([], at: now, tenant: "junk-c").status, 204, "an empty request stores nothing and is no error")
        // A time no series can hold (before -2^53 ms), with no --limits.max-past to refuse it first.
        let unstorable = try write([[("__name__", "m")]], at: .min, tenant: "junk-d")
        XCTAssertEqual(unstorable.status, 400, unstorable.body)
        XCTAssertTrue(unstorable.body.contains("timestamp_out_of_bounds"), unstorable.body)
        // Metadata alone: kept (in memory), but no tenant is made for it.
        var metadataOnly = WriteRequestEncoder()
        metadataOnly.addMetadata(type: 1, name: "m_total", help: "help text", unit: "")
        XCTAssertEqual(try limited.client.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", "junk-e")],
                                                  body: metadataOnly.compressed()).status, 204)
        let metadata = try limited.client.request("GET", "/api/v1/metadata", headers: [("THANOS-TENANT", "junk-e")])
        XCTAssertTrue(metadata.body.contains("help text"), metadata.body)
        for tenant in ["junk-a", "junk-b", "junk-c", "junk-d", "junk-e"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/storage/" + tenant), tenant)
        }
        // Both tenant slots are still free.
        XCTAssertEqual(try write([[("__name__", "m")]], at: now, tenant: "real-a").status, 204)
        XCTAssertEqual(try write([[("__name__", "m")]], at: now, tenant: "real-b").status, 204)

        // New series whose only samples are refused: none made, so two more real ones still fit.
        for (k, t) in [now + 3_600_000, .min, -(Int64(1) << 53) - 1].enumerated() {
            let refused = try write([[("__name__", "m"), ("k", String(k))]], at: t, tenant: "real-a")
            XCTAssertEqual(refused.status, 400, refused.body)
        }
        let more = try write([[("__name__", "m"), ("k", "a")], [("__name__", "m"), ("k", "b")]], at: now, tenant: "real-a")
        XCTAssertEqual(more.status, 204, more.body)
        let full = try write([[("__name__", "m"), ("k", "c")]], at: now, tenant: "real-a")
        XCTAssertEqual(full.status, 400, full.body)
        XCTAssertTrue(full.body.contains("max_series_per_tenant"), full.body)
    }

    func testTenantNamesNeverEscapeTheirDirectory() throws {
        try Data().write(to: URL(fileURLWithPath: storage + "/notadir"))
        let before = filesUnder(storage)
        let body = { () -> [UInt8] in
            var e = WriteRequestEncoder()
            e.addSeries(labels: [("__name__", "m")], samples: [self.sample(1, 1)])
            return e.compressed()
        }()
        for tenant in ["../escape", "a/b", ".hidden", "..", "-lead", String(repeating: "x", count: 129), "sp ace", "ünï"] {
            let response = try post(body, tenant: tenant)
            XCTAssertEqual(response.status, 400, tenant)
            XCTAssertTrue(response.body.contains("invalid tenant"), "\(tenant): \(response.body)")
        }
        let reserved = try post(body, tenant: "notadir")
        XCTAssertEqual(reserved.status, 400)
        XCTAssertTrue(reserved.body.contains("not a tenant"), reserved.body)
        XCTAssertEqual(filesUnder(storage), before, "a refused tenant must create nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/../escape"))

        // X-Scope-OrgID names the tenant too; no header means default-tenant.
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: protobuf + [("X-Scope-OrgID", "org-2")], body: body).status, 204)
        XCTAssertEqual(try post(body, tenant: nil).status, 204)
        XCTAssertTrue(server.log.contains("a write named no tenant"), "the default tenant is used, and the log says so")
        // ?tenant= serves senders that cannot set headers; it must agree with a header if both come.
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write?tenant=url-3", headers: protobuf, body: body).status, 204)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write?tenant=url-3", headers: protobuf + [("THANOS-TENANT", "url-3")], body: body).status, 204)
        let disagree = try server.client.request("POST", "/api/v1/write?tenant=other", headers: protobuf + [("THANOS-TENANT", "url-3")], body: body)
        XCTAssertEqual(disagree.status, 400)
        XCTAssertTrue(disagree.body.contains("disagree"), disagree.body)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write?tenant=%2e%2e", headers: protobuf, body: body).status, 400)
        // The parameter is read percent-decoded, as on reads and by any proxy in front: an escaped
        // name or value is the same parameter, and bytes that are not UTF-8 are no tenant.
        let escapedName = try server.client.request("POST", "/api/v1/write?ten%61nt=other", headers: protobuf + [("THANOS-TENANT", "url-3")], body: body)
        XCTAssertEqual(escapedName.status, 400, escapedName.body)
        XCTAssertTrue(escapedName.body.contains("disagree"), escapedName.body)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write?tenant=url%2D3", headers: protobuf + [("THANOS-TENANT", "url-3")], body: body).status, 204)
        // White space around a header's value is not part of it, after the value as before it.
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", "url-3 \t")], body: body).status, 204)
        // A pair Go's parser leaves out (a `;`, a broken escape) may be the tenant: refused, never
        // taken for absent (which would write to the default tenant).
        for query in ["tenant=url-4;x=1", "x=1;tenant=url-4", "tenant=url-4%zz", "%74enant=url-4%zz"] {
            let unreadable = try server.client.request("POST", "/api/v1/write?" + query, headers: protobuf, body: body)
            XCTAssertEqual(unreadable.status, 400, query)
            XCTAssertTrue(unreadable.body.contains("tenant parameter unreadable"), "\(query): \(unreadable.body)")
        }
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write?tenant=url-3&x=1;y=2", headers: protobuf, body: body).status, 204,
                       "a pair that cannot name the tenant leaves it readable")
        let notUTF8 = try server.client.request("POST", "/api/v1/write?tenant=url-3%ff", headers: protobuf, body: body)
        XCTAssertEqual(notUTF8.status, 400, notUTF8.body)
        XCTAssertTrue(notUTF8.body.contains("invalid tenant"), notUTF8.body)
        let tenants = try FileManager.default.contentsOfDirectory(atPath: storage).filter { !$0.hasPrefix(".") && $0 != "notadir" }.sorted()
        XCTAssertEqual(tenants, ["default-tenant", "org-2", "url-3"])
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "org-2"), "{__name__=\"m\"} 1 1\n")
        for tenant in tenants {
            XCTAssertTrue(filesUnder(storage + "/" + tenant).allSatisfy { $0 == ".read-lease" || $0 == "wal" || $0.hasPrefix("wal/") }, tenant)
        }
    }
}
