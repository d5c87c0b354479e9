import ArgumentParser
import Foundation
import Synchronization
import TallyLoad
import TallyStorage

/// Side-by-side measurements: the same requests to Tally, Prometheus 2.42 (receiver mode) and
/// VictoriaMetrics 1.79, one server at a time, each on a fresh directory on loopback.
@main
struct TallyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-bench",
        abstract: "Ingest the same Kubecost-shaped data into Tally, Prometheus and VictoriaMetrics; report CPU, memory, bytes per sample and the latency of a daily-cost question.")

    @Option(help: "Tally binary (a release build).")
    var tally = ".build/release/tally"

    @Option(help: "Prometheus binary (Debian's 2.42).")
    var prometheus = "/usr/bin/prometheus"

    @Option(help: "VictoriaMetrics binary (Debian's 1.79); empty to leave it out.")
    var victoriaMetrics = "/usr/bin/victoria-metrics"

    @Option(help: "Hours of minute-resolution data for the ingest run.")
    var hours = 8

    @Option(help: "Clusters; each has --nodes nodes with 10 pods and 2 volumes.")
    var clusters = 3

    @Option(help: "Nodes per cluster.")
    var nodes = 20

    @Option(help: "Concurrent senders (Prometheus' shards), each owning a share of the series.")
    var senders = 4

    @Option(help: "Days of data for the daily-cost question (2 clusters x 5 nodes); 0 skips it.")
    var costDays = 30

    @Option(help: "Append the report to this Markdown file.")
    var markdown: String?

    /// One system under test: how to start it, where it keeps data, how to let it settle.
    struct System {
        let name: String
        let executable: String
        let arguments: (_ directory: String, _ port: Int) -> [String]
        let readyPath: String
        let headers: [(String, String)]
        /// Blocks (bytes, samples) for Tally and Prometheus; the whole directory for VictoriaMetrics.
        let disk: (_ directory: String) throws -> (bytes: Int, samples: UInt64?)
        let settle: (_ directory: String, _ client: LoopbackHTTP) -> Void
    }

    struct IngestResult {
        var sent = 0, accepted = 0
        var refusals: [Int: Int] = [:]
        var cpuSeconds = 0.0, wallSeconds = 0.0
        var peakRSS = 0, anonymousGrowth = 0
        var diskBytes = 0
        var diskSamples: UInt64?
    }

    struct CostResult {
        var failure: String?
        var cold = 0.0, warm = 0.0
        /// Total per "day cluster".
        var totals: [String: Double] = [:]
    }

    func run() throws {
        let root = NSTemporaryDirectory() + "tally-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let systems = self.systems(root)

        var dataset = KubecostDataset()
        dataset.clusters = clusters
        dataset.nodesPerCluster = nodes
        dataset.scrapes = hours * 60
        dataset.start = (Int64(Date().timeIntervalSince1970 * 1000) - Int64(hours) * 3_600_000) / 7_200_000 * 7_200_000
        let requests = dataset.requests(senders: senders)
        let sampleCount = dataset.sampleCount
        print("ingest: \(dataset.seriesCount) series x \(dataset.scrapes) scrapes = \(sampleCount) samples, \(requests.map(\.count).reduce(0, +)) requests from \(senders) senders, seed \(dataset.seed)")
        var ingest: [IngestResult] = []
        for (i, system) in systems.enumerated() {
            let directory = root + "/ingest-\(i)"
            ingest.append(try withServer(system, directory: directory) { process, client in
                try measureIngest(system, process: process, client: client, requests: requests, directory: directory)
            })
            print("  \(system.name): done")
        }
        var report = renderIngest(systems, ingest, dataset: dataset, requests: requests.map(\.count).reduce(0, +))

        if costDays > 0 {
            let costData = KubecostDataset.costDays(costDays, nodesPerCluster: 5, podsPerNode: 4, now: Int64(Date().timeIntervalSince1970 * 1000))
            let costRequests = costData.requests(senders: 1)
            print("cost question: \(costData.seriesCount) series x \(costData.scrapes) scrapes = \(costData.sampleCount) samples, \(costDays) days")
            var costs: [CostResult] = []
            for (i, system) in systems.enumerated() {
                let directory = root + "/cost-\(i)"
                costs.append(try withServer(system, directory: directory) { process, client in
                    _ = try measureIngest(system, process: process, client: client, requests: costRequests, directory: directory, measureDisk: false)
                    do { return try askCosts(system, client: client, dataset: costData) } catch {
                        return CostResult(failure: "\(error)")
                    }
                })
                print("  \(system.name): done")
            }
            report += renderCosts(systems, costs, dataset: costData)
        }
        print(report)
        if let markdown {
            let handle = FileHandle(forWritingAtPath: markdown) ?? { _ = FileManager.default.createFile(atPath: markdown, contents: nil); return FileHandle(forWritingAtPath: markdown)! }()
            handle.seekToEndOfFile()
            handle.write(Data(report.utf8))
            try handle.close()
        }
    }

    func systems(_ root: String) -> [System] {
        let blocks: (String) throws -> (Int, UInt64?) = { directory in
            let listed = try BlockCatalog.list(tenantDirectory: directory)
            return (listed.reduce(0) { $0 + $1.bytes }, listed.reduce(0) { $0 + $1.meta.stats.numSamples })
        }
        var out = [
            System(name: "Tally", executable: tally, arguments: { ["serve", "--listen", "127.0.0.1:\($1)", "--storage", $0] },
                   readyPath: "/-/ready", headers: [("THANOS-TENANT", "bench")],
                   disk: { try blocks($0 + "/bench") }, settle: { _, _ in }),
            System(name: "Prometheus 2.42", executable: prometheus,
                   arguments: { directory, port in
                       try? "global:\n  scrape_interval: 1m\n".write(toFile: directory + ".yml", atomically: true, encoding: .utf8)
                       return ["--config.file=\(directory).yml", "--storage.tsdb.path=\(directory)", "--storage.tsdb.retention.time=100y",
                               "--web.listen-address=127.0.0.1:\(port)", "--web.enable-remote-write-receiver"]
                   },
                   readyPath: "/-/ready", headers: [], disk: blocks,
                   settle: { directory, _ in
                       // Prometheus compacts its head in the background; wait until its blocks stop growing.
                       var last: UInt64 = 0, stableSince = Date()
                       let deadline = Date().addingTimeInterval(180)
                       while Date() < deadline {
                           let now = (try? BlockCatalog.list(tenantDirectory: directory).reduce(0) { $0 + $1.meta.stats.numSamples }) ?? 0
                           if now != last { last = now; stableSince = Date() }
                           if now > 0 && Date().timeIntervalSince(stableSince) > 15 { return }
                           Thread.sleep(forTimeInterval: 1)
                       }
                   }),
        ]
        if !victoriaMetrics.isEmpty {
            out.append(System(name: "VictoriaMetrics 1.79", executable: victoriaMetrics,
                              // A month of one-minute subquery points is over VictoriaMetrics' default limits (30000).
                              arguments: { ["-storageDataPath=\($0)", "-httpListenAddr=127.0.0.1:\($1)", "-retentionPeriod=100y", "-search.latencyOffset=0",
                                            "-search.maxPointsPerTimeseries=1000000"] },
                              readyPath: "/health", headers: [],
                              disk: { (Self.directoryBytes($0), nil) },
                              settle: { _, client in _ = try? client.request("GET", "/internal/force_flush") }))
        }
        return out
    }

    /// Starts `system` on a fresh directory, runs `body`, stops it.
    func withServer<R>(_ system: System, directory: String, _ body: (Process, LoopbackHTTP) throws -> R) throws -> R {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = LoopbackHTTP.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: system.executable)
        process.arguments = system.arguments(directory, port)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let client = LoopbackHTTP(port: port, timeoutSeconds: 300)
        let deadline = Date().addingTimeInterval(60)
        while (try? client.request("GET", system.readyPath))?.status != 200 {
            guard Date() < deadline, process.isRunning else { throw ValidationError("\(system.name) did not become ready") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try body(process, client)
    }

    /// Sends every request, lets the server settle, reads its CPU and memory, and with
    /// `measureDisk` its bytes on disk (stopping Tally first, see below).
    func measureIngest(_ system: System, process: Process, client: LoopbackHTTP, requests: [[[UInt8]]], directory: String,
                       measureDisk: Bool = true) throws -> IngestResult {
        let pid = process.processIdentifier
        let before = ProcessStats.read(pid: pid)!
        let started = Date()
        let headers = system.headers
        let counts = Mutex((accepted: 0, refusals: [Int: Int]()))
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
        var result = IngestResult()
        result.wallSeconds = Date().timeIntervalSince(started)
        (result.accepted, result.refusals) = counts.withLock { ($0.accepted, $0.refusals) }
        let after = ProcessStats.read(pid: pid)!
        result.sent = requests.map(\.count).reduce(0, +)
        result.cpuSeconds = after.cpuSeconds - before.cpuSeconds
        system.settle(directory, client)
        waitUntilIdle(pid: pid)
        let settled = ProcessStats.read(pid: pid) ?? after
        result.anonymousGrowth = settled.anonymousBytes - before.anonymousBytes
        result.peakRSS = settled.peakResidentBytes
        guard measureDisk else { return result }
        if system.name == "Tally" {
            // Tally writes what Prometheus readers would skip into blocks at a clean stop; measure after it.
            process.terminate()
            process.waitUntilExit()
        }
        (result.diskBytes, result.diskSamples) = try system.disk(directory)
        return result
    }

    /// Background work (block cuts, Go's GC, VictoriaMetrics' merges) finishes before memory is
    /// read: waits until the server has used under 1% of a core for two seconds, at most 60 seconds.
    func waitUntilIdle(pid: Int32) {
        var last = ProcessStats.read(pid: pid)?.cpuSeconds ?? 0
        for _ in 0..<60 {
            Thread.sleep(forTimeInterval: 2)
            let now = ProcessStats.read(pid: pid)?.cpuSeconds ?? last
            if now - last < 0.02 { return }
            last = now
        }
    }

    /// The daily cost of every cluster over the last `costDays` whole days: Tally's cost API in one
    /// request; the peers' PromQL form, one range query (step one day) per category.
    func askCosts(_ system: System, client: LoopbackHTTP, dataset: KubecostDataset) throws -> CostResult {
        let firstEnd = dataset.start + 86_400_000 - 1, lastEnd = dataset.start + Int64(costDays) * 86_400_000 - 1
        func date(_ ms: Int64) -> String {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyy-MM-dd"
            formatter.timeZone = TimeZone(identifier: "UTC")
            return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
        }
        func ask() throws -> [String: Double] {
            var totals: [String: Double] = [:]
            if system.name == "Tally" {
                let r = try client.request("GET", "/api/v1/costs/daily?start=\(date(firstEnd))&end=\(date(lastEnd))", headers: system.headers)
                guard r.status == 200 else { throw ValidationError("Tally answered \(r.status): \(r.body.prefix(300))") }
                guard let rows = (try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["rows"] as? [[String: Any]] else {
                    throw ValidationError("Tally answered \(r.status): \(r.body.prefix(200))")
                }
                for row in rows { totals["\(row["date"]!) \(row["cluster"]!)"] = (row["total"] as? NSNumber)?.doubleValue }
                return totals
            }
            for category in CostPromQL.categories {
                let query = CostPromQL.form(category).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let r = try client.request("GET", "/api/v1/query_range?query=\(query)&start=\(Double(firstEnd) / 1000)&end=\(Double(lastEnd) / 1000)&step=86400")
                guard r.status == 200 else { throw ValidationError("\(system.name) answered \(r.status) to the \(category) query: \(r.body.suffix(400))") }
                guard let data = (try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["data"] as? [String: Any],
                      let result = data["result"] as? [[String: Any]] else { throw ValidationError("\(system.name) answered \(r.status): \(r.body.prefix(200))") }
                for series in result {
                    let cluster = (series["metric"] as? [String: String])?["cluster_id"] ?? ""
                    for point in series["values"] as? [[Any]] ?? [] {
                        guard let t = point.first as? NSNumber, let v = (point.last as? String).flatMap(Double.init) else { continue }
                        totals["\(date(Int64(t.doubleValue * 1000))) \(cluster)", default: 0] += v
                    }
                }
            }
            return totals
        }
        var result = CostResult()
        var started = Date()
        result.totals = try ask()
        result.cold = Date().timeIntervalSince(started)
        var warm: [Double] = []
        for _ in 0..<5 {
            started = Date()
            _ = try ask()
            warm.append(Date().timeIntervalSince(started))
        }
        result.warm = warm.sorted()[2]
        return result
    }

    static func directoryBytes(_ path: String) -> Int {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        for case let name as String in enumerator {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? Int) ?? 0 }
        }
        return total
    }

    func header(_ systems: [System]) -> String {
        let names = systems.map(\.name)
        var out = "| figure | " + names.joined(separator: " | ")
        for peer in names.dropFirst() { out += " | Tally / \(peer.split(separator: " ").first!)" }
        out += " |\n|---|" + String(repeating: "---|", count: 2 * names.count - 1) + "\n"
        return out
    }

    func row(_ label: String, _ values: [Double], format: String, lowerIsBetter: Bool = true) -> String {
        var out = "| \(label) | " + values.map { String(format: format, $0) }.joined(separator: " | ")
        for v in values.dropFirst() { out += " | " + (v == 0 ? "n/a" : String(format: "%.2f", values[0] / v)) }
        return out + " |\n"
    }

    func renderIngest(_ systems: [System], _ results: [IngestResult], dataset: KubecostDataset, requests: Int) -> String {
        let samples = Double(dataset.sampleCount)
        var out = "\n### Ingest run, \(ISO8601DateFormatter().string(from: Date()))\n\n"
        out += "Command: `tally-bench --hours \(hours) --clusters \(clusters) --nodes \(nodes) --senders \(senders) --cost-days \(costDays)` (release build, "
        out += "\(ProcessInfo.processInfo.activeProcessorCount) cores). Data: \(dataset.seriesCount) series x \(dataset.scrapes) one-minute "
        out += "scrapes = \(dataset.sampleCount) samples in \(requests) requests of up to 500 samples, seed \(dataset.seed).\n\n"
        out += header(systems)
        out += "| requests accepted | " + results.map { r in
            "\(r.accepted) of \(r.sent)" + (r.refusals.isEmpty ? "" : " (refused: \(r.refusals.sorted { $0.key < $1.key }.map { "\($0.value) x \($0.key)" }.joined(separator: ", ")))")
        }.joined(separator: " | ") + String(repeating: " | ", count: systems.count - 1) + " |\n"
        out += row("server CPU seconds", results.map(\.cpuSeconds), format: "%.2f")
        out += row("accepted samples per server CPU-second", results.map { samples * Double($0.accepted) / Double(requests) / $0.cpuSeconds }, format: "%.0f")
        out += row("wall-clock ingest (s)", results.map(\.wallSeconds), format: "%.1f")
        out += row("peak RSS (MiB)", results.map { Double($0.peakRSS) / 1_048_576 }, format: "%.1f")
        out += row("anonymous memory per series, settled (B)", results.map { Double($0.anonymousGrowth) / Double(dataset.seriesCount) }, format: "%.0f")
        out += row("bytes per sample on disk", results.map { Double($0.diskBytes) / Double($0.diskSamples.map { max($0, 1) } ?? UInt64(dataset.sampleCount)) }, format: "%.3f")
        out += "\nBytes per sample: Tally's and Prometheus' blocks over the samples their `meta.json` count (the head's last "
        out += "hours are not in blocks); VictoriaMetrics' whole data directory after `/internal/force_flush` over all samples sent.\n"
        return out
    }

    func renderCosts(_ systems: [System], _ results: [CostResult], dataset: KubecostDataset) -> String {
        var out = "\n### Daily-cost question, \(costDays) days\n\n"
        out += "Data: \(dataset.seriesCount) series (2 clusters x 5 nodes, a node replaced halfway, an exporter upgrade overlap, counter resets), "
        out += "\(dataset.sampleCount) samples on the minute grid, sent by one sender. Question: the daily cost of every cluster for the "
        out += "\(costDays) whole days. Tally: one `GET /api/v1/costs/daily`; peers: the PromQL form of each of the 9 categories as a "
        out += "range query with a one-day step (`CostPromQL`). Cold: the first question after ingest; warm: the median of the next five.\n\n"
        out += header(systems)
        out += row("cold latency (ms)", results.map { $0.cold * 1000 }, format: "%.1f")
        out += row("warm latency (ms)", results.map { $0.warm * 1000 }, format: "%.1f")
        for (system, result) in zip(systems, results) {
            if let failure = result.failure { out += "\n\(system.name) could not answer: \(failure)\n" }
        }
        let tally = results[0].totals
        for (system, result) in zip(systems, results).dropFirst() where result.failure == nil {
            let worst = tally.map { key, value in
                let other = result.totals[key] ?? 0
                return value == other ? 0 : abs(value - other) / max(abs(value), abs(other))
            }.max() ?? 0
            out += "\nLargest relative difference of a (day, cluster) total from \(system.name): \(String(format: "%.2e", worst)) over \(tally.count) totals."
        }
        return out + "\n"
    }
}
