import Foundation
import TallyLoad

/// The second corpus (`TenantCorpus`, data Tally was not tuned on) in every system over several
/// rounds; a sweep of that corpus' properties, one at a time, against VictoriaMetrics; and the head's
/// memory per active series with two hours of samples.
extension TallyBench {
    /// The second corpus over `hours`, ending a minute before now (so that no peer refuses a sample as
    /// too old or in the future), on the minute.
    func tenantCorpus(hours: Int) -> TenantCorpus {
        var corpus = TenantCorpus()
        corpus.seriesPerTenant = tenantCorpusSeries
        corpus.scrapes = hours * 60
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        corpus.start = (now - Int64(corpus.scrapes + 1) * corpus.scrapeInterval) / 60_000 * 60_000
        return corpus
    }

    /// Samples a server CPU-second, counted from the first request until the server is idle again, so
    /// that background work the data caused (block cuts, merges, head compaction) counts in full.
    static func rate(_ result: IngestResult) -> Double { Double(result.acceptedSamples) / max(result.cpuSecondsUntilIdle, 1e-9) }

    func tenantCorpusSection(_ systems: [System], root: String) throws -> String {
        let corpus = tenantCorpus(hours: tenantCorpusHours)
        print("second corpus: \(corpus.summary); \(tenantCorpusRuns) rounds")
        var results = [[IngestResult]](repeating: [], count: systems.count)
        var storedBytes = [Int](repeating: 0, count: systems.count)
        for round in 0..<max(1, tenantCorpusRuns) {
            for (i, system) in systems.enumerated() {
                let directory = root + "/corpus-\(i)-\(round)"
                results[i].append(try withServer(system, directory: directory) { process, client in
                    let result = try measureIngest(system, process: process, client: client, source: .made(corpus), directory: directory, measureDisk: false)
                    if round == 0 {
                        if system.name == "Tally" {
                            // Stopped cleanly and compacted, as it would compact in the background.
                            process.terminate()
                            process.waitUntilExit()
                            for tenant in corpus.tenantNames { _ = compact(tenantDirectory: directory + "/" + tenant) }
                        }
                        storedBytes[i] = Self.directoryBytes(directory)
                    }
                    return result
                })
                if !keepData || round > 0 { try? FileManager.default.removeItem(atPath: directory) }
            }
            print("  round \(round + 1): done")
        }
        return renderTenantCorpus(systems, results, storedBytes: storedBytes, corpus: corpus)
    }

    func renderTenantCorpus(_ systems: [System], _ results: [[IngestResult]], storedBytes: [Int], corpus: TenantCorpus) -> String {
        func spread(_ values: [Double], _ format: String) -> String {
            String(format: format, Self.median(values)) + " (" + String(format: format, values.min() ?? 0) + "-" + String(format: format, values.max() ?? 0) + ")"
        }
        var out = "\n### Ingest, second corpus (not the data Tally was tuned on), \(results[0].count) rounds\n\n"
        out += "Data: \(corpus.summary), seed \(corpus.seed). One sender a tenant sends the tenant's header (the peers, which have no tenants, "
        out += "store the four clusters side by side). Each round runs every system once, in turn, on a fresh server and directory; figures are "
        out += "medians with the range over rounds in brackets. Server CPU is counted from the first request until the server is idle again.\n\n"
        out += header(systems)
        let rates = results.map { $0.map(Self.rate) }
        out += "| accepted samples, fewest of any run | " + results.map { r in
            "\(r.map(\.acceptedSamples).min() ?? 0) of \(corpus.sampleCount)"
        }.joined(separator: " | ") + String(repeating: " | ", count: systems.count - 1) + " |\n"
        out += "| server CPU seconds until idle | " + results.map { spread($0.map(\.cpuSecondsUntilIdle), "%.2f") }.joined(separator: " | ")
        out += String(repeating: " | ", count: systems.count - 1) + " |\n"
        out += "| accepted samples per server CPU-second | " + rates.map { spread($0, "%.0f") }.joined(separator: " | ")
        for peer in rates.dropFirst() {
            let perRound = zip(rates[0], peer).map { $0 / max($1, 1e-9) }
            out += " | " + spread(perRound, "%.2f")
        }
        out += " |\n"
        out += row("peak RSS (MiB), median", results.map { Self.median($0.map { Double($0.peakRSS) / 1_048_576 }) }, format: "%.1f")
        out += row("whole storage directory, bytes per sample (first round)", storedBytes.map { Double($0) / Double(corpus.sampleCount) }, format: "%.3f")
        for (system, runs) in zip(systems, results) {
            let refusals = runs.flatMap(\.refusals)
            if !refusals.isEmpty { out += "\n\(system.name) refused: " + refusals.map { "\($0.value) x `\($0.key)`" }.joined(separator: ", ") + "." }
        }
        out += "\nThe ratio of samples per CPU-second is Tally's over the peer's within each round (median, range). The storage directory is "
        out += "measured whole, WAL included: Tally's after a clean stop and `tally compact` of each tenant, Prometheus' once its blocks "
        out += "stop growing, VictoriaMetrics' after `/internal/force_flush`.\n"
        return out
    }

