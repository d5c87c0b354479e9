import ArgumentParser
import Foundation
import Synchronization
import TallyLoad
import TallyStorage

/// Side-by-side measurements: the same requests to Tally and to Prometheus 2.42 (receiver mode),
/// one server at a time, each on a fresh directory on loopback.
@main
struct TallyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-bench",
        abstract: "Ingest the same Kubecost-shaped data into Tally and Prometheus; report CPU, memory and bytes per sample.")

    @Option(help: "Tally binary (a release build).")
    var tally = ".build/release/tally"

    @Option(help: "Prometheus binary (Debian's 2.42).")
    var prometheus = "/usr/bin/prometheus"

    @Option(help: "Hours of minute-resolution data.")
    var hours = 8

    @Option(help: "Clusters; each has --nodes nodes with 10 pods and 2 volumes.")
    var clusters = 3

    @Option(help: "Nodes per cluster.")
    var nodes = 20

    @Option(help: "Concurrent senders (Prometheus' shards), each owning a share of the series.")
    var senders = 4

    @Option(help: "Append the report to this Markdown file.")
    var markdown: String?

    struct Result {
        var name = ""
        var sent = 0
        var accepted = 0
        var refusals: [Int: Int] = [:]
        var cpuSeconds = 0.0
        var wallSeconds = 0.0
        var peakRSS = 0
        var anonymousGrowth = 0
        var blockSamples: UInt64 = 0
        var blockBytes = 0
        var blocks = 0
    }

    func run() throws {
        var dataset = KubecostDataset()
        dataset.clusters = clusters
        dataset.nodesPerCluster = nodes
        dataset.scrapes = hours * 60
        dataset.start = (Int64(Date().timeIntervalSince1970 * 1000) - Int64(hours) * 3_600_000) / 7_200_000 * 7_200_000
        let requests = dataset.requests(senders: senders)
        let root = NSTemporaryDirectory() + "tally-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        print("dataset: \(dataset.seriesCount) series x \(dataset.scrapes) scrapes = \(dataset.sampleCount) samples, \(requests.map(\.count).reduce(0, +)) requests from \(senders) senders, seed \(dataset.seed)")

        let tallyPort = LoopbackHTTP.freePort()
        let tallyResult = try measure(name: "Tally", executable: tally,
                                      arguments: ["serve", "--listen", "127.0.0.1:\(tallyPort)", "--storage", root + "/tally"],
                                      port: tallyPort, requests: requests, headers: [("THANOS-TENANT", "bench")],
                                      blocksIn: root + "/tally/bench", settle: { _ in })
        let promPort = LoopbackHTTP.freePort()
        try "global:\n  scrape_interval: 1m\n".write(toFile: root + "/prometheus.yml", atomically: true, encoding: .utf8)
        let promResult = try measure(name: "Prometheus 2.42", executable: prometheus,
                                     arguments: ["--config.file=\(root)/prometheus.yml", "--storage.tsdb.path=\(root)/prometheus",
                                                 "--web.listen-address=127.0.0.1:\(promPort)", "--web.enable-remote-write-receiver"],
                                     port: promPort, requests: requests, headers: [],
                                     blocksIn: root + "/prometheus", settle: { directory in
            // Prometheus compacts its head in the background; wait until its blocks stop growing.
            var last: UInt64 = 0, stableSince = Date()
            let deadline = Date().addingTimeInterval(180)
            while Date() < deadline {
                let now = (try? BlockCatalog.list(tenantDirectory: directory).reduce(0) { $0 + $1.meta.stats.numSamples }) ?? 0
                if now != last { last = now; stableSince = Date() }
                if now > 0 && Date().timeIntervalSince(stableSince) > 15 { return }
                Thread.sleep(forTimeInterval: 1)
            }
        })
        let report = render([tallyResult, promResult], dataset: dataset, requests: requests.map(\.count).reduce(0, +))
        print(report)
        if let markdown {
            let handle = FileHandle(forWritingAtPath: markdown) ?? { _ = FileManager.default.createFile(atPath: markdown, contents: nil); return FileHandle(forWritingAtPath: markdown)! }()
            handle.seekToEndOfFile()
            handle.write(Data(report.utf8))
            try handle.close()
        }
    }

    func measure(name: String, executable: String, arguments: [String], port: Int, requests: [[[UInt8]]],
                 headers: [(String, String)], blocksIn: String, settle: (String) -> Void) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let client = LoopbackHTTP(port: port, timeoutSeconds: 30)
        let deadline = Date().addingTimeInterval(60)
        while (try? client.request("GET", "/-/ready"))?.status != 200 {
            guard Date() < deadline, process.isRunning else { throw ValidationError("\(name) did not become ready") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let pid = process.processIdentifier
        let before = ProcessStats.read(pid: pid)!
        let started = Date()
        let counts = Mutex((accepted: 0, refusals: [Int: Int]()))
        var result = Result()
        result.name = name
        let group = DispatchGroup()
        for share in requests {
            group.enter()
            Thread {
                var accepted = 0, refusals: [Int: Int] = [:]
                for body in share {
                    let status = (try? client.request("POST", "/api/v1/write", headers: headers + [("Content-Type", "application/x-protobuf"),
                        ("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "0.1.0")], body: body))?.status ?? 0
                    if status / 100 == 2 { accepted += 1 } else { refusals[status, default: 0] += 1 }
                }
                counts.withLock {
                    $0.accepted += accepted
                    $0.refusals.merge(refusals, uniquingKeysWith: +)
                }
                group.leave()
            }.start()
        }
        group.wait()
        result.wallSeconds = Date().timeIntervalSince(started)
        (result.accepted, result.refusals) = counts.withLock { ($0.accepted, $0.refusals) }
        let after = ProcessStats.read(pid: pid)!
        result.sent = requests.map(\.count).reduce(0, +)
        result.cpuSeconds = after.cpuSeconds - before.cpuSeconds
        settle(blocksIn)
        waitUntilIdle(pid: pid)
        let settled = ProcessStats.read(pid: pid) ?? after
        result.anonymousGrowth = settled.anonymousBytes - before.anonymousBytes
        result.peakRSS = settled.peakResidentBytes
        process.terminate()
        process.waitUntilExit()
        let blocks = try BlockCatalog.list(tenantDirectory: blocksIn)
        result.blocks = blocks.count
        result.blockSamples = blocks.reduce(0) { $0 + $1.meta.stats.numSamples }
        result.blockBytes = blocks.reduce(0) { $0 + $1.bytes }
        return result
    }

    /// Background work (block cuts, Go's GC) finishes before memory is read: waits until the
    /// server has used under 1% of a core for two seconds, at most 60 seconds.
    func waitUntilIdle(pid: Int32) {
        var last = ProcessStats.read(pid: pid)?.cpuSeconds ?? 0
        for _ in 0..<60 {
            Thread.sleep(forTimeInterval: 2)
            let now = ProcessStats.read(pid: pid)?.cpuSeconds ?? last
            if now - last < 0.02 { return }
            last = now
        }
    }

    func render(_ results: [Result], dataset: KubecostDataset, requests: Int) -> String {
        let (t, p) = (results[0], results[1])
        let samples = Double(dataset.sampleCount)
        func ratio(_ a: Double, _ b: Double) -> String { b == 0 ? "n/a" : String(format: "%.2f", a / b) }
        func mib(_ n: Int) -> String { String(format: "%.1f MiB", Double(n) / 1_048_576) }
        func row(_ label: String, _ a: String, _ b: String, _ r: String) -> String { "| \(label) | \(a) | \(b) | \(r) |\n" }
        let tRate = samples * Double(t.accepted) / Double(requests) / t.cpuSeconds
        let pRate = samples * Double(p.accepted) / Double(requests) / p.cpuSeconds
        let tBps = Double(t.blockBytes) / Double(max(t.blockSamples, 1)), pBps = Double(p.blockBytes) / Double(max(p.blockSamples, 1))
        let tSeries = Double(t.anonymousGrowth) / Double(dataset.seriesCount), pSeries = Double(p.anonymousGrowth) / Double(dataset.seriesCount)
        var out = "\n### Storage run, \(ISO8601DateFormatter().string(from: Date()))\n\n"
        out += "Command: `tally-bench --hours \(hours) --clusters \(clusters) --nodes \(nodes) --senders \(senders)` (release build, "
        out += "\(ProcessInfo.processInfo.activeProcessorCount) cores). Data: \(dataset.seriesCount) series x \(dataset.scrapes) one-minute "
        out += "scrapes = \(dataset.sampleCount) samples in \(requests) requests of up to 500 samples, seed \(dataset.seed).\n\n"
        out += "| figure | Tally | Prometheus 2.42 | Tally / Prometheus |\n|---|---|---|---|\n"
        out += row("requests accepted", "\(t.accepted) of \(t.sent)", "\(p.accepted) of \(p.sent) \(p.refusals.isEmpty ? "" : "(refused: \(p.refusals))")", "")
        out += row("server CPU seconds", String(format: "%.2f", t.cpuSeconds), String(format: "%.2f", p.cpuSeconds), ratio(t.cpuSeconds, p.cpuSeconds))
        out += row("accepted samples per server CPU-second", String(format: "%.0f", tRate), String(format: "%.0f", pRate), ratio(tRate, pRate))
        out += row("wall-clock ingest", String(format: "%.1f s", t.wallSeconds), String(format: "%.1f s", p.wallSeconds), ratio(t.wallSeconds, p.wallSeconds))
        out += row("peak RSS", mib(t.peakRSS), mib(p.peakRSS), ratio(Double(t.peakRSS), Double(p.peakRSS)))
        out += row("anonymous memory per active series, settled", String(format: "%.0f B", tSeries), String(format: "%.0f B", pSeries), ratio(tSeries, pSeries))
        out += row("blocks / samples in blocks", "\(t.blocks) / \(t.blockSamples)", "\(p.blocks) / \(p.blockSamples)", "")
        out += row("bytes per sample in blocks", String(format: "%.3f", tBps), String(format: "%.3f", pBps), ratio(tBps, pBps))
        return out
    }
}
