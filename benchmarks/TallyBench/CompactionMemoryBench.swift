import Foundation
import TallyStorage

/// Issue 14's bound on compaction memory: one day of 2h blocks for a large tenant, merged by
/// `tally compact` into 6h and then one 24h block, with the child's peak RSS measured. The blocks are
/// written directly (no server): only the compaction is measured.
extension TallyBench {
    /// Writes twelve 2h blocks of `series` Kubecost-shaped series, one sample a minute each, for the
    /// UTC day before today, into `<storage>/bench`; returns the tenant directory.
    func writeDayOfBlocks(series: Int, storage: String) throws -> String {
        let tenantDirectory = storage + "/bench"
        try FileManager.default.createDirectory(atPath: tenantDirectory, withIntermediateDirectories: true)
        let day: Int64 = 86_400_000, twoHours: Int64 = 7_200_000, minute: Int64 = 60_000
        let start = (Int64(Date().timeIntervalSince1970 * 1000) / day - 1) * day
        let labels = (0..<series).map { i -> [(String, String)] in
            let node = i / 100, pod = i / 4
            return [("__name__", "container_cpu_allocation"), ("cluster", "cluster-\(i % 7)"), ("container", "container-\(i % 4)"),
                    ("namespace", "namespace-\(pod % 53)"), ("node", "ip-10-0-\(node / 250)-\(node % 250).ec2.internal"),
                    ("pod", "deployment-\(pod)-7d9f8b6c5-x\(pod % 1000)")]
        }
        for block in 0..<12 {
            let blockStart = start + Int64(block) * twoHours
            let blockSeries = labels.enumerated().map { i, pairs -> BlockSeries in
                var chunk = XORChunk()
                for k in 0..<120 {
                    // A request that changes now and then, as allocations do.
                    let value = Double(1 + (i + (block * 120 + k) / 30) % 8) * 0.25
                    chunk.append(timestamp: blockStart + Int64(k) * minute, valueBits: value.bitPattern)
                }
                return BlockSeries(labels: pairs, chunks: [EncodedChunk(minTime: blockStart, maxTime: blockStart + 119 * minute, bytes: chunk.bytes)])
            }
            _ = try BlockWriter.write(series: blockSeries, minTime: blockStart, maxTime: blockStart + twoHours, into: tenantDirectory, tenant: "bench")
            print("  block \(block + 1) of 12 written")
        }
        return tenantDirectory
    }

    func renderCompactionMemory(_ c: CompactionRun, series: Int) -> String {
        var out = "\n### Compaction in bounded memory: one day of \(series) series x 1,440 samples (twelve 2h blocks into one 24h block)\n\n"
        if let failure = c.failure { return out + "FAILED: \(failure)\n" }
        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        out += "| figure | value |\n|---|---|\n"
        out += "| blocks | \(c.blocksBefore) -> \(c.blocksAfter) |\n"
        out += "| samples | \(c.samples) |\n"
        out += String(format: "| wall / CPU seconds | %.1f / %.1f |\n", c.wallSeconds, c.cpuSeconds)
        out += "| peak RSS of `tally compact` (VmHWM, polled) | \(mib(c.peakRSS)) |\n"
        out += String(format: "| peak RSS per series | %.0f bytes |\n", Double(c.peakRSS) / Double(max(series, 1)))
        out += "| tenant size before / after | \(mib(c.bytesBefore)) / \(mib(c.bytesAfter)) |\n"
        return out + "\nThe aim is at most 512 MiB for 1,000,000 series: memory follows the series count and one series' chunks, never the samples.\n"
    }
}
