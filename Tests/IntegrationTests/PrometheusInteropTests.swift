import Foundation
import TallyWire
import TallyLoad
import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Debian's Prometheus 2.42 as the other side: a real sender, and promtool as the reader of
/// Tally's WAL.
final class PrometheusInteropTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try Binaries.debian("promtool")
        _ = try Binaries.debian("prometheus")
    }

    /// `promtool tsdb dump` on a copy of a tenant directory (promtool creates chunks_head/ in what it
    /// opens, even to read), as a sorted list of lines: promtool prints series in creation order,
    /// `tally dump` in label order, so the comparison is of the same lines.
    private func promtoolDump(_ tenantDirectory: String) throws -> [String] {
        let copy = try makeTemporaryDirectory("promtool-copy") + "/tenant"
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: tenantDirectory, toPath: copy)
        let result = try runCommand(Binaries.debian("promtool"), ["tsdb", "dump", copy])
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout.split(separator: "\n").map(String.init).sorted()
    }

    func testRealPrometheusPushesUnderItsTenantOnly() throws {
        let root = try makeTemporaryDirectory("prom")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        let tally = try TallyServerProcess(storage: storage)
        try tally.waitReady()
        let prometheus = try PrometheusProcess(directory: root, configuration: { port in
            """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: prometheus
                static_configs:
                  - targets: ['127.0.0.1:\(port)']
            remote_write:
              # Debian's 2.42.0+ds drops remote_write headers (prometheus/prometheus#13030), so the
              # tenant is also named on the URL; a sender that sends the header is served by it.
              - url: http://127.0.0.1:\(tally.port)/api/v1/write?tenant=t1
                headers:
                  THANOS-TENANT: t1
                queue_config:
                  batch_send_deadline: 1s
                  min_backoff: 50ms
            """
        }, arguments: ["--storage.tsdb.path=\(root)/prometheus-data"])

        // Bounded wait: Prometheus scrapes every second and sends within a second of that.
        var found = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && found.isEmpty {
            sleep(1)
            found = (try? tallyDump(storage: storage, tenant: "t1", match: "{__name__=\"prometheus_build_info\"}")) ?? ""
        }
        XCTAssertTrue(found.contains("{__name__=\"prometheus_build_info\""), "no prometheus_build_info under t1 within 60 s; Prometheus log tail:\n\(prometheus.logTail)")
        XCTAssertTrue(found.contains("job=\"prometheus\""), found)
        let tenants = try FileManager.default.contentsOfDirectory(atPath: storage).filter { !$0.hasPrefix(".") }
        XCTAssertEqual(tenants, ["t1"], "nothing under any other tenant")

        prometheus.stop()
        tally.stop(SIGTERM)
        XCTAssertEqual(tally.process.terminationStatus, 0, tally.log)
        let tallyLines = try tallyDump(storage: storage, tenant: "t1").split(separator: "\n").map(String.init)
        XCTAssertGreaterThan(tallyLines.count, 100)
        XCTAssertEqual(try promtoolDump(storage + "/t1"), tallyLines.sorted())
    }

    func testPromtoolReadsTallysWALExactlyOnEdgeValues() throws {
        _ = try Binaries.debian("promtool")
        let storage = try makeTemporaryDirectory("edge")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        let values: [UInt64] = [0x7ff0_0000_0000_0002, 0x7ff8_0000_0000_0001, Double.infinity.bitPattern, (-Double.infinity).bitPattern,
                                (-0.0).bitPattern, 0, 1e300.bitPattern, Double.leastNonzeroMagnitude.bitPattern, 1234567.0.bitPattern, 0.1.bitPattern,
                                (-2.5e-7).bitPattern, 100000.0.bitPattern, 1e21.bitPattern, 123456.75.bitPattern]
        var generator = SeededGenerator(test: "PrometheusInteropTests.testPromtoolReadsTallysWALExactlyOnEdgeValues")
        // Three restarts: the WAL then spans several segments, as it does in production.
        for restart in 0..<3 {
            let server = try TallyServerProcess(storage: storage)
            try server.waitReady()
            var encoder = WriteRequestEncoder()
            for s in 0..<6 {
                var t = Int64(1_700_000_000_000 + restart * 100_000_000)
                let samples = (0..<300).map { i -> WireSample in
                    t += Int64.random(in: 1...90_000, using: &generator)
                    let bits = i % 3 == 0 ? values[(i / 3 + s) % values.count] : Double.random(in: -1e6...1e6, using: &generator).bitPattern
                    return WireSample(timestamp: t, valueBits: bits)
                }
                encoder.addSeries(labels: [("__name__", "edge_values"), ("series", String(s)),
                                           ("odd", "quote\" back\\slash\nnewline ü \u{7f}")], samples: samples)
            }
            let response = try server.client.request("POST", "/api/v1/write", headers: [("Content-Type", "application/x-protobuf"),
                                                                                    ("THANOS-TENANT", "edge")], body: encoder.compressed())
            XCTAssertEqual(response.status, 204, response.body)
            server.stop(restart == 1 ? SIGKILL : SIGTERM)
        }
        let tallyOutput = try tallyDump(storage: storage, tenant: "edge")
        let tallyLines = tallyOutput.split(separator: "\n").map(String.init)
        XCTAssertEqual(tallyLines.count, 3 * 6 * 300)
        XCTAssertTrue(tallyOutput.contains(" NaN ") && tallyOutput.contains(" +Inf ") && tallyOutput.contains(" -Inf ") && tallyOutput.contains(" -0 "))
        XCTAssertEqual(try promtoolDump(storage + "/edge"), tallyLines.sorted())
    }

    /// Kubecost-shaped data, whose records shrink: its WAL is snappy-compressed, as Prometheus writes
    /// its own by default, and promtool reads the same samples from it as `tally dump` does. SIGKILL,
    /// so that nothing is flushed into blocks and promtool reads the WAL alone.
    func testPromtoolReadsTallysCompressedWAL() throws {
        let storage = try makeTemporaryDirectory("compressed")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        var dataset = KubecostDataset()
        dataset.clusters = 1
        dataset.nodesPerCluster = 2
        dataset.scrapes = 30
        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        for body in dataset.requests(senders: 1)[0] {
            let response = try server.client.request("POST", "/api/v1/write", headers: [("Content-Type", "application/x-protobuf"),
                                                                                    ("THANOS-TENANT", "kube")], body: body)
            XCTAssertEqual(response.status, 204, response.body)
        }
        server.stop(SIGKILL)
        var compressed = 0, plain = 0
        let wal = storage + "/kube/wal"
        for segment in try WALFormat.segments(in: wal) {
            for type in WALSegmentReader.fragmentTypes(try FileSystem.readFile(wal + "/" + WALFormat.segmentName(segment))) {
                if type & WALFormat.snappyFlag != 0 { compressed += 1 } else { plain += 1 }
            }
        }
        XCTAssertGreaterThan(compressed, plain, "fragments of compressed and of plain records")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: storage + "/kube").filter { ULID($0) != nil }, [], "no block")
        let tallyLines = try tallyDump(storage: storage, tenant: "kube").split(separator: "\n").map(String.init)
        XCTAssertEqual(tallyLines.count, dataset.sampleCount)
        XCTAssertEqual(try promtoolDump(storage + "/kube"), tallyLines.sorted())
    }
}
