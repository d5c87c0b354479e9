import ArgumentParser
import CAllocationCounter
import Foundation
import TallyCost
import TallyLoad
import TallyStorage
import TallyWire

/// The hot paths one at a time, in-process, on Kubecost-shaped data: nanoseconds and heap
/// allocations per item (allocations counted by interposing malloc; see CAllocationCounter).
@main
struct TallyMicrobench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-microbench",
        abstract: "Time and count allocations of decode, append, chunk encode/decode, postings intersection and cost rollups.")

    @Option(help: "Clusters of the dataset (each with --nodes nodes of 10 pods).")
    var clusters = 3

    @Option(help: "Nodes per cluster.")
    var nodes = 20

    @Option(help: "Repetitions of each measurement; the fastest is reported.")
    var repetitions = 5

    @Option(help: "Run only the measurements whose name starts with this (e.g. to profile one with perf).")
    var only: String?

    @Option(help: "Measure only the head's memory, filled with about this many series x 120 one-minute samples.")
    var headMemory: Int?

    @Option(help: "Hours of one-minute samples for --head-memory (blocks are cut as the server cuts them).")
    var hours = 2

    struct Measurement {
        let name: String
        let unit: String
        let items: Int
        let nanoseconds: Double
        let allocations: UInt64
    }

    /// Runs `body` (which returns how many items it did) `repetitions` times after one warm-up
    /// run, and keeps the fastest run's time with its allocation count. `prepare` runs untimed
    /// before each run and hands `body` what it made.
    func measure<T>(_ name: String, unit: String, prepare: () throws -> T, _ body: (T) throws -> Int) rethrows -> Measurement {
        if let only, !name.hasPrefix(only) { return Measurement(name: name, unit: unit, items: 0, nanoseconds: 0, allocations: 0) }
        _ = try body(try prepare())
        var best: Measurement?
        for _ in 0..<repetitions {
            let prepared = try prepare()
            let allocationsBefore = tally_allocation_count()
            let started = DispatchTime.now().uptimeNanoseconds
            let items = try body(prepared)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started)
            let allocations = tally_allocation_count() - allocationsBefore
            if best == nil || elapsed < best!.nanoseconds {
                best = Measurement(name: name, unit: unit, items: items, nanoseconds: elapsed, allocations: allocations)
            }
        }
        return best!
    }

    func measure(_ name: String, unit: String, _ body: () throws -> Int) rethrows -> Measurement {
        try measure(name, unit: unit, prepare: {}, body)
    }

    func run() throws {
        if let headMemory { return try HeadMemoryBench(seriesTarget: headMemory, hours: hours).run() }
        var dataset = KubecostDataset()
        dataset.clusters = clusters
        dataset.nodesPerCluster = nodes
        dataset.scrapes = 120
        let requests = dataset.requests(senders: 1)[0]
        let root = NSTemporaryDirectory() + "tally-microbench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        print("data: \(dataset.seriesCount) series x \(dataset.scrapes) scrapes = \(dataset.sampleCount) samples in \(requests.count) requests")

        var results: [Measurement] = []
        let decodedBytes = try requests.reduce(0) { $0 + (try SnappyBlock.decompress($1, maxDecodedBytes: 1 << 26).count) }
        results.append(try measure("snappy decompress alone (\(decodedBytes / dataset.sampleCount) bytes a sample)", unit: "sample") {
            for body in requests { _ = try SnappyBlock.decompress(body, maxDecodedBytes: 1 << 26) }
            return dataset.sampleCount
        })
        results.append(try measure("snappy + protobuf decode + label checks", unit: "sample") {
            var samples = 0
            for body in requests { samples += try RemoteWriteDecoder.decode(compressed: body, maxDecodedBytes: 1 << 26).sampleCount }
            return samples
        })
        // As the receiver decodes: 1.0 leaves label checks to series it does not know; 2.0 applies
        // only its own rules (sorted, non-empty) and keeps each label's symbols.
        results.append(try measure("snappy + protobuf decode as received, 1.0", unit: "sample") {
            try requests.reduce(0) { $0 + (try RemoteWriteDecoder.decode(compressed: $1, maxDecodedBytes: 1 << 26, validatingLabels: false).sampleCount) }
        })
        let requests2 = dataset.requests(senders: 1, as: WriteRequestV2Encoder.self)[0]
        results.append(try measure("snappy + protobuf decode as received, 2.0", unit: "sample") {
            try requests2.reduce(0) { $0 + (try RemoteWriteV2Decoder.decode(compressed: $1, maxDecodedBytes: 1 << 26).sampleCount) }
        })

        let views = try requests.map { try RemoteWriteDecoder.decode(compressed: $0, maxDecodedBytes: 1 << 26) }
        let series = Self.seriesSamples(views)
        var run = 0
        // The WAL as written (snappy-compressed records, the default) and as it was before (plain).
        for compress in [true, false] {
            let options = StorageOptions(syncPolicy: .interval(.seconds(3600)), walCompression: compress, blockRange: 30 * 86_400_000)
            let suffix = compress ? "" : ", uncompressed WAL"
            var opened: [TenantDatabase] = []
            results.append(try measure("append: WAL record + head (no fsync\(suffix))", unit: "sample", prepare: { () throws -> TenantDatabase in
                run += 1
                let db = try TenantDatabase.open(directory: root + "/append-\(run)", tenant: "bench", options: options)
                opened.append(db)
                return db
            }) { db in try Self.append(series, to: db) })
            for db in opened { try db.close() }
            let replay = root + "/replay-\(compress)"
            let replayed = try TenantDatabase.open(directory: replay, tenant: "bench", options: options)
            _ = try Self.append(series, to: replayed)
            try replayed.close()
            let walBytes = try FileManager.default.contentsOfDirectory(atPath: replay + "/wal").reduce(0) { total, name in
                total + ((try FileManager.default.attributesOfItem(atPath: replay + "/wal/" + name)[.size] as? Int) ?? 0)
            }
            print(String(format: "WAL, %@: %d bytes, %.2f bytes a sample", compress ? "compressed" : "uncompressed", walBytes,
                         Double(walBytes) / Double(dataset.sampleCount)))
            results.append(try measure("WAL replay at open (restart\(suffix))", unit: "sample") {
                try TenantDatabase.open(directory: replay, tenant: "bench", readOnly: true).replay.samples
            })
        }

        let samples = series.map(\.samples)
        results.append(measure("XOR chunk encode (120 samples a chunk)", unit: "sample") {
            samples.reduce(0) { n, s in n + EncodedChunk.encode(s[...]).reduce(0) { $0 + $1.sampleCount } }
        })
        let chunks = samples.flatMap { EncodedChunk.encode($0[...]).map(\.bytes) }
        results.append(measure("XOR chunk decode", unit: "sample") {
            var n = 0
            for bytes in chunks {
                bytes.withUnsafeBufferPointer { buffer in
                    var it = XORIterator(buffer)
                    while it.next() != nil { n += 1 }
                }
            }
            return n
        })

        let blockSeries = series.map { s in
            BlockSeries(labels: s.labels, chunks: EncodedChunk.encode(s.samples[...]))
        }
        let meta = try BlockWriter.write(series: blockSeries, minTime: dataset.start, maxTime: dataset.start + Int64(dataset.scrapes) * 60_000,
                                         into: root, tenant: "bench")
        let block = try BlockReader(directory: root + "/" + meta.ulid)
        let matchers = try SelectorParser.parse("{__name__=\"container_cpu_allocation\",cluster_id=\"cluster-1\",namespace=~\"ns-1|ns-2\"}")
        var refs = 0
        results.append(measure("postings intersection (3 matchers)", unit: "query") {
            for _ in 0..<1000 { refs = block.candidates(matchers).count }
            return 1000
        })

        results.append(contentsOf: try costRollups(root))
        print(render(results, candidates: refs, dataset: dataset))
    }

    /// Each series of the decoded requests with all its samples, in time order.
    static func seriesSamples(_ views: [WriteRequestView]) -> [(labels: [(String, String)], samples: [Sample])] {
        var index: [[String]: Int] = [:]
        var out: [(labels: [(String, String)], samples: [Sample])] = []
        for view in views {
            for s in view.series {
                let labels = view.labels(of: s).map {
                    (String(decoding: view.body[$0.name.range], as: UTF8.self), String(decoding: view.body[$0.value.range], as: UTF8.self))
                }
                let key = labels.flatMap { [$0.0, $0.1] }
                let i = index[key] ?? { index[key] = out.count; out.append((labels, [])); return out.count - 1 }()
                out[i].samples += view.samples(of: s).map { Sample(timestamp: $0.timestamp, valueBits: $0.valueBits) }
            }
        }
        return out
    }

    /// Appends scrape by scrape (one batch per scrape time, every series), as a sender's requests
    /// arrive. Label bytes live in one buffer for the whole run, like a request's body, so the
    /// harness itself allocates nothing per sample.
    static func append(_ series: [(labels: [(String, String)], samples: [Sample])], to db: TenantDatabase) throws -> Int {
        let text = series.flatMap { $0.labels.flatMap { Array($0.0.utf8) + Array($0.1.utf8) } }
        let scrapes = series.map(\.samples.count).max() ?? 0
        return try text.withUnsafeBytes { bytes -> Int in
            var offset = 0
            let raw = series.map { s in
                s.labels.map { name, value -> RawLabel in
                    let n = name.utf8.count, v = value.utf8.count
                    defer { offset += n + v }
                    return RawLabel(name: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]),
                                    value: UnsafeRawBufferPointer(rebasing: bytes[offset + n..<offset + n + v]))
                }
            }
            var appended = 0
            for k in 0..<scrapes {
                let (count, _) = try db.append { batch -> Int in
                    var n = 0
                    for (i, s) in series.enumerated() where k < s.samples.count {
                        let handle = raw[i].withUnsafeBufferPointer { try! batch.series($0) }
                        if case .accepted = batch.add(handle, timestamp: s.samples[k].timestamp, valueBits: s.samples[k].valueBits) { n += 1 }
                    }
                    return n
                }
                appended += count
            }
            return appended
        }
    }

    /// A week of the cost dataset in 2h blocks: daily costs computed from blocks (cold: every
    /// rollup removed first) and from the stored rollups (warm).
    func costRollups(_ root: String) throws -> [Measurement] {
        // Building a week of blocks is the slow part of a run: skipped when --only names something else.
        guard only.map({ "daily costs from".hasPrefix($0) || $0.hasPrefix("daily costs from") }) ?? true else { return [] }
        let data = KubecostDataset.costDays(7, nodesPerCluster: 5, podsPerNode: 4, now: Int64(Date().timeIntervalSince1970 * 1000))
        let directory = root + "/costs"
        let db = try TenantDatabase.open(directory: directory, tenant: "bench", options: StorageOptions(syncPolicy: .interval(.seconds(3600))))
        defer { try? db.close() }
        let views = try data.requests(senders: 1)[0].map { try RemoteWriteDecoder.decode(compressed: $0, maxDecodedBytes: 1 << 26) }
        _ = try Self.append(Self.seriesSamples(views), to: db)
        while try !db.cutBlock().isEmpty {}
        let calendar = CostCalendar.utc
        let first = calendar.day(containing: data.start), last = calendar.day(containing: data.start + 6 * 86_400_000)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func ask(rollups: CostRollupStore) throws -> Int {
            try CostEngine(querier: db, rollups: rollups).daily(from: first, to: last, now: now).count
        }
        let cold = try measure("daily costs from blocks (7 days)", unit: "day x cluster") {
            try? FileManager.default.removeItem(atPath: directory + "/rollups")
            return try ask(rollups: CostRollupStore(tenantDirectory: directory, calendar: calendar, options: CostOptions()))
        }
        // The server keeps one store per tenant in memory, loaded once.
        let store = CostRollupStore(tenantDirectory: directory, calendar: calendar, options: CostOptions())
        let warm = try measure("daily costs from rollups (7 days)", unit: "day x cluster") { try ask(rollups: store) }
        return [cold, warm]
    }

    func render(_ results: [Measurement], candidates: Int, dataset: KubecostDataset) -> String {
        var out = "| hot path | items | ns per item | allocations per item |\n|---|---|---|---|\n"
        for m in results where m.items > 0 {
            out += String(format: "| %@ | %d %@s | %.1f | %.3f |\n", m.name, m.items, m.unit, m.nanoseconds / Double(max(m.items, 1)),
                          Double(m.allocations) / Double(max(m.items, 1)))
        }
        out += "\nThe postings query returns \(candidates) of \(dataset.seriesCount) series.\n"
        return out
    }
}
