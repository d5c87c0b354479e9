import Foundation
import TallyStorage
import TallyWire
import TallyLoad
import XCTest

/// `tally import blocks` with blocks from promtool and from a real Prometheus, next to a running server.
final class BlockImportTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("promtool")
        _ = try Binaries.debian("prometheus")
    }

    /// OpenMetrics text over ~5 h with NaN, infinities and -0, turned into blocks by promtool.
    private func promtoolBlocks(in root: String) throws -> String {
        var lines: [(Int, String)] = []
        for s in 0..<3 {
            for i in 0..<500 {
                let t = 1_700_000_000 + i * 37 + s
                let v = i % 7 == 0 ? ["NaN", "+Inf", "-Inf", "-0", String(Double(i) * 0.5)][i % 5] : String(Double(i) * 1.25 + Double(s))
                lines.append((t, "om_metric{series=\"\(s)\",job=\"imp\"} \(v) \(t)"))
            }
        }
        let text = "# TYPE om_metric gauge\n" + lines.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n# EOF\n"
        try text.write(toFile: root + "/data.om", atomically: true, encoding: .utf8)
        let result = try runCommand(Binaries.debian("promtool"), ["tsdb", "create-blocks-from", "openmetrics", root + "/data.om", root + "/out"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return root + "/out"
    }

    /// Imports into `tenant`, making the storage root first if needed (import never creates one).
    private func importBlocks(_ source: String, storage: String, tenant: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        return try runCommand(Binaries.tally, ["import", "blocks", source, "--storage", storage, "--tenant", tenant])
    }

    func testImportsPromtoolBlocksWhileTheServerRuns() throws {
        let root = try makeTemporaryDirectory("import")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let source = try promtoolBlocks(in: root)
        let storage = root + "/storage"
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--block-scan-interval-ms", "100"])
        try server.waitReady()
        // The tenant is live (it has a head) when its blocks arrive.
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "live")], samples: [WireSample(timestamp: 1_700_020_000_000, valueBits: 1.0.bitPattern)])
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: [("THANOS-TENANT", "imp")], body: encoder.compressed()).status, 204)

        let first = try importBlocks(source, storage: storage, tenant: "imp")
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout.components(separatedBy: "imported as").count - 1, 3, first.stdout)
        let again = try importBlocks(source, storage: storage, tenant: "imp")
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout.components(separatedBy: "skipped").count - 1, 3, again.stdout)

        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && server.log.components(separatedBy: "loaded block").count - 1 < 3 { usleep(50_000) }
        XCTAssertEqual(server.log.components(separatedBy: "loaded block").count - 1, 3, server.log)

        let expected = try BlockInteropTests.promtoolDump(source)
        XCTAssertEqual(expected.count, 1500)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "imp", match: "{__name__=\"om_metric\"}").split(separator: "\n").map(String.init).sorted(), expected)
        let listed = try runCommand(Binaries.tally, ["blocks", "ls", "--storage", storage, "--tenant", "imp"])
        XCTAssertTrue(listed.stdout.contains("3 blocks, 1500 samples"), listed.stdout)

        let meta = try BlockMeta.decode(Array(try Data(contentsOf: URL(fileURLWithPath: storage + "/imp/" + (try BlockCatalog.list(tenantDirectory: storage + "/imp")[0].meta.ulid) + "/meta.json"))))
        XCTAssertEqual(meta.thanos?.labels["tenant_id"], "imp")
        server.stop(SIGTERM)
        XCTAssertEqual(server.process.terminationStatus, 0, server.log)
    }

    func testRefusesACorruptBlockAndWritesNothing() throws {
        let root = try makeTemporaryDirectory("import-bad")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let source = try promtoolBlocks(in: root)
        let block = try BlockImporter.blocks(in: source)[1]
        // One flipped byte inside the first chunk's data.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: block + "/chunks/000001"))
        try handle.seek(toOffset: 20)
        let byte = try handle.read(upToCount: 1)!
        try handle.seek(toOffset: 20)
        handle.write(Data([byte[0] ^ 0x40]))
        try handle.close()
        let storage = root + "/storage"
        let result = try importBlocks(block, storage: storage, tenant: "bad")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("checksum mismatch"), result.stderr)
        XCTAssertTrue(result.stderr.contains(URL(fileURLWithPath: block).lastPathComponent), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/bad"), "nothing written for a refused block")
    }

    func testImportsBlocksWrittenByARealPrometheus() throws {
        let root = try makeTemporaryDirectory("import-prom")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let prometheus = try PrometheusProcess(directory: root, configuration: { port in
            """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: prometheus
                static_configs:
                  - targets: ['127.0.0.1:\(port)']
            """
        }, arguments: ["--storage.tsdb.path=\(root)/data", "--web.enable-admin-api"])
        try prometheus.waitReady()
        // A snapshot writes Prometheus' head as blocks: wait (bounded) for a few scrapes, then take one.
        let client = prometheus.client()
        var scrapes = 0.0
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && scrapes < 4 {
            usleep(200_000)
            guard let r = try? client.request("GET", "/api/v1/query?query=count_over_time(up%5B1m%5D)"),
                  let data = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["data"] as? [String: Any],
                  let value = ((data["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String else { continue }
            scrapes = Double(value) ?? 0
        }
        XCTAssertGreaterThanOrEqual(scrapes, 4, "Prometheus scraped itself \(scrapes) times in 30 s; log tail:\n\(prometheus.logTail)")
        let r = try client.request("POST", "/api/v1/admin/tsdb/snapshot")
        XCTAssertEqual(r.status, 200, r.body)
        let name = try XCTUnwrap(r.body.range(of: "\"name\":\""), r.body)
        let snapshot = root + "/data/snapshots/" + String(r.body[name.upperBound...].prefix { $0 != "\"" })
        prometheus.stop()

        let storage = root + "/storage"
        let result = try importBlocks(snapshot, storage: storage, tenant: "prom")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("imported as"), result.stdout)
        let expected = try BlockInteropTests.promtoolDump(snapshot)
        XCTAssertGreaterThan(expected.count, 100)
        XCTAssertEqual(try tallyDump(storage: storage, tenant: "prom").split(separator: "\n").map(String.init).sorted(), expected)
    }
}
