import Foundation
import TallyLoad
import TallyStorage
import TallyTestSupport
import TallyWire
import XCTest

/// Float native histograms (`count_float`, `zero_count_float`, `positive_counts`), as Remote-Write
/// 2.0 senders and recording rules send them, through a real server: counted as written, cut into
/// blocks (float-histogram chunks, encoding 3), surviving SIGKILL and a restart, read back equal
/// through `tally dump`.
final class FloatHistogramRemoteWriteTests: XCTestCase {
    /// The k-th histogram: schema 0, zero threshold 0.001, zero bucket 0.5, buckets (0.5,1] k and
    /// (1,2] 2, count k + 2.5, sum 1.25 k.
    private func histogram(_ k: Int, at t: Int64, _ h: inout ProtobufWriter) {
        h.fixed64Field(2, (Double(k) + 2.5).bitPattern)
        h.fixed64Field(3, (1.25 * Double(k)).bitPattern)
        h.fixed64Field(5, (0.001).bitPattern)
        h.fixed64Field(7, (0.5).bitPattern)
        h.messageField(11) { span in span.varintField(2, 2) }
        // Packed, as Go's protobuf writes repeated doubles.
        h.bytesField(13, [Double(k), 2].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        h.varintField(15, UInt64(t))
    }

    /// Go's `%g` for the values used here (integers and short decimals).
    private func g(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }

    func testFloatHistogramsSurviveCrashRestartAndBlockCut() throws {
        let storage = try makeTemporaryDirectory("float-histograms")
        defer {
            try? FileManager.default.removeItem(atPath: storage)
            try? FileManager.default.removeItem(atPath: storage + ".log")
        }
        // One-minute blocks: a cut is owed once the head spans 90 s; the histograms span 8 minutes.
        let arguments = ["--block-range", "1m"]
        var server = try TallyServerProcess(storage: storage, extraArguments: arguments)
        try server.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000) / 1000 * 1000
        let times = (0..<17).map { now - 480_000 + Int64($0) * 30_000 }
        var body = ProtobufWriter()
        for s in ["", "__name__", "recorded_latency", "rule", "float"] { body.bytesField(4, Array(s.utf8)) }
        body.messageField(5) { series in
            series.bytesField(1, [1, 2, 3, 4])
            for (k, t) in times.enumerated() { series.messageField(3) { histogram(k + 1, at: t, &$0) } }
        }
        let answer = try server.client.request("POST", "/api/v1/write", headers: [
            ("Content-Type", RemoteWriteV2Tests.v2Type), ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "2.0.0"), ("THANOS-TENANT", "f")], body: SnappyBlock.compress(body.bytes))
        XCTAssertEqual(answer.status, 204, answer.body)
        XCTAssertEqual(["samples", "histograms", "exemplars"].map { answer.headers["x-prometheus-remote-write-\($0)-written"] }, ["0", "17", "0"])

        let labels = "{__name__=\"recorded_latency\", rule=\"float\"}"
        let expected = times.enumerated().map { k, t in
            "\(labels) {count:\(g(Double(k + 1) + 2.5)), sum:\(g(1.25 * Double(k + 1))), [-0.001,0.001]:0.5, (0.5,1]:\(k + 1), (1,2]:2} \(t)"
        }
        // Blocks are cut in the background; wait for them (bounded).
        var blocks: [String] = []
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && blocks.isEmpty {
            usleep(200_000)
            blocks = ((try? FileManager.default.contentsOfDirectory(atPath: storage + "/f")) ?? []).filter { $0.count == 26 }
        }
        XCTAssertFalse(blocks.isEmpty, "no block was cut; log:\n\(server.log.suffix(3000))")

