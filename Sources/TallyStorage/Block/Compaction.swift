/// One planned compaction: blocks to merge into one child.
public struct CompactionGroup: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// Blocks whose time ranges overlap (late data, imports): merged first.
        case overlapping
        /// Blocks inside one aligned window of a larger range (2h -> 6h -> 24h).
        case levelUp = "level-up"
        /// One block whose tombstones cover 5% or more of its samples (any, when cleaning
        /// tombstones), rewritten without them.
        case deletedData = "deleted-data"
    }

    public let reason: Reason
    public let parents: [BlockMeta]
    public let minTime: Int64
    public let maxTime: Int64
}

/// Chooses what to compact, from block metas alone.
///
/// Overlapping blocks are merged before anything else, as Prometheus' vertical compaction does. Then,
/// for each range after the first (default 6h, then 24h, both aligned to the epoch and so to UTC
/// days), the blocks that fit one window are merged once the window lies wholly behind the newest
/// block (no more in-order data will come for it). One call plans one step; the caller repeats until
/// the plan is empty, since a merge can make a new candidate. Last, each block whose tombstones
/// cover 5% or more of its samples is rewritten alone, so deleted data leaves the disk; when
/// `cleaningTombstones` (Prometheus' `clean_tombstones`), each block with any tombstone.
public enum CompactionPlanner {
    public static let defaultRanges: [Int64] = [2 * 3_600_000, 6 * 3_600_000, 24 * 3_600_000]

    public static func plan(_ metas: [BlockMeta], ranges: [Int64] = defaultRanges, cleaningTombstones: Bool = false) -> [CompactionGroup] {
        let sorted = metas.sorted { ($0.minTime, $0.ulid) < ($1.minTime, $1.ulid) }
        var overlapping: [CompactionGroup] = []
        var current: [BlockMeta] = []
        var currentEnd = Int64.min
        func flush() {
            if current.count > 1 {
                overlapping.append(CompactionGroup(reason: .overlapping, parents: current, minTime: current.map(\.minTime).min()!,
                                                   maxTime: currentEnd))
            }
            current = []
        }
        for meta in sorted {
            if meta.minTime >= currentEnd { flush() }
            current.append(meta)
            currentEnd = current.count == 1 ? meta.maxTime : max(currentEnd, meta.maxTime)
        }
        flush()
        if !overlapping.isEmpty { return overlapping }

        guard let newest = sorted.map(\.maxTime).max() else { return [] }
        for range in ranges.dropFirst() where range > 0 {
            // Keyed by the window's start; a window whose bounds do not fit in Int64 holds no block.
            var windows: [Int64: [BlockMeta]] = [:]
            for meta in sorted {
                guard let bounds = window(of: meta.minTime, range), meta.maxTime <= bounds.end else { continue }
                windows[bounds.start, default: []].append(meta)
            }
            let groups = windows.sorted { $0.key < $1.key }.compactMap { start, members -> CompactionGroup? in
                let end = start + range
                guard members.count > 1, end <= newest else { return nil }
                return CompactionGroup(reason: .levelUp, parents: members, minTime: start, maxTime: end)
            }
            if !groups.isEmpty { return groups }
        }
        return sorted.filter(cleaningTombstones ? holdsDeletedData : holdsMuchDeletedData).map {
            CompactionGroup(reason: .deletedData, parents: [$0], minTime: $0.minTime, maxTime: $0.maxTime)
        }
    }

    /// Tombstones over 5% or more of the samples; a block with tombstones but no count of what
    /// they cover (written by another tool) is rewritten too.
    static func holdsMuchDeletedData(_ meta: BlockMeta) -> Bool {
        guard let deleted = meta.tally?.deletedSamples else { return (meta.stats.numTombstones ?? 0) > 0 }
        let (twentyTimes, overflow) = deleted.multipliedReportingOverflow(by: 20)
        return deleted > 0 && (overflow || twentyTimes >= meta.stats.numSamples)
    }

    /// Any tombstone, whatever it covers.
    static func holdsDeletedData(_ meta: BlockMeta) -> Bool {
        (meta.tally?.deletedSamples ?? 0) > 0 || (meta.stats.numTombstones ?? 0) > 0
    }

    /// Every step `plan` would take, each merge simulated on the metas, and how many blocks remain:
    /// what `--dry-run` reports, and what a real compaction must end with.
    public static func simulate(_ metas: [BlockMeta], ranges: [Int64] = defaultRanges,
                                cleaningTombstones: Bool = false) -> (steps: [[CompactionGroup]], blocksAfter: Int) {
        var metas = metas
        var steps: [[CompactionGroup]] = []
        for step in 0..<64 {
            let plan = plan(metas, ranges: ranges, cleaningTombstones: cleaningTombstones)
            if plan.isEmpty { break }
            steps.append(plan)
            for (k, group) in plan.enumerated() {
                let merged = Set(group.parents.map(\.ulid))
                var child = group.parents[0]
                child.ulid = "planned-\(step)-\(k)"
                child.minTime = group.minTime
                child.maxTime = group.maxTime
                child.compaction = BlockCompactor.childCompaction(group.parents)
                child.tally = nil
                child.stats.numTombstones = nil
                metas = metas.filter { !merged.contains($0.ulid) } + [child]
            }
        }
        return (steps, metas.count)
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a + 1) / b - 1 }

    /// The aligned window of `range` (> 0) holding `time`, as [start, end); nil when either bound is
    /// beyond Int64 (times near its ends, which a meta.json read from disk cannot hold).
    static func window(of time: Int64, _ range: Int64) -> (start: Int64, end: Int64)? {
        let (start, startOverflows) = floorDivide(time, range).multipliedReportingOverflow(by: range)
        let (end, endOverflows) = start.addingReportingOverflow(range)
        return startOverflows || endOverflows ? nil : (start, end)
    }
}

