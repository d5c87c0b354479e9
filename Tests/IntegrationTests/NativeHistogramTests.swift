import Foundation
import TallyLoad
import XCTest

/// Native histograms from a real Prometheus 2.42 (`--enable-feature=native-histograms`, remote write
/// with `send_native_histograms`), scraping a loopback exporter that serves one in the protobuf
/// exposition format: they arrive, are cut into blocks (encoding 2), survive SIGKILL and a restart,
/// and read back equal to what the exporter served, through `tally dump` and through Prometheus
/// 2.42 itself reading the tenant directory as its own TSDB; the metadata it sends is what its own
/// `/api/v1/metadata` answers.
final class NativeHistogramTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("prometheus")
        _ = try Binaries.debian("promtool")
    }

    func testRealPrometheusSendsNativeHistogramsThatSurviveCrashAndBlockCut() throws {
        let root = try makeTemporaryDirectory("native-histograms")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        // One-minute blocks: a cut is owed once the head spans 90 s. The exporter's histograms are
        // 20 s apart with explicit times from a minute ahead (Prometheus' remote write sends nothing
        // older than its own start), so 24 scrapes end 8.7 minutes ahead, within Tally's 10 minutes
        // of allowed future, and several blocks are cut while they arrive.
        let tallyArguments = ["--block-range", "1m"]
        var tally = try TallyServerProcess(storage: storage, extraArguments: tallyArguments)
        try tally.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000) / 1000 * 1000
        let exporter = try HistogramExporter(start: now + 60_000, step: 20_000, scrapes: 24)
        defer { exporter.stop() }
        let prometheus = try PrometheusProcess(directory: root, configuration: { _ in
            """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: hist
                static_configs:
                  - targets: ['127.0.0.1:\(exporter.port)']
            remote_write:
              - url: http://127.0.0.1:\(tally.port)/api/v1/write?tenant=h
                send_native_histograms: true
                metadata_config:
                  send_interval: 1s
                queue_config:
                  batch_send_deadline: 1s
                  min_backoff: 50ms
            """
        }, arguments: ["--storage.tsdb.path=\(root)/prometheus-data", "--enable-feature=native-histograms"])

        let labels = "{__name__=\"test_latency_seconds\", instance=\"127.0.0.1:\(exporter.port)\", job=\"hist\"}"
        let expected = (0..<exporter.scrapes).map { exporter.dumpLine($0, labels: labels) }
        let match = "{__name__=\"test_latency_seconds\"}"
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline && lines.count < expected.count {
            sleep(1)
            lines = ((try? tallyDump(storage: storage, tenant: "h", match: match)) ?? "").split(separator: "\n").map(String.init)
        }
        XCTAssertEqual(lines, expected, "served \(exporter.served) scrapes; Prometheus log tail:\n\(prometheus.logTail)\nTally log:\n\(tally.log.suffix(3000))")

        // The metadata Prometheus sends with remote write (every second here) is what its own
        // /api/v1/metadata answers from its scrape.
        func metadata(_ client: LoopbackHTTP, _ path: String) -> NSDictionary? {
            guard let answer = try? client.request("GET", path), answer.status == 200,
                  let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] else { return nil }
            return json["data"] as? NSDictionary
        }
        let prometheusMetadata = try XCTUnwrap(metadata(LoopbackHTTP(port: prometheus.port), "/api/v1/metadata"))
        XCTAssertEqual(prometheusMetadata["test_latency_seconds"] as? NSArray,
                       [["type": "histogram", "help": "A native histogram for Tally's tests.", "unit": ""]] as NSArray)
        var tallyMetadata: NSDictionary?
        for _ in 0..<30 where tallyMetadata != prometheusMetadata {
            tallyMetadata = metadata(tally.client, "/api/v1/metadata?tenant=h")
            if tallyMetadata != prometheusMetadata { sleep(1) }
        }
        XCTAssertEqual(tallyMetadata, prometheusMetadata)
        prometheus.stop()

        // Blocks were cut while the histograms arrived; their chunks are histogram chunks.
        let blocks = try FileManager.default.contentsOfDirectory(atPath: storage + "/h").filter { $0.count == 26 }
        XCTAssertGreaterThanOrEqual(blocks.count, 3, "blocks: \(blocks); log:\n\(tally.log.suffix(3000))")

        // SIGKILL and restart: the WAL (HistogramSamples records, checkpoints) and blocks hold them all.
        tally.stop(SIGKILL)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "h", match: match).split(separator: "\n").map(String.init), expected)
        tally = try TallyServerProcess(storage: storage, extraArguments: tallyArguments)
        try tally.waitReady()
        tally.stop(SIGTERM)
        XCTAssertEqual(tally.process.terminationStatus, 0, tally.log)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "h", match: match).split(separator: "\n").map(String.init), expected)

        // Every block verifies (chunks decode, counts match meta.json); a compaction (the one-minute
        // blocks merged where the planner merges them) keeps every histogram.
        for command in [["blocks", "verify"], ["compact"], ["blocks", "verify"]] {
            let run = try runCommand(Binaries.tally, command + ["--storage", storage, "--tenant", "h"])
            XCTAssertEqual(run.status, 0, "\(command): \(run.stdout) \(run.stderr)")
        }
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "h", match: match).split(separator: "\n").map(String.init), expected)

        // promtool 2.42 reads every block and the WAL without an error (its dump prints floats only,
        // stopping a series at its first histogram, so the histogram series prints nothing).
        let copy = root + "/promtool-copy"
        try FileManager.default.copyItem(atPath: storage + "/h", toPath: copy)
        let dump = try runCommand(Binaries.debian("promtool"), ["tsdb", "dump", copy])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertFalse(dump.stdout.contains("test_latency_seconds"), dump.stdout)

        // Prometheus 2.42 opens the tenant directory as its own TSDB and answers the same histograms.
        try assertPrometheusReads(storage + "/h", root: root, expected: exporter)
    }

    /// Starts Prometheus on a copy of `tenantDirectory` (no scrapes) and compares its range query
    /// answer for the histogram with what the exporter served, scrape by scrape.
    private func assertPrometheusReads(_ tenantDirectory: String, root: String, expected exporter: HistogramExporter) throws {
        let data = root + "/prometheus-reads"
        try FileManager.default.copyItem(atPath: tenantDirectory, toPath: data)
        let reader = try PrometheusProcess(directory: root, configuration: { _ in "global:\n  scrape_interval: 1m\n" },
                                           arguments: ["--storage.tsdb.path=\(data)", "--enable-feature=native-histograms"])
        defer { reader.stop() }
        try reader.waitReady()
        let start = Double(exporter.start) / 1000, end = Double(exporter.start + Int64(exporter.scrapes - 1) * exporter.step) / 1000
        let path = "/api/v1/query_range?query=test_latency_seconds&start=\(start)&end=\(end)&step=\(Double(exporter.step) / 1000)"
        let answer = try reader.client(timeoutSeconds: 30).request("GET", path)
        XCTAssertEqual(answer.status, 200, answer.body)
        let json = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        let result = ((json?["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
        let points = try XCTUnwrap(result?["histograms"] as? [[Any]], answer.body)
        XCTAssertEqual(points.count, exporter.scrapes, answer.body)
        for (k, point) in points.enumerated() {
            let n = HistogramExporter.n(k, scrapes: exporter.scrapes)
            let h = point.last as? [String: Any]
            XCTAssertEqual(point.first as? Double, Double(exporter.start + Int64(k) * exporter.step) / 1000, "point \(k)")
            XCTAssertEqual(h?["count"] as? String, String(6 * n), "point \(k): \(point)")
            XCTAssertEqual(h?["sum"] as? String, String(7 * n), "point \(k): \(point)")
            let buckets = (h?["buckets"] as? [[Any]])?.map { $0.dropFirst().compactMap { $0 as? String } }
            XCTAssertEqual(buckets, [["-0.001", "0.001", String(n)], ["0.5", "1", String(2 * n)], ["1", "2", String(3 * n)]], "point \(k): \(point)")
        }
    }
}
