import ArgumentParser
import Foundation
import Synchronization
import TallyLoad
import TallyStorage
import TallyWire
#if canImport(Glibc)
import Glibc
#endif

/// Side-by-side measurements: the same requests to Tally, Prometheus 2.42 (receiver mode) and
/// VictoriaMetrics 1.79, one server at a time, each on a fresh directory on loopback.
@main
struct TallyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-bench",
        abstract: "Ingest the same Kubecost-shaped data into Tally, Prometheus and VictoriaMetrics; report CPU, memory, bytes per sample and the latency of a daily-cost question.")

    @Option(help: "Tally binary (a release build).")
    var tally = ".build/release/tally"

    @Option(help: "Prometheus binary (Debian's 2.42); empty to leave it out.")
    var prometheus = "/usr/bin/prometheus"

    @Option(help: "VictoriaMetrics binary (Debian's 1.79); empty to leave it out.")
    var victoriaMetrics = "/usr/bin/victoria-metrics"

    @Option(help: "Hours of minute-resolution data for the ingest run; 0 skips it.")
    var hours = 8

    @Option(help: "Clusters; each has --nodes nodes with 10 pods and 2 volumes.")
    var clusters = 3

    @Option(help: "Nodes per cluster.")
    var nodes = 20

    @Option(help: "Concurrent senders (Prometheus' shards), each owning a share of the series.")
    var senders = 4

    @Option(help: "Series a tenant in the second corpus (four tenants of 5-9 labels, requests of 1,000-1,200 samples); 0 skips it and the sweep.")
    var tenantCorpusSeries = 2_300

    @Option(help: "Hours of one-minute samples in the second corpus; 0 skips it.")
    var tenantCorpusHours = 24

    @Option(help: "Rounds of the second corpus, each running every system once.")
    var tenantCorpusRuns = 3

    @Option(help: "Hours of the second corpus for the sweep of its properties against VictoriaMetrics; 0 skips it.")
    var sweepHours = 1

    @Option(help: "Runs of each system for each variant in the sweep.")
    var sweepRuns = 3

    @Option(help: "Series of the head-memory measurement (one tenant, 2 hours); 0 skips it.")
    var headMemorySeries = 100_000

    @Option(help: "Tally-only ingest runs of each wire version, alternating 1.0 and 2.0, whose medians the Remote-Write 2.0 table compares.")
    var wireVersionRuns = 5

    @Option(help: "Days of data for the daily-cost question (2 clusters x 5 nodes); 0 skips it.")
    var costDays = 30

    @Option(help: "Untimed PromQL requests per question before the timed ones.")
    var promqlWarmups = 2

    @Option(help: "Timed PromQL requests per question, asked after the cost question on its data (so --cost-days 0 skips them too); 0 skips the PromQL section.")
    var promqlRepetitions = 10

    @Option(help: "Clusters of 10-pod nodes whose WAL the restart measurement replays; 0 skips it.")
    var restartClusters = 10

    @Option(help: "Nodes per cluster for the restart measurement.")
    var restartNodes = 50

    @Option(help: "Minutes of data in that WAL (under 180, so that neither system cuts a block).")
    var restartMinutes = 150

    @Option(help: "Series in the one-day compaction-memory measurement (twelve 2h blocks of 120 samples each); 0 skips it.")
    var compactionSeries = 1_000_000

    @Flag(help: "A small run for a quick look (about 3 minutes): 4 hours of 2 clusters x 10 nodes, 4 hours of the second corpus at 500 series a tenant, no sweep, 10,000 series for head memory, a 7-day cost question, a 2 x 10 restart WAL.")
    var quick = false

    @Option(help: "Append the report to this Markdown file.")
    var markdown: String?

    @Flag(help: "Keep every system's data directories (printed at the end) for profiling, instead of removing them.")
    var keepData = false

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
        var sentSamples = 0, acceptedSamples = 0
        /// Refused requests by "status: first line of the answer".
        var refusals: [String: Int] = [:]
        var cpuSeconds = 0.0, wallSeconds = 0.0
        /// From the first request until the server is idle again: the background work the data caused
        /// (block cuts, WAL checkpoints) counted whether or not it ended before the last answer.
        var cpuSecondsUntilIdle = 0.0
        var peakRSS = 0, anonymousGrowth = 0
        var diskBytes = 0
        var diskSamples: UInt64?
        /// Tally only: the `tally compact` run before its disk was measured.
        var compaction: CompactionRun?
    }

    /// One `tally compact` child: its own CPU and peak RSS (wait4), and the tenant's size over the run.
    struct CompactionRun {
        var blocksBefore = 0, blocksAfter = 0
        var samples: UInt64 = 0
        var wallSeconds = 0.0, cpuSeconds = 0.0
        var peakRSS = 0
        var bytesBefore = 0, peakBytes = 0, bytesAfter = 0
        /// The largest block written: one child at a time sits beside its parents, so this bounds the extra disk.
        var largestBlock = 0
        var failure: String?
    }

    struct RestartResult {
        var series = 0, samples = 0
        var walBytes = 0
        /// Start to ready, each restart after a SIGKILL.
        var seconds: [Double] = []
        var failure: String?
    }

    struct CostResult {
        var failure: String?
        var cold = 0.0, warm = 0.0
        /// Total per "day cluster".
        var totals: [String: Double] = [:]
    }

    mutating func run() throws {
        if quick {
            (hours, clusters, nodes, costDays, restartClusters, restartNodes) = (4, 2, 10, 7, 2, 10)
            compactionSeries = min(compactionSeries, 20_000)
            // Four hours, so that Prometheus cuts a block and its settling (blocks that stop growing) ends.
            (tenantCorpusSeries, tenantCorpusHours, tenantCorpusRuns, sweepHours) = (min(tenantCorpusSeries, 500), min(tenantCorpusHours, 4), 1, 0)
            headMemorySeries = min(headMemorySeries, 10_000)
        }
        let root = NSTemporaryDirectory() + "tally-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer {
            if keepData { print("data kept in \(root)") } else { try? FileManager.default.removeItem(atPath: root) }
        }
        let systems = self.systems(root)

        var report = machineAndVersions(systems)
        if hours > 0 { report += try ingestSection(systems, root: root) }
        if tenantCorpusSeries > 0 && tenantCorpusHours > 0 { report += try tenantCorpusSection(systems, root: root) }
        if tenantCorpusSeries > 0 && sweepHours > 0 { report += try sweepSection(systems, root: root) }
        if headMemorySeries > 0 { report += try headMemorySection(systems, root: root) }

        if costDays > 0 {
            let costData = KubecostDataset.costDays(costDays, nodesPerCluster: 5, podsPerNode: 4, now: Int64(Date().timeIntervalSince1970 * 1000))
            let costRequests = costData.requests(senders: 1)
            print("cost question: \(costData.seriesCount) series x \(costData.scrapes) scrapes = \(costData.sampleCount) samples, \(costDays) days")
            var costs: [CostResult] = []
            var promQL: [PromQLResult] = []
            var compaction: CompactionRun?
            for (i, system) in systems.enumerated() {
                let directory = root + "/cost-\(i)"
                costs.append(try withServer(system, directory: directory) { process, client in
                    _ = try measureIngest(system, process: process, client: client, source: .fixed(costRequests, headers: system.headers), directory: directory,
                                          measureDisk: false)
                    do { return try askCosts(system, client: client, dataset: costData) } catch {
                        return CostResult(failure: "\(error)")
                    }
                })
                // The server has stopped cleanly: a month of 2h blocks to compact into days.
                if i == 0 { compaction = compact(tenantDirectory: directory + "/bench") }
                if promqlRepetitions > 0 {
                    // A fresh process on the same data, settled: its memory is the queries', not what ingest or the cost question left.
                    promQL.append(try withServer(system, directory: directory) { process, client in
                        waitUntilIdle(pid: process.processIdentifier)
                        return askPromQL(system, process: process, client: client, dataset: costData, directory: directory)
                    })
                }
                print("  \(system.name): done")
            }
            report += renderCosts(systems, costs, dataset: costData)
            if promqlRepetitions > 0 { report += renderPromQL(systems, promQL, dataset: costData) }
            if let compaction { report += renderCompaction(compaction, days: costDays) }
        }
        if compactionSeries > 0 {
            print("compaction memory: one day of \(compactionSeries) series x 1,440 samples in twelve 2h blocks")
            let tenantDirectory = try writeDayOfBlocks(series: compactionSeries, storage: root + "/compaction-memory")
            report += renderCompactionMemory(compact(tenantDirectory: tenantDirectory), series: compactionSeries)
            try? FileManager.default.removeItem(atPath: root + "/compaction-memory")
            print("  Tally: done")
        }
        if restartClusters > 0 {
            var restartData = KubecostDataset()
            restartData.clusters = restartClusters
            restartData.nodesPerCluster = restartNodes
            restartData.scrapes = restartMinutes
            // Ending now: no sample is in the future, whatever the time of day (both systems refuse
            // those), and under 3 hours, so neither cuts a block.
            restartData.start = (Int64(Date().timeIntervalSince1970 * 1000) - Int64(restartMinutes) * 60_000) / 60_000 * 60_000
            let restartRequests = restartData.requests(senders: senders)
            print("restart: \(restartData.seriesCount) series x \(restartMinutes) scrapes = \(restartData.sampleCount) samples in the WAL")
            var restarts: [RestartResult] = []
            for (i, system) in systems.enumerated() where !system.name.hasPrefix("VictoriaMetrics") {
                restarts.append(measureRestart(system, directory: root + "/restart-\(i)", requests: restartRequests, dataset: restartData))
                print("  \(system.name): done")
            }
            report += renderRestart(systems.filter { !$0.name.hasPrefix("VictoriaMetrics") }, restarts)
        }
        print(report)
        if let markdown {
            let handle = FileHandle(forWritingAtPath: markdown) ?? { _ = FileManager.default.createFile(atPath: markdown, contents: nil); return FileHandle(forWritingAtPath: markdown)! }()
            handle.seekToEndOfFile()
            handle.write(Data(report.utf8))
            try handle.close()
        }
    }

    /// Ingest of the main dataset into every system, then Tally's Remote-Write 2.0 run.
    func ingestSection(_ systems: [System], root: String) throws -> String {
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
                try measureIngest(system, process: process, client: client, source: .fixed(requests, headers: system.headers), directory: directory)
            })
            print("  \(system.name): done")
        }
        var report = renderIngest(systems, ingest, dataset: dataset, requests: requests.map(\.count).reduce(0, +))
        if let tally = systems.first, tally.name == "Tally" {
            // The peers in Debian do not speak Remote-Write 2.0: Tally alone, the same samples. One
            // run each swings by a fifth on a shared machine, so the versions alternate, each going
            // first in every other pair (the run after another pays for its writeback), and the
            // medians are compared.
            let requests2 = dataset.requests(senders: senders, as: WriteRequestV2Encoder.self)
            var runs: (v1: [IngestResult], v2: [IngestResult]) = ([], [])
            for run in 0..<max(1, wireVersionRuns) {
                for remoteWrite2 in run % 2 == 0 ? [false, true] : [true, false] {
                    let directory = root + "/ingest-rw\(remoteWrite2 ? 2 : 1)-\(run)"
                    let result = try withServer(tally, directory: directory) { process, client in
                        try measureIngest(tally, process: process, client: client, source: .fixed(remoteWrite2 ? requests2 : requests, headers: tally.headers),
                                          directory: directory,
                                          measureDisk: false, remoteWrite2: remoteWrite2)
                    }
                    if !keepData { try? FileManager.default.removeItem(atPath: directory) }
                    if remoteWrite2 { runs.v2.append(result) } else { runs.v1.append(result) }
                }
            }
            print("  Tally, Remote-Write 1.0 and 2.0 alternating, \(runs.v1.count) runs each: done")
            report += renderRemoteWrite2(runs, bytes: (requests.joined().map(\.count).reduce(0, +), requests2.joined().map(\.count).reduce(0, +)))
        }
        return report
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
        ]
        if !prometheus.isEmpty {
            out.append(System(name: "Prometheus 2.42", executable: prometheus,
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
                                  }))
        }
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
        let (process, client) = try start(system, directory: directory)
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        return try body(process, client)
    }

    /// Starts `system` on `directory` and returns once its ready endpoint answers 200 (polled every 5 ms).
    func start(_ system: System, directory: String) throws -> (process: Process, client: LoopbackHTTP) {
        let port = LoopbackHTTP.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: system.executable)
        process.arguments = system.arguments(directory, port)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let client = LoopbackHTTP(port: port, timeoutSeconds: 300)
        let deadline = Date().addingTimeInterval(120)
        while (try? client.request("GET", system.readyPath))?.status != 200 {
            guard Date() < deadline, process.isRunning else {
                if process.isRunning { process.terminate(); process.waitUntilExit() }
                throw ValidationError("\(system.name) did not become ready")
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return (process, client)
    }

    /// Sends every request, lets the server settle, reads its CPU and memory, and with
    /// `measureDisk` its bytes on disk (stopping Tally first, see below).
    func measureIngest(_ system: System, process: Process, client: LoopbackHTTP, source: RequestSource, directory: String,
                       measureDisk: Bool = true, remoteWrite2: Bool = false, settle: Bool = true) throws -> IngestResult {
        let pid = process.processIdentifier
        let before = ProcessStats.read(pid: pid)!
        let started = Date()
        var result = send(source, to: client, remoteWrite2: remoteWrite2)
        result.wallSeconds = Date().timeIntervalSince(started)
        let after = ProcessStats.read(pid: pid)!
        result.cpuSeconds = after.cpuSeconds - before.cpuSeconds
        if settle { system.settle(directory, client) }
        waitUntilIdle(pid: pid)
        let settled = ProcessStats.read(pid: pid) ?? after
        result.cpuSecondsUntilIdle = settled.cpuSeconds - before.cpuSeconds
        result.anonymousGrowth = settled.anonymousBytes - before.anonymousBytes
        result.peakRSS = settled.peakResidentBytes
        guard measureDisk else { return result }
        if system.name == "Tally" {
            // Tally writes what Prometheus readers would skip into blocks at a clean stop, then
            // compacts what it would compact in the background; measure after both.
            process.terminate()
            process.waitUntilExit()
            result.compaction = compact(tenantDirectory: directory + "/bench")
        }
        (result.diskBytes, result.diskSamples) = try system.disk(directory)
        return result
    }

    /// Sends every share of requests from its own thread, in order and on one kept-alive
    /// connection, as Prometheus' shards do, and keeps the shards within `SenderPacer.lead` of each
    /// other in data time, as live shards are.
    func send(_ source: RequestSource, to client: LoopbackHTTP, remoteWrite2: Bool = false) -> IngestResult {
        let message = remoteWrite2
            ? [("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"), ("X-Prometheus-Remote-Write-Version", "2.0.0")]
            : [("Content-Type", "application/x-protobuf"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
        let counts = Mutex(IngestResult())
        let group = DispatchGroup()
        let pacer = SenderPacer(senders: source.senders)
        for sender in 0..<source.senders {
            group.enter()
            Thread {
                var part = IngestResult()
                let connection = LoopbackConnection(client)
                let headers = source.headers(sender)
                source.bodies(sender) { body in
                    let view = remoteWrite2 ? try? RemoteWriteV2Decoder.decode(compressed: body, maxDecodedBytes: 1 << 26)
                        : try? RemoteWriteDecoder.decode(compressed: body, maxDecodedBytes: 1 << 26)
                    let samples = view?.sampleCount ?? 0
                    if let first = view?.samples.first { pacer.start(sender, at: first.timestamp) }
                    part.sent += 1
                    part.sentSamples += samples
                    let answer = try? connection.request("POST", "/api/v1/write", headers: headers + message + [("Content-Encoding", "snappy")], body: body)
                    if let answer, answer.status / 100 == 2 {
                        part.accepted += 1
                        part.acceptedSamples += samples
                    } else {
                        let reason = answer.map { "\($0.status): " + ($0.body.split(separator: "\n").first.map { String($0.prefix(80)) } ?? "") } ?? "no answer"
                        part.refusals[reason, default: 0] += 1
                    }
                }
                pacer.finish(sender)
                counts.withLock {
                    $0.sent += part.sent
                    $0.sentSamples += part.sentSamples
                    $0.accepted += part.accepted
                    $0.acceptedSamples += part.acceptedSamples
                    $0.refusals.merge(part.refusals, uniquingKeysWith: +)
                }
                group.leave()
            }.start()
        }
        group.wait()
        return counts.withLock { $0 }
    }

    /// Runs `tally compact` on a stopped tenant as a child of this process: its CPU from wait4, its
    /// peak RSS (VmHWM; wait4's maxrss would include this process's own, inherited through the
    /// spawn) and the tenant directory's size polled every 20 ms.
    func compact(tenantDirectory: String) -> CompactionRun {
        var run = CompactionRun()
        let before = (try? BlockCatalog.list(tenantDirectory: tenantDirectory)) ?? []
        run.blocksBefore = before.count
        run.samples = before.reduce(0) { $0 + $1.meta.stats.numSamples }
        run.bytesBefore = Self.directoryBytes(tenantDirectory)
        run.peakBytes = run.bytesBefore
        let storage = String(tenantDirectory[..<tenantDirectory.lastIndex(of: "/")!])
        let tenant = String(tenantDirectory[tenantDirectory.index(after: tenantDirectory.lastIndex(of: "/")!)...])
        let arguments = [tally, "compact", "--storage", storage, "--tenant", tenant, "--json"]
        var pid: pid_t = 0
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let started = Date()
        guard posix_spawn(&pid, tally, &actions, nil, &argv, environ) == 0 else {
            run.failure = "could not start \(tally)"
            return run
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, WNOHANG, &usage) == 0 {
            run.peakBytes = max(run.peakBytes, Self.directoryBytes(tenantDirectory))
            run.peakRSS = max(run.peakRSS, ProcessStats.read(pid: pid)?.peakResidentBytes ?? 0)
            usleep(20_000)
        }
        run.wallSeconds = Date().timeIntervalSince(started)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        run.cpuSeconds = seconds(usage.ru_utime) + seconds(usage.ru_stime)
        if status != 0 { run.failure = "tally compact exited with status \(status)" }
        run.blocksAfter = ((try? BlockCatalog.list(tenantDirectory: tenantDirectory)) ?? []).count
        run.bytesAfter = Self.directoryBytes(tenantDirectory)
        run.largestBlock = ((try? BlockCatalog.list(tenantDirectory: tenantDirectory)) ?? []).map(\.bytes).max() ?? 0
        return run
    }

    /// Fills a WAL (no block is cut: under 3 hours of data), SIGKILLs the server, then restarts it
    /// three times on that directory, timing start to ready, and killing it again each time.
    func measureRestart(_ system: System, directory: String, requests: [[[UInt8]]], dataset: KubecostDataset) -> RestartResult {
        var result = RestartResult(series: dataset.seriesCount, samples: dataset.sampleCount)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var process = try start(system, directory: directory)
            let sent = send(.fixed(requests, headers: system.headers), to: process.client)
            kill(process.process.processIdentifier, SIGKILL)
            process.process.waitUntilExit()
            guard sent.acceptedSamples == sent.sentSamples else {
                result.failure = "\(system.name) refused \(sent.sentSamples - sent.acceptedSamples) samples: "
                    + sent.refusals.map { "\($0.value) x `\($0.key)`" }.joined(separator: ", ")
                return result
            }
            let wal = system.name == "Tally" ? directory + "/bench/wal" : directory + "/wal"
            result.walBytes = Self.directoryBytes(wal)
            for _ in 0..<3 {
                let started = Date()
                process = try start(system, directory: directory)
                result.seconds.append(Date().timeIntervalSince(started))
                kill(process.process.processIdentifier, SIGKILL)
                process.process.waitUntilExit()
            }
        } catch {
            result.failure = "\(error)"
        }
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

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
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

    func row(_ label: String, _ values: [Double], format: String) -> String {
        var out = "| \(label) | " + values.map { String(format: format, $0) }.joined(separator: " | ")
        for v in values.dropFirst() { out += " | " + (v == 0 ? "n/a" : String(format: "%.2f", values[0] / v)) }
        return out + " |\n"
    }

    /// Date, machine, versions and the command, for the head of a report.
    func machineAndVersions(_ systems: [System]) -> String {
        func firstLine(_ executable: String, _ arguments: [String]) -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            guard (try? process.run()) != nil else { return "unknown" }
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return text.split(separator: "\n").first.map(String.init) ?? "unknown"
        }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?.split(separator: "\n").first?
            .split(separator: " ").dropFirst().first { !$0.isEmpty }.flatMap { Int($0) } ?? 0
        var out = "\n## `tally-bench` run of \(ISO8601DateFormatter().string(from: Date()))\n\n"
        out += "- Command: `\(CommandLine.arguments.map { URL(fileURLWithPath: $0).lastPathComponent == "tally-bench" ? "tally-bench" : $0 }.joined(separator: " "))`"
        out += " (effective: `--hours \(hours) --clusters \(clusters) --nodes \(nodes) --senders \(senders) --cost-days \(costDays) "
        out += "--promql-repetitions \(promqlRepetitions) --restart-clusters \(restartClusters) --restart-nodes \(restartNodes) --restart-minutes \(restartMinutes) --wire-version-runs \(wireVersionRuns) "
        out += "--tenant-corpus-series \(tenantCorpusSeries) --tenant-corpus-hours \(tenantCorpusHours) --tenant-corpus-runs \(tenantCorpusRuns) "
        out += "--sweep-hours \(sweepHours) --sweep-runs \(sweepRuns) --head-memory-series \(headMemorySeries)`)\n"
        out += "- Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores of \(cpu), \(memory / 1024) MiB\n"
        out += "- Tally: release build of \(firstLine("/usr/bin/git", ["rev-parse", "--short", "HEAD"])); "
        for system in systems.dropFirst() {
            let package = system.name.hasPrefix("Prometheus") ? "prometheus" : "victoria-metrics"
            out += system.name + ": Debian package `" + package + " " + firstLine("/usr/bin/dpkg-query", ["-W", "-f", "${Version}", package]) + "`; "
        }
        return String(out.dropLast(2)) + "\n"
    }

    func renderIngest(_ systems: [System], _ results: [IngestResult], dataset: KubecostDataset, requests: Int) -> String {
        var out = "\n### Ingest\n\n"
        out += "Data: \(dataset.seriesCount) series x \(dataset.scrapes) one-minute "
        out += "scrapes = \(dataset.sampleCount) samples in \(requests) requests of up to 500 samples from \(senders) senders, seed \(dataset.seed).\n\n"
        out += header(systems)
        out += "| accepted samples | " + results.map { r in
            String(format: "%d of %d (%.2f%%)", r.acceptedSamples, r.sentSamples, 100 * Double(r.acceptedSamples) / Double(max(r.sentSamples, 1)))
        }.joined(separator: " | ") + String(repeating: " | ", count: systems.count - 1) + " |\n"
        out += row("server CPU seconds", results.map(\.cpuSeconds), format: "%.2f")
        out += row("accepted samples per server CPU-second", results.map { Double($0.acceptedSamples) / $0.cpuSeconds }, format: "%.0f")
        out += row("the same, with CPU counted until the server is idle", results.map(Self.rate), format: "%.0f")
        out += row("wall-clock ingest (s)", results.map(\.wallSeconds), format: "%.1f")
        out += row("peak RSS (MiB)", results.map { Double($0.peakRSS) / 1_048_576 }, format: "%.1f")
        out += row("anonymous memory per series, settled (B)", results.map { Double($0.anonymousGrowth) / Double(dataset.seriesCount) }, format: "%.0f")
        out += row("bytes per sample on disk", results.map { Double($0.diskBytes) / Double($0.diskSamples.map { max($0, 1) } ?? UInt64(dataset.sampleCount)) }, format: "%.3f")
        for (system, result) in zip(systems, results) where !result.refusals.isEmpty {
            out += "\n\(system.name) refused: " + result.refusals.sorted { $0.key < $1.key }.map { "\($0.value) x `\($0.key)`" }.joined(separator: ", ") + "."
        }
        out += "\nRatios are Tally / peer. Server CPU is counted while the requests are sent, then (second row) until the server is idle "
        out += "again, which takes in the background work the data caused: Tally's block cuts, Prometheus' head compaction (it is waited for), "
        out += "VictoriaMetrics' merges. Bytes per sample: Tally's blocks after `tally compact` and Prometheus' blocks, over the samples their "
        out += "`meta.json` count (the head's last hours are not in blocks); VictoriaMetrics' whole data directory after `/internal/force_flush` "
        out += "over all samples sent.\n"
        if let c = results.first?.compaction {
            out += "Tally's compaction of this run: \(c.blocksBefore) -> \(c.blocksAfter) blocks"
            out += c.failure.map { " FAILED: \($0)" } ?? String(format: ", %.2f CPU s", c.cpuSeconds)
            out += ".\n"
        }
        return out
    }

    /// Tally's ingest of the same samples as Remote-Write 1.0 and 2.0: medians of alternating runs.
    func renderRemoteWrite2(_ runs: (v1: [IngestResult], v2: [IngestResult]), bytes: (v1: Int, v2: Int)) -> String {
        let cpu = (Self.median(runs.v1.map(\.cpuSecondsUntilIdle)), Self.median(runs.v2.map(\.cpuSecondsUntilIdle)))
        let accepted = (Double(runs.v1.map(\.acceptedSamples).min() ?? 0), Double(runs.v2.map(\.acceptedSamples).min() ?? 0))
        var out = "\n### Ingest, Remote-Write 2.0 (Tally only: the peers in Debian do not speak it)\n\n"
        out += "The same samples, sent as 2.0 requests of the same size. \(runs.v1.count) runs of each version in pairs, each version first in "
        out += "every other pair, each run on a fresh "
        out += "server and store; medians (accepted samples: the fewest of any run). Server CPU is counted from the first request until the "
        out += "server is idle again, so the block cuts the data causes count in full in every run, not only when they end before the last "
        out += "answer.\n\n| | 1.0 | 2.0 | 2.0 / 1.0 |\n|---|---|---|---|\n"
        let figures: [(String, Double, Double, String)] = [
            ("accepted samples", accepted.0, accepted.1, "%.0f"),
            ("server CPU seconds, until idle", cpu.0, cpu.1, "%.2f"),
            ("accepted samples per server CPU-second", accepted.0 / max(cpu.0, 1e-9), accepted.1 / max(cpu.1, 1e-9), "%.0f"),
            ("wall-clock ingest (s)", Self.median(runs.v1.map(\.wallSeconds)), Self.median(runs.v2.map(\.wallSeconds)), "%.1f"),
            ("compressed request bytes", Double(bytes.v1), Double(bytes.v2), "%.0f"),
        ]
        for (name, one, two, format) in figures {
            out += "| \(name) | \(String(format: format, one)) | \(String(format: format, two)) | \(String(format: "%.2f", two / max(one, 1e-9))) |\n"
        }
        func each(_ results: [IngestResult]) -> String {
            results.map { String(format: "%.2f", $0.cpuSecondsUntilIdle) }.joined(separator: ", ")
        }
        let pairs = zip(runs.v1, runs.v2).map { $1.cpuSecondsUntilIdle / max($0.cpuSecondsUntilIdle, 1e-9) }
        out += "\nServer CPU seconds until idle of each pair's runs: 1.0 \(each(runs.v1)); 2.0 \(each(runs.v2)). "
        out += String(format: "Median of the 2.0 / 1.0 ratio within each pair: %.2f.\n", Self.median(pairs))
        let refusals = runs.v2.flatMap(\.refusals)
        if !refusals.isEmpty { out += "\n2.0 refused: " + refusals.map { "\($0.value) x `\($0.key)`" }.joined(separator: ", ") + ".\n" }
        return out
    }

    func renderCompaction(_ c: CompactionRun, days: Int) -> String {
        var out = "\n### Compaction: \(days) days of 2h blocks into days (`tally compact` on the stopped cost-question store)\n\n"
        if let failure = c.failure { return out + "FAILED: \(failure)\n" }
        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        out += "| figure | value |\n|---|---|\n"
        out += "| blocks | \(c.blocksBefore) -> \(c.blocksAfter) |\n"
        out += "| samples rewritten | \(c.samples) |\n"
        out += String(format: "| wall / CPU seconds | %.2f / %.2f |\n", c.wallSeconds, c.cpuSeconds)
        out += String(format: "| samples per CPU-second | %.0f |\n", Double(c.samples) / max(c.cpuSeconds, 1e-9))
        out += String(format: "| CPU per one-day merge (ms) | %.1f |\n", 1000 * c.cpuSeconds / Double(max(days, 1)))
        out += "| peak RSS of `tally compact` (VmHWM, polled) | \(mib(c.peakRSS)) |\n"
        out += "| tenant size before / peak / after | \(mib(c.bytesBefore)) / \(mib(c.peakBytes)) / \(mib(c.bytesAfter)) |\n"
        out += String(format: "| peak extra disk, polled | %@ (%.0f%% of the tenant) |\n", mib(c.peakBytes - c.bytesBefore), 100 * Double(c.peakBytes - c.bytesBefore) / Double(max(c.bytesBefore, 1)))
        out += String(format: "| largest block written (bound on extra disk) | %@ (%.0f%% of the tenant) |\n", mib(c.largestBlock), 100 * Double(c.largestBlock) / Double(max(c.bytesBefore, 1)))
        return out + "\nThe size is polled every 20 ms, so short-lived children can be missed; the bound holds because merges run one at a time "
            + "and each child is complete before its parents go.\n"
    }

    func renderRestart(_ systems: [System], _ results: [RestartResult]) -> String {
        guard let first = results.first else { return "" }
        var out = "\n### Restart after SIGKILL: \(first.series) series, \(first.samples) samples in the WAL (no block cut)\n\n"
        out += header(systems)
        out += row("WAL size (MiB)", results.map { Double($0.walBytes) / 1_048_576 }, format: "%.1f")
        out += row("start to ready, median of 3 (s)", results.map { $0.seconds.count == 3 ? $0.seconds.sorted()[1] : 0 }, format: "%.2f")
        for (system, result) in zip(systems, results) {
            if let failure = result.failure { out += "\n\(system.name): \(failure)" }
        }
        return out + "\nEach start is timed from spawning the process to its ready endpoint answering 200, polled every 5 ms.\n"
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

/// Keeps concurrent senders close in data time. Unpaced, a sender that gets ahead by hours makes a
/// server cut its head past the others' samples: Prometheus then refuses them as out of bounds
/// (17% of the ingest in one run), which no live set of shards would cause. A sender waits before
/// a request more than `lead` newer than the slowest other sender's last one; the slowest never
/// waits, so all finish.
final class SenderPacer: @unchecked Sendable {
    static let lead: Int64 = 10 * 60_000
    private let condition = NSCondition()
    /// Timestamp of each sender's latest request; `.max` once it has finished.
    private var progress: [Int64]

    init(senders: Int) { progress = Array(repeating: .min, count: senders) }

    func start(_ sender: Int, at timestamp: Int64) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let others = progress.enumerated().filter { $0.offset != sender }.map(\.element).min() ?? .max
            if others >= timestamp - Self.lead || progress[sender] <= others { break }
            condition.wait()
        }
        progress[sender] = timestamp
        condition.broadcast()
    }

    func finish(_ sender: Int) {
        condition.lock()
        progress[sender] = .max
        condition.broadcast()
        condition.unlock()
    }
}

/// Where a run's requests come from: how many senders, the headers each sends, and each sender's
/// bodies in order, handed over one at a time so that a corpus too large to hold can be made as it
/// is sent (on the sender's thread: its CPU is the client's, never counted as the server's).
struct RequestSource: Sendable {
    let senders: Int
    let headers: @Sendable (_ sender: Int) -> [(String, String)]
    let bodies: @Sendable (_ sender: Int, _ body: ([UInt8]) -> Void) -> Void

    /// Bodies made beforehand, the same headers from every sender.
    static func fixed(_ requests: [[[UInt8]]], headers: [(String, String)]) -> RequestSource {
        RequestSource(senders: requests.count, headers: { _ in headers }, bodies: { sender, body in requests[sender].forEach(body) })
    }

    /// `corpus` made as it is sent, each sender naming its tenant in Tally's header (the peers, which
    /// have no tenants, ignore it; the tenants' series differ by `cluster_id`).
    static func made(_ corpus: TenantCorpus) -> RequestSource {
        RequestSource(senders: corpus.senders, headers: { [("THANOS-TENANT", corpus.tenant(ofSender: $0))] },
                      bodies: { sender, body in corpus.forEachRequest(sender: sender, body) })
    }
}
