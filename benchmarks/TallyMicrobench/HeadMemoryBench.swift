import CAllocationCounter
import Foundation
import TallyLoad
import TallyStorage
import TallyWire

/// Head memory per active series: a fresh tenant filled with Kubecost-shaped series x `hours` of
/// one-minute samples through the server's append path (series known by their encoded label bytes,
/// else validated and looked up by labels), blocks cut as the server cuts them, then the process's
/// malloc figures and the head's own breakdown, per series. 2 hours: 120 samples a series, one open
/// chunk, no cut; 3 hours: a closed chunk and an open one, just before the first cut.
struct HeadMemoryBench {
    let seriesTarget: Int
    let hours: Int

    func run() throws {
        var dataset = KubecostDataset()
        dataset.clusters = 10
        // 37 series a node (10 pods, 2 volumes) and 5 a cluster.
        dataset.nodesPerCluster = max(1, (seriesTarget - 50) / (dataset.clusters * 37))
        dataset.scrapes = hours * 60
        let root = NSTemporaryDirectory() + "tally-head-memory-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let db = try TenantDatabase.open(directory: root, tenant: "bench", options: StorageOptions(syncPolicy: .interval(.seconds(3600))))
        defer { try? db.close() }

        let heapBefore = tally_heap_in_use(), rssBefore = Self.rssAnon()
        var appendNanoseconds: UInt64 = 0, appendAllocations: UInt64 = 0, samples = 0
        try dataset.generateRequests(senders: 1) { _, body in
            var view = try RemoteWriteDecoder.decode(compressed: body, maxDecodedBytes: 1 << 26)
            let started = DispatchTime.now().uptimeNanoseconds, allocations = tally_allocation_count()
            samples += try Self.append(&view, to: db)
            appendNanoseconds += DispatchTime.now().uptimeNanoseconds - started
            appendAllocations += tally_allocation_count() - allocations
        }
        // Waits for a cut the appends started, and makes one that is due.
        try db.cutBlock()
        let blocks = db.blockMetas.count
        let heap = Int(tally_heap_in_use()) - Int(heapBefore)
        let rss = Self.rssAnon() - rssBefore
        let memory = db.headMemory()
        let n = Double(memory.series)

        print("head: \(memory.series) series, \(memory.samples) samples (\(samples) appended, \(blocks) blocks cut)")
        print(String(format: "append (WAL record + head, no fsync): %.1f ns and %.4f allocations a sample", Double(appendNanoseconds) / Double(samples),
                     Double(appendAllocations) / Double(samples)))
        print(String(format: "malloc in use (mallinfo2 uordblks + hblkhd) growth: %.0f B a series", Double(heap) / n))
        print(String(format: "RssAnon growth: %.0f B a series", Double(rss) / n))
        print("\n| structure | bytes a series | share |\n|---|---|---|")
        for part in memory.parts {
            print(String(format: "| %@ | %.1f | %.1f%% |", part.name, Double(part.bytes) / n, 100 * Double(part.bytes) / Double(max(heap, 1))))
        }
        print(String(format: "| head, counted above | %.1f | %.1f%% |", Double(memory.total) / n, 100 * Double(memory.total) / Double(max(heap, 1))))
        print(String(format: "| rest of malloc growth (WAL buffers, batch buffer, uncounted) | %.1f | |", Double(heap - memory.total) / n))
    }

    /// The ingester's loop, less its verdict tally: a series known by its encoded labels skips
    /// validation and lookup; any other is validated, found or created, and remembered.
    static func append(_ view: inout WriteRequestView, to db: TenantDatabase) throws -> Int {
        let body = view.body
        return try body.withUnsafeBytes { base in
            try db.append { batch in
                var accepted = 0
                var labels: [RawLabel] = []
                for index in view.series.indices {
                    let series = view.series[index]
                    let encoded = UnsafeRawBufferPointer(rebasing: base[series.encodedLabels.range])
                    var handle: SeriesHandle?
                    switch batch.knownSeries(encodedLabels: encoded) {
                    case let .known(known): handle = known
                    case let .unknown(key) where view.validateLabels(ofSeriesAt: index) == nil:
                        labels = view.labels(of: view.series[index]).map {
                            RawLabel(name: UnsafeRawBufferPointer(rebasing: base[$0.name.range]), value: UnsafeRawBufferPointer(rebasing: base[$0.value.range]))
                        }
                        handle = labels.withUnsafeBufferPointer { try? batch.series($0, encodedLabels: encoded, key: key) }
                    case .unknown: break
                    }
                    guard let handle else { continue }
                    for sample in view.samples(of: series) where batch.add(handle, timestamp: sample.timestamp, valueBits: sample.valueBits) == .accepted {
                        accepted += 1
                    }
                }
                return accepted
            }.0
        }
    }

    /// Anonymous resident memory of this process (`RssAnon` in /proc/self/status), in bytes.
    static func rssAnon() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
              let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return kb * 1024
    }
}