        // SIGKILL: the WAL (FloatHistogramSamples records, a checkpoint) and blocks hold them all.
        server.stop(SIGKILL)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "f").split(separator: "\n").map(String.init), expected)
        server = try TallyServerProcess(storage: storage, extraArguments: arguments)
        try server.waitReady()
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "f").split(separator: "\n").map(String.init), expected)
        let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "f"])
        XCTAssertEqual(verify.status, 0, "\(verify.stdout) \(verify.stderr)")
    }

    /// A real Prometheus 2.42 writes float histograms itself: a recording rule's `sum` of a native
    /// histogram is a float histogram (hint gauge), which it sends by remote write and keeps in
    /// float-histogram chunks. Tally stores what it sends, and every chunk of Prometheus' own
    /// snapshot block decodes and is re-encoded by Tally's writer to the same bytes.
    func testRealPrometheusRecordingRuleFloatHistogramsMatchItsOwnChunks() throws {
        _ = try Binaries.debian("prometheus")
        let root = try makeTemporaryDirectory("float-histograms-prometheus")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        let tally = try TallyServerProcess(storage: storage)
        try tally.waitReady()
        defer { tally.stop(SIGTERM) }
        let now = Int64(Date().timeIntervalSince1970 * 1000) / 1000 * 1000
        let exporter = try HistogramExporter(start: now - 2_000, step: 1_000, scrapes: 600)
        defer { exporter.stop() }
        try """
            groups:
              - name: float
                interval: 1s
                rules:
                  - record: job:test_latency_seconds:sum
                    expr: sum by (job) (test_latency_seconds)
            """.write(toFile: root + "/rules.yml", atomically: true, encoding: .utf8)
        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in
            """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: ['rules.yml']
            scrape_configs:
              - job_name: hist
                static_configs:
                  - targets: ['127.0.0.1:\(exporter.port)']
            remote_write:
              - url: http://127.0.0.1:\(tally.port)/api/v1/write?tenant=r
                send_native_histograms: true
                queue_config:
                  batch_send_deadline: 1s
                  min_backoff: 50ms
            """
        }, arguments: ["--storage.tsdb.path=\(root)/prometheus-data", "--enable-feature=native-histograms", "--web.enable-admin-api"])
        defer { prometheus.stop() }
        try prometheus.waitReady()

        let match = "{__name__=\"job:test_latency_seconds:sum\"}"
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline && lines.count < 15 {
            sleep(1)
            lines = ((try? tallyDump(storage: storage, tenant: "r", match: match)) ?? "").split(separator: "\n").map(String.init)
        }
        XCTAssertGreaterThanOrEqual(lines.count, 15, "Prometheus log tail:\n\(prometheus.logTail)\nTally log:\n\(tally.log.suffix(3000))")

        // Prometheus' own chunks, from a snapshot of its head.
        let snapshot = try prometheus.client(timeoutSeconds: 30).request("POST", "/api/v1/admin/tsdb/snapshot")
        XCTAssertEqual(snapshot.status, 200, snapshot.body)
        let name = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(snapshot.body.utf8)) as? [String: Any])?["data"] as? [String: Any])?["name"] as? String)
        let snapshotDirectory = root + "/prometheus-data/snapshots/" + name
        var checked = 0, longest = 0, histograms: [String: String] = [:]
        for block in try FileManager.default.contentsOfDirectory(atPath: snapshotDirectory) where block.count == 26 {
            let reader = try BlockReader(directory: snapshotDirectory + "/" + block)
            for ref in reader.seriesRefs {
                let (labels, chunks) = try reader.series(ref)
                guard labels.contains(where: { $0 == ("__name__", "job:test_latency_seconds:sum") }) else { continue }
                for meta in chunks {
                    let chunk = try reader.chunk(meta.ref)
                    XCTAssertEqual(chunk.encoding, FloatHistogramChunk.encoding)
                    var it = FloatHistogramIterator(chunk.bytes)
                    // The header as Prometheus 2.42 wrote it (unknown: its float appender sets none).
                    var again = FloatHistogramChunk(header: it.header)
                    var fits = true
                    while let (t, h) = it.next() {
                        fits = fits && again.fits(h)
                        if fits { again.append(timestamp: t, h) }
                        histograms[String(t)] = HistogramValue.float(h).promtoolText
                    }
                    XCTAssertFalse(it.failed)
                    // Prometheus recodes a chunk whose buckets change; a chunk of one layout is byte-exact.
                    if fits {
                        XCTAssertEqual(again.bytes, Array(chunk.bytes), "chunk at \(meta.minTime)")
                        checked += 1
                        longest = max(longest, again.count)
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 0, "no float-histogram chunk in the snapshot")
        XCTAssertGreaterThanOrEqual(longest, 10, "a chunk of many histograms, so later ones are XOR-coded")
        // What Tally stored is what Prometheus recorded, time by time.
        for line in lines {
            let t = String(line.split(separator: " ").last ?? "")
            guard let recorded = histograms[t] else { continue }
            XCTAssertTrue(line.hasSuffix(" " + recorded + " " + t), "\(line) vs \(recorded)")
        }
        XCTAssertTrue(lines.contains { histograms[String($0.split(separator: " ").last ?? "")] != nil }, "no time in common")
    }
}