/// Reads parent blocks and writes their union as one block, a series at a time.
enum BlockCompactor {
    /// Merges `parents` into one block of [minTime, maxTime) in `directory`: their series in label
    /// order (a k-way merge over each parent's index), each written before the next is read, so
    /// memory follows one series' samples at most. A series' chunks are copied as they are when they
    /// do not overlap and none of its samples are deleted, whatever their encoding; otherwise its
    /// floats and its histograms are each merged (a timestamp held twice is kept once, from the
    /// earlier block) and encoded again. Returns nil,
    /// writing nothing, when every sample was deleted.
    static func compact(_ parents: [BlockReader], minTime: Int64, maxTime: Int64, into directory: String, tenant: String,
                        compaction: BlockMeta.Compaction) throws -> BlockMeta? {
        let ordered = parents.sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) }
        var symbols: Set<ByteString> = []
        for parent in ordered { symbols.formUnion(parent.symbols.lazy.map { ByteString($0) }) }
        let stream = try BlockStream(symbols: symbols, minTime: minTime, maxTime: maxTime, into: directory, tenant: tenant,
                                     compaction: compaction, ulid: nil)
        do {
            var cursors = try ordered.map { try SeriesCursor($0) }
            var merged = 0
            while let labels = cursors.compactMap(\.current?.labels).min(by: Labels.pairsPrecede) {
                // The parents are read once, front to back: what is behind is let go, so the
                // resident set follows the series count, not the parents' size.
                merged += 1
                if merged % 16_384 == 0 { for parent in ordered { parent.releaseResidentPages() } }
                var parts: [SeriesPart] = []
                for k in cursors.indices {
                    guard let current = cursors[k].current, Labels.pairsEqual(current.labels, labels) else { continue }
                    parts.append(SeriesPart(block: cursors[k].block, ref: current.ref, chunks: current.chunks))
                    try cursors[k].advance()
                }
                try stream.add(labels: labels, chunks: try mergedChunks(labels, parts))
            }
            guard stream.seriesCount > 0 else {
                stream.abandon()
                return nil
            }
            return try stream.finish()
        } catch {
            stream.abandon()
            throw error
        }
    }

    /// One series in one parent.
    private struct SeriesPart {
        let block: BlockReader
        let ref: UInt32
        let chunks: [ChunkMeta]
    }

    /// A parent's series in index order (label order, as Prometheus writes it).
    private struct SeriesCursor {
        let block: BlockReader
        private var position = 0
        private(set) var current: (ref: UInt32, labels: [(String, String)], chunks: [ChunkMeta])?

        init(_ block: BlockReader) throws {
            self.block = block
            try load()
        }

        mutating func advance() throws {
            position += 1
            try load()
        }

        private mutating func load() throws {
            guard position < block.seriesRefs.count else {
                current = nil
                return
            }
            let ref = block.seriesRefs[position]
            let (labels, chunks) = try block.series(ref)
            current = (ref, labels, chunks)
        }
    }

    private static func mergedChunks(_ labels: [(String, String)], _ parts: [SeriesPart]) throws -> [EncodedChunk] {
        let chunks = parts.flatMap { part in part.chunks.map { (part.block, $0) } }.sorted { $0.1.minTime < $1.1.minTime }
        let deleted = parts.contains { !($0.block.tombstones.intervals[$0.ref] ?? []).isEmpty }
        let overlapping = zip(chunks, chunks.dropFirst()).contains { $0.1.maxTime >= $1.1.minTime }
        if !deleted && !overlapping {
            return try chunks.map { block, meta in
                let chunk = try block.chunk(meta.ref)
                return EncodedChunk(minTime: meta.minTime, maxTime: meta.maxTime, bytes: Array(chunk.bytes), encoding: chunk.encoding)
            }
        }
        // Floats and histograms are merged apart, each kind from its own chunks.
        var samples: [Sample] = []
        var histograms: [HistogramSample] = []
        for part in parts {
            samples.merge(try part.block.samples(part.ref, labels, part.chunks, minTime: .min, maxTime: .max, skipUnreadable: nil))
            histograms += try part.block.histograms(part.ref, labels, part.chunks, minTime: .min, maxTime: .max, skipUnreadable: nil)
        }
        let merged = EncodedChunk.encode(samples[...]) + EncodedChunk.encodeHistograms(SeriesMerger.sortedUnique(histograms))
        return merged.sorted { $0.minTime < $1.minTime }
    }

    /// The child's compaction section: one level above its highest parent, every source, the parents.
    static func childCompaction(_ parents: [BlockMeta]) -> BlockMeta.Compaction {
        BlockMeta.Compaction(level: (parents.map(\.compaction.level).max() ?? 0) + 1,
                             sources: Array(Set(parents.flatMap(\.compaction.sources))).sorted(),
                             parents: parents.map { BlockMeta.Parent(ulid: $0.ulid, minTime: $0.minTime, maxTime: $0.maxTime) })
    }
}

/// Time-based retention: whole blocks ending `keep` or more before the newest block ends.
public enum RetentionPolicy {
    public static func expired(_ metas: [BlockMeta], keep: Int64) -> [BlockMeta] {
        guard let newest = metas.map(\.maxTime).max() else { return [] }
        // newest - maxTime >= keep, as Prometheus compares, not maxTime <= newest - keep, which
        // overflows for a huge keep; an age past Int64.max is over any keep.
        return metas.filter {
            let (age, overflow) = newest.subtractingReportingOverflow($0.maxTime)
            return overflow || age >= keep
        }.sorted { $0.minTime < $1.minTime }
    }
}
