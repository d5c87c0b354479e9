import Foundation
import TallyLoad
import TallyTestSupport
import TallyWire
import XCTest

/// Remote-Write 2.0 through a real server: a request that protobuf-c encoded stores what the same
/// data sent as 1.0 stores, every answer carries the written counts, and each 2.0 rule is a 400 that
/// stores nothing invalid.
final class RemoteWriteV2Tests: XCTestCase {
    static let v2Type = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    private var storage = ""
    private var server: TallyServerProcess!

    override func setUpWithError() throws {
        storage = try makeTemporaryDirectory("rw2")
        server = try TallyServerProcess(storage: storage)
        try server.waitReady()
    }

    override func tearDown() {
        server.stop(SIGTERM)
        try? FileManager.default.removeItem(atPath: storage)
        try? FileManager.default.removeItem(atPath: storage + ".log")
    }

    private func post(_ body: [UInt8], tenant: String, contentType: String = RemoteWriteV2Tests.v2Type) throws -> LoopbackHTTP.Response {
        try server.client.request("POST", "/api/v1/write", headers: [
            ("Content-Type", contentType), ("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "2.0.0"), ("THANOS-TENANT", tenant)],
            body: SnappyBlock.compress(body))
    }

    private func written(_ response: LoopbackHTTP.Response) -> [String?] {
        ["samples", "histograms", "exemplars"].map { response.headers["x-prometheus-remote-write-\($0)-written"] }
    }

    func testARequestEncodedByProtobufCStoresWhatTheSameDataSentAs10Stores() throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var v1 = WriteRequestEncoder(), v2 = WriteRequestV2Encoder()
        var samples = 0
        for node in 0..<20 {
            let labels = [("__name__", "node_cpu_hourly_cost"), ("cluster_id", "c\(node % 3)"), ("node", "node-\(node)")]
            let points = (0..<30).map { WireSample(timestamp: now - 3_600_000 + Int64($0) * 60_000, valueBits: (0.031 * Double(node + 1)).bitPattern) }
            v1.addSeries(labels: labels, samples: points)
            v2.addSeries(labels: labels, samples: points)
            samples += points.count
        }
        let first = try post(v1.writer.bytes, tenant: "sent-as-1", contentType: "application/x-protobuf")
        XCTAssertEqual(first.status, 204, first.body)
        XCTAssertEqual(written(first), [nil, nil, nil], "1.0 answers carry no 2.0 headers")
        let second = try post(try XCTUnwrap(protobufCRequestV2.repacked(v2.bytes), "protobuf-c reads the request"), tenant: "sent-as-2")
        XCTAssertEqual(second.status, 204, second.body)
        XCTAssertEqual(written(second), [String(samples), "0", "0"])
        // Sent again (a sender's retry): every sample is already stored with the same value, and
        // counts as written, as Prometheus counts it, not as nothing written.
        let again = try post(try XCTUnwrap(protobufCRequestV2.repacked(v2.bytes)), tenant: "sent-as-2")
        XCTAssertEqual(again.status, 204, again.body)
        XCTAssertEqual(written(again), [String(samples), "0", "0"])
        server.stop(SIGTERM)
        let asOne = try tallyDump(storage: storage, tenant: "sent-as-1"), asTwo = try tallyDump(storage: storage, tenant: "sent-as-2")
        XCTAssertEqual(asOne.split(separator: "\n").count, samples)
        XCTAssertEqual(asTwo, asOne)
    }

    /// A 1.0 body sent as 2.0, or a 2.0 body sent as 1.0, reads as an empty request of the other
    /// version (its fields are unknown there): it is refused with a 400 that says so, never
    /// answered 204 with nothing stored.
    func testABodyOfTheOtherVersionIsRefusedNotStoredAsNothing() throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var v1 = WriteRequestEncoder(), v2 = WriteRequestV2Encoder()
        v1.addSeries(labels: [("__name__", "sent_as_the_other_version")], samples: [WireSample(timestamp: now, valueBits: 1.0.bitPattern)])
        v2.addSeries(labels: [("__name__", "sent_as_the_other_version")], samples: [WireSample(timestamp: now, valueBits: 1.0.bitPattern)])
        let oneAsTwo = try post(v1.writer.bytes, tenant: "mixed")
        XCTAssertEqual(oneAsTwo.status, 400, oneAsTwo.body)
        XCTAssertTrue(oneAsTwo.body.contains("io.prometheus.write.v2.Request has field 1, which is reserved"), oneAsTwo.body)
        let twoAsOne = try post(v2.bytes, tenant: "mixed", contentType: "application/x-protobuf")
        XCTAssertEqual(twoAsOne.status, 400, twoAsOne.body)
        XCTAssertTrue(twoAsOne.body.contains("which Remote-Write 2.0 uses (symbols, timeseries) and 1.0 does not"), twoAsOne.body)
        XCTAssertEqual(try post(v2.bytes, tenant: "mixed").status, 204)
        server.stop(SIGTERM)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "mixed").split(separator: "\n").count, 1)
    }

    /// Series known from earlier requests are found again by their symbols, whatever indexes a later
    /// request gives them: requests in another series order, 1.0 and 2.0 mixed, label sets that reuse
    /// known symbols in new combinations or extend a known set all store what 1.0 alone stores.
    func testKnownSeriesInLaterRequestsKeepTheirOwnSamples() throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let known = (0..<10).map { [("__name__", "node_cpu_hourly_cost"), ("cluster_id", "c\($0 % 2)"), ("node", "node-\($0)")] }
        // Known symbols only, in combinations not sent before, and a known set with one label more.
        let recombined = [[("__name__", "node_cpu_hourly_cost"), ("cluster_id", "c1"), ("node", "node-0")],
                          [("__name__", "node_cpu_hourly_cost"), ("cluster_id", "c0"), ("node", "node-0"), ("zone", "a")]]
        let rounds: [(series: [[(String, String)]], asV2: Bool)] = [
            (known, true), (known.reversed(), true), (known, false), (known + recombined, true), (recombined.reversed() + known, true)]
        for (round, (series, asV2)) in rounds.enumerated() {
            var v1 = WriteRequestEncoder(), v2 = WriteRequestV2Encoder()
            for (k, labels) in series.enumerated() {
                let point = [WireSample(timestamp: now - 600_000 + Int64(round) * 60_000, valueBits: Double(round * 100 + k).bitPattern)]
                v1.addSeries(labels: labels, samples: point)
                v2.addSeries(labels: labels, samples: point)
            }
            XCTAssertEqual(try post(v1.writer.bytes, tenant: "as-1", contentType: "application/x-protobuf").status, 204)
            let answer = asV2 ? try post(v2.bytes, tenant: "mixed") : try post(v1.writer.bytes, tenant: "mixed", contentType: "application/x-protobuf")
            XCTAssertEqual(answer.status, 204, "round \(round): \(answer.body)")
        }
        server.stop(SIGTERM)
        let asOne = try tallyDump(storage: storage, tenant: "as-1")
        XCTAssertEqual(asOne.split(separator: "\n").count, 10 * 5 + 2 * 2)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "mixed"), asOne)
    }

    /// Metadata sent with 1.0 and 2.0 is served by `/api/v1/metadata` to its tenant only, as
    /// Prometheus answers it: by metric name, each entry once, `metric` and `limit` applied.
    func testMetadataFromBothVersionsIsServedToItsTenantOnly() throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var v1 = WriteRequestEncoder()
        v1.addMetadata(type: 2, name: "node_ram_hourly_cost", help: "Cost of a GiB of RAM an hour.", unit: "")
        v1.addMetadata(type: 2, name: "node_ram_hourly_cost", help: "Cost of a GiB of RAM an hour.", unit: "")
        v1.addMetadata(type: 1, name: "not valid", help: "", unit: "")
        XCTAssertEqual(try post(v1.writer.bytes, tenant: "a", contentType: "application/x-protobuf").status, 204)
        var v2 = WriteRequestV2Encoder()
        v2.addSeries(labels: [("__name__", "node_cpu_hourly_cost"), ("node", "n1")], samples: [WireSample(timestamp: now, valueBits: 1.0.bitPattern)],
                     metadata: (2, "Cost of a CPU an hour.", "dollars"))
        XCTAssertEqual(try post(v2.bytes, tenant: "a").status, 204)

        func data(_ query: String, tenant: String) throws -> String {
            let answer = try server.client.request("GET", "/api/v1/metadata?" + query, headers: [("THANOS-TENANT", tenant)])
            XCTAssertEqual(answer.status, 200, answer.body)
            return answer.body
        }
        let cpu = #""node_cpu_hourly_cost":[{"type":"gauge","help":"Cost of a CPU an hour.","unit":"dollars"}]"#
        let ram = #""node_ram_hourly_cost":[{"type":"gauge","help":"Cost of a GiB of RAM an hour.","unit":""}]"#
        XCTAssertEqual(try data("", tenant: "a"), #"{"status":"success","data":{"# + cpu + "," + ram + "}}")
        XCTAssertEqual(try data("metric=node_ram_hourly_cost", tenant: "a"), #"{"status":"success","data":{"# + ram + "}}")
        XCTAssertEqual(try data("limit=1", tenant: "a"), #"{"status":"success","data":{"# + cpu + "}}")
        XCTAssertEqual(try data("", tenant: "b"), #"{"status":"success","data":{}}"#, "another tenant sees none of it")
        let refused = try server.client.request("GET", "/api/v1/metadata?limit=x", headers: [("THANOS-TENANT", "a")])
        XCTAssertEqual(refused.status, 400, refused.body)
        XCTAssertTrue(refused.body.contains("limit must be a number"), refused.body)
    }

    /// `X-Prometheus-Remote-Write-Exemplars-Written` counts the exemplars kept (a resent one, a
    /// no-op, counts as Prometheus counts it), not those older than their series' newest nor those of
    /// a refused series; `--max-exemplars` bounds what a tenant holds.
    func testExemplarsWrittenCountsWhatIsKeptAndMaxExemplarsBoundsIt() throws {
        server.stop(SIGTERM)
        server = try TallyServerProcess(storage: storage, extraArguments: ["--max-exemplars", "3"])
        try server.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let symbols = ["", "__name__", "m", "job", "a", "trace_id", "t1", "t2", "b", "zzz"]
        /// A series (label refs) with one sample and exemplars (trace symbol, value, time).
        func series(_ w: inout ProtobufWriter, _ refs: [UInt64], _ exemplars: [(UInt64, Double, Int64)]) {
            w.messageField(5) { s in
                var packed = ProtobufWriter()
                for ref in refs { packed.varint(ref) }
                s.bytesField(1, packed.bytes)
                s.sampleField(2, WireSample(timestamp: now, valueBits: 1.0.bitPattern))
                for (trace, value, t) in exemplars {
                    s.messageField(4) { e in
                        e.bytesField(1, [5, UInt8(trace)])
                        e.fixed64Field(2, value.bitPattern)
                        e.varintField(3, UInt64(t))
                    }
                }
            }
        }
        var first = ProtobufWriter()
        for s in symbols { first.bytesField(4, Array(s.utf8)) }
        // Two kept, one resent (written, a no-op), one older than the newest (not written).
        series(&first, [1, 2, 3, 4], [(6, 1, now - 3000), (7, 2, now - 2000), (7, 2, now - 2000), (6, 1, now - 10_000)])
        // A series refused for its labels (unsorted): its exemplar is not kept.
        series(&first, [3, 4, 1, 2], [(6, 1, now - 3000)])
        let answer = try post(first.bytes, tenant: "ex")
        XCTAssertEqual(answer.status, 400, answer.body)
        XCTAssertEqual(written(answer), ["1", "0", "3"])
        var page = try MetricsPage(of: server)
        XCTAssertEqual(page["tally_exemplars_appended_total{tenant=\"ex\"}"], 2)
        XCTAssertEqual(page["tally_exemplars_out_of_order_total{tenant=\"ex\"}"], 1)
        XCTAssertEqual(page["tally_exemplars_in_storage{tenant=\"ex\"}"], 2)
        var second = ProtobufWriter()
        for s in symbols { second.bytesField(4, Array(s.utf8)) }
        series(&second, [1, 2, 3, 8], [(6, 1, now - 3000), (7, 2, now - 2000)])
        let again = try post(second.bytes, tenant: "ex")
        XCTAssertEqual(again.status, 204, again.body)
        XCTAssertEqual(written(again), ["1", "0", "2"])
        page = try MetricsPage(of: server)
        XCTAssertEqual(page["tally_exemplars_appended_total{tenant=\"ex\"}"], 4)
        XCTAssertEqual(page["tally_exemplars_in_storage{tenant=\"ex\"}"], 3, "--max-exemplars 3")

        // query_exemplars: what the ring holds (a's oldest was overwritten) for the query's selectors.
        func query(_ parameters: String, tenant: String = "ex") throws -> LoopbackHTTP.Response {
            try server.client.request("GET", "/api/v1/query_exemplars?" + parameters, headers: [("THANOS-TENANT", tenant)])
        }
        func seconds(_ t: Int64) -> String { String(format: "%lld.%03lld", t / 1000, t % 1000).replacingOccurrences(of: ".000", with: "") }
        let b = try query("query=rate(m%7Bjob%3D%22b%22%7D%5B5m%5D)&start=0&end=\(now / 1000 + 1)")
        XCTAssertEqual(b.status, 200, b.body)
        XCTAssertEqual(b.body, #"{"status":"success","data":[{"seriesLabels":{"__name__":"m","job":"b"},"exemplars":["#
            + #"{"labels":{"trace_id":"t1"},"value":"1","timestamp":\#(seconds(now - 3000))},"#
            + #"{"labels":{"trace_id":"t2"},"value":"2","timestamp":\#(seconds(now - 2000))}]}]}"#)
        let a = try query("query=m&start=0&end=\(now / 1000 + 1)")
        XCTAssertTrue(a.body.contains(#"{"seriesLabels":{"__name__":"m","job":"a"},"exemplars":[{"labels":{"trace_id":"t2"},"value":"2""#), a.body)
        XCTAssertEqual(try query("query=m", tenant: "other").body, #"{"status":"success","data":[]}"#)
        let noSelector = try query("query=1")
        XCTAssertEqual(noSelector.status, 204, "as Prometheus 2.42 answers a query without selectors")
        XCTAssertEqual(noSelector.body, "")
        let backwards = try query("query=m&start=10&end=5")
        XCTAssertEqual(backwards.status, 400)
        XCTAssertTrue(backwards.body.contains("end timestamp must not be before start timestamp"), backwards.body)

        // An exemplar past --limits.max-future is not kept, as a sample there is not: kept, it
        // would be its series' newest and every later exemplar of the series out of order.
        var third = ProtobufWriter()
        for s in symbols { third.bytesField(4, Array(s.utf8)) }
        series(&third, [1, 2, 3, 9], [(6, 1, .max)])
        XCTAssertEqual(written(try post(third.bytes, tenant: "ex")), ["1", "0", "0"])
        var fourth = ProtobufWriter()
        for s in symbols { fourth.bytesField(4, Array(s.utf8)) }
        series(&fourth, [1, 2, 3, 9], [(7, 2, now - 1000)])
        XCTAssertEqual(written(try post(fourth.bytes, tenant: "ex")), ["1", "0", "1"])
        let zzz = try query("query=m%7Bjob%3D%22zzz%22%7D&start=0&end=\(now / 1000 + 1)")
        XCTAssertTrue(zzz.body.contains(#""exemplars":[{"labels":{"trace_id":"t2"},"value":"2","timestamp":\#(seconds(now - 1000))}]"#), zzz.body)
    }

    /// A request with one valid series and one that breaks a 2.0 label rule: 400 naming the rule, the
    /// valid series stored and counted in the header. Rules that make the request unreadable (a
    /// reference past the table, an odd count, a non-empty first symbol): 400, nothing stored.
    func testEachRuleIs400WithTheWrittenCountAndNothingInvalidStored() throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let sample = WireSample(timestamp: now - 60_000, valueBits: 1.0.bitPattern)
        // An empty or repeated name is out of order too; the answer names what is wrong with it.
        for (rule, labels) in [("unsorted_labels", [("node", "n1"), ("__name__", "unsorted")]),
                               ("empty_label_value", [("__name__", "empty_value"), ("node", "")]),
                               ("empty_label_name", [("__name__", "empty_name"), ("", "x")]),
                               ("duplicate_label_name", [("__name__", "duplicate_name"), ("node", "n1"), ("node", "n2")])] {
            var request = WriteRequestV2Encoder()
            request.addSeries(labels: [("__name__", "kept_\(rule)")], samples: [sample])
            request.addSeries(labels: labels, samples: [sample, WireSample(timestamp: now - 30_000, valueBits: 2.0.bitPattern)])
            let answer = try post(request.bytes, tenant: "rules")
            XCTAssertEqual(answer.status, 400, rule)
            XCTAssertTrue(answer.body.contains("\(rule)=2"), "\(rule): \(answer.body)")
            XCTAssertEqual(written(answer), ["1", "0", "0"], rule)
        }

        func raw(symbols: [String], refs: [UInt64]) -> [UInt8] {
            var w = ProtobufWriter()
            for s in symbols { w.bytesField(4, Array(s.utf8)) }
            w.messageField(5) { series in
                for ref in refs { series.varintField(1, ref) }
                series.sampleField(2, sample)
            }
            return w.bytes
        }
        for (what, body) in [("a reference past the table", raw(symbols: ["", "__name__", "m"], refs: [1, 3])),
                             ("an odd reference count", raw(symbols: ["", "__name__", "m"], refs: [1, 2, 1])),
                             ("a first symbol that is not empty", raw(symbols: ["x", "__name__", "m"], refs: [1, 2])),
                             ("an empty symbols table", raw(symbols: [], refs: [0, 0]))] {
            let answer = try post(body, tenant: "rules")
            XCTAssertEqual(answer.status, 400, "\(what): \(answer.body)")
            XCTAssertTrue(answer.body.contains("invalid protobuf"), "\(what): \(answer.body)")
            XCTAssertEqual(written(answer), ["0", "0", "0"], what)
        }

        var histogram = ProtobufWriter()
        for s in ["", "__name__", "native"] { histogram.bytesField(4, Array(s.utf8)) }
        histogram.messageField(5) { series in
            series.varintField(1, 1)
            series.varintField(1, 2)
            series.messageField(3) { h in
                h.varintField(1, 3)
                h.varintField(6, 3)
                h.varintField(15, UInt64(now - 60_000))
            }
        }
        let histogramStored = try post(histogram.bytes, tenant: "rules")
        XCTAssertEqual(histogramStored.status, 204, histogramStored.body)
        XCTAssertEqual(written(histogramStored), ["0", "1", "0"], "the histogram is counted once durable")
        XCTAssertTrue(try tallyDump(storage: storage, tenant: "rules").contains("{__name__=\"native\"} {count:3, sum:0, [-0,0]:3} \(now - 60_000)\n"))

        // A histogram that breaks a rule (custom buckets here, a bucket count beyond its count next)
        // refuses the whole request: the float series beside it is not stored either.
        for (schema, count, reason) in [(Int32(-53), UInt64(1), "custom buckets not supported"), (0, 0, "1 observations found in buckets, but the Count field is 0")] {
            var invalid = ProtobufWriter()
            for s in ["", "__name__", "native", "not_kept"] { invalid.bytesField(4, Array(s.utf8)) }
            invalid.messageField(5) { series in
                series.bytesField(1, [1, 3])
                series.sampleField(2, WireSample(timestamp: now - 60_000, valueBits: 1.0.bitPattern))
            }
            invalid.messageField(5) { series in
                series.bytesField(1, [1, 2])
                series.messageField(3) { h in
                    h.varintField(1, count)
                    h.varintField(4, UInt64(UInt32(bitPattern: (schema << 1) ^ (schema >> 31))))
                    h.messageField(11) { $0.varintField(2, 1) }
                    h.varintField(12, 2)
                    h.varintField(15, UInt64(now - 60_000))
                }
            }
            let answer = try post(invalid.bytes, tenant: "rules")
            XCTAssertEqual(answer.status, 400)
            XCTAssertTrue(answer.body.contains(reason) && answer.body.contains("nothing stored"), answer.body)
            XCTAssertEqual(written(answer), ["0", "0", "0"])
        }

        XCTAssertEqual(try post(histogram.bytes, tenant: "rules", contentType: "application/x-protobuf;proto=io.prometheus.write.v3.Request").status, 415)
        server.stop(SIGTERM)
        let stored = try tallyDump(storage: storage, tenant: "rules").split(separator: "\n").map(String.init)
        XCTAssertEqual(stored.count, 5, "only the four valid series and the valid histogram: \(stored)")
        XCTAssertTrue(stored.allSatisfy { $0.hasPrefix("{__name__=\"kept_") || $0.hasPrefix("{__name__=\"native\"} {count:3") }, "\(stored)")
    }
}