    /// One property of the second corpus changed at a time, over `sweepHours`, Tally and
    /// VictoriaMetrics alternating which goes first in each run.
    func sweepSection(_ systems: [System], root: String) throws -> String {
        guard let tally = systems.first, let peer = systems.first(where: { $0.name.hasPrefix("VictoriaMetrics") }) else { return "" }
        let base = tenantCorpus(hours: sweepHours)
        var variants: [(name: String, corpus: TenantCorpus)] = [("the second corpus' shape", base)]
        func vary(_ name: String, _ change: (inout TenantCorpus) -> Void) {
            var corpus = base
            change(&corpus)
            variants.append((name, corpus))
        }
        vary("100-120 samples a request") { $0.samplesPerRequest = 100...120 }
        vary("4,000-4,800 samples a request") { $0.samplesPerRequest = 4_000...4_800 }
        vary("4 senders a tenant") { $0.sendersPerTenant = 4 }
        vary("1 tenant with 4x the series, 1 sender") { $0.tenants = 1; $0.seriesPerTenant *= 4 }
        vary("constant values") { $0.noise = .constant }
        vary("a random value in every sample") { $0.noise = .random }
        vary("5 labels of 4-12 characters") { $0.labelsPerSeries = 5...5; $0.valueLength = 4...12 }
        vary("9 labels of 40 characters") { $0.labelsPerSeries = 9...9; $0.valueLength = 40...40 }
        print("sweep: \(variants.count) variants of \(base.summary), \(sweepRuns) runs each against \(peer.name)")
        var rows: [(name: String, tally: [Double], peer: [Double])] = []
        for variant in variants {
            var rates: (tally: [Double], peer: [Double]) = ([], [])
            for run in 0..<max(1, sweepRuns) {
                for system in run % 2 == 0 ? [tally, peer] : [peer, tally] {
                    let directory = root + "/sweep-\(system.name.prefix(5))-\(run)"
                    let result = try withServer(system, directory: directory) { process, client in
                        try measureIngest(system, process: process, client: client, source: .made(variant.corpus), directory: directory, measureDisk: false)
                    }
                    try? FileManager.default.removeItem(atPath: directory)
                    if system.name == tally.name { rates.tally.append(Self.rate(result)) } else { rates.peer.append(Self.rate(result)) }
                }
            }
            rows.append((variant.name, rates.tally, rates.peer))
            print("  \(variant.name): done")
        }
        var out = "\n### What moves the ingest ratio: the second corpus' properties one at a time, Tally against \(peer.name)\n\n"
        out += "Each row changes one property of \(base.summary). \(max(1, sweepRuns)) runs of each system, alternating which goes first; "
        out += "accepted samples per server CPU-second (until idle), medians; the ratio is Tally's over the peer's within each run, "
        out += "median (range).\n\n| variant | Tally | \(peer.name) | Tally / \(peer.name.split(separator: " ").first!) |\n|---|---|---|---|\n"
        for row in rows {
            let ratios = zip(row.tally, row.peer).map { $0 / max($1, 1e-9) }
            out += String(format: "| %@ | %.0f | %.0f | %.2f (%.2f-%.2f) |\n", row.name, Self.median(row.tally), Self.median(row.peer),
                          Self.median(ratios), ratios.min() ?? 0, ratios.max() ?? 0)
        }
        return out
    }

    /// One tenant of `headMemorySeries` series with two hours of one-minute samples, all in the head
    /// (no system cuts a block before three hours), sent by four shards: each server's anonymous
    /// memory growth from before the first request until it is idle, per series.
    func headMemorySection(_ systems: [System], root: String) throws -> String {
        var corpus = tenantCorpus(hours: 2)
        (corpus.tenants, corpus.seriesPerTenant, corpus.sendersPerTenant) = (1, headMemorySeries, 4)
        print("head memory: \(corpus.summary)")
        var results: [IngestResult] = []
        for (i, system) in systems.enumerated() {
            let directory = root + "/head-memory-\(i)"
            results.append(try withServer(system, directory: directory) { process, client in
                // Nothing is cut, so there is nothing to wait for beyond idleness.
                try measureIngest(system, process: process, client: client, source: .made(corpus), directory: directory, measureDisk: false, settle: false)
            })
            if !keepData { try? FileManager.default.removeItem(atPath: directory) }
            print("  \(system.name): done")
        }
        var out = "\n### Head memory per active series, 2 hours of one-minute samples\n\n"
        out += "Data: \(corpus.summary), seed \(corpus.seed). Anonymous resident memory (RssAnon) of the server, from before the first "
        out += "request until it is idle, over the series; the process's fixed buffers are spread over many series.\n\n"
        out += header(systems)
        out += "| accepted samples | " + results.map { "\($0.acceptedSamples) of \(corpus.sampleCount)" }.joined(separator: " | ")
        out += String(repeating: " | ", count: systems.count - 1) + " |\n"
        out += row("anonymous memory per series, settled (B)", results.map { Double($0.anonymousGrowth) / Double(corpus.seriesPerTenant) }, format: "%.0f")
        out += row("peak RSS (MiB)", results.map { Double($0.peakRSS) / 1_048_576 }, format: "%.1f")
        out += row("accepted samples per server CPU-second (until idle)", results.map(Self.rate), format: "%.0f")
        return out
    }
}
