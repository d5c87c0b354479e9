import Dispatch
import Foundation
import Synchronization

/// One consistent read of a tenant for the length of a query.
///
/// It holds the blocks that were live when it was made: a compaction or retention that removes
/// them meanwhile unlinks their files, but the mappings stay valid until the querier is released,
/// so the query reads what it started with. Blocks cut from the head after that are read too
/// (their samples were in the head, which the querier reads at each `select`), and a sample held
/// twice is read once.
public final class TenantQuerier: @unchecked Sendable {
    private let database: TenantDatabase
    private let pinnedBlocks: [BlockReader]
    /// Block directories that did not load when the querier was made.
    private let unloadedBlocks: [UnloadedBlock]
    private let leftOut = Mutex<[String]>([])
    public let minTime: Int64
    public let maxTime: Int64

    init(database: TenantDatabase, blocks: [BlockReader], unloaded: [UnloadedBlock], minTime: Int64, maxTime: Int64) {
        self.database = database
        pinnedBlocks = blocks
        unloadedBlocks = unloaded
        self.minTime = minTime
        self.maxTime = maxTime
    }

    /// One line for each block directory that did not load and may hold samples in a range read so
    /// far: the answers made from this querier lack them.
    public var warnings: [String] { leftOut.withLock { $0 } }

    private func noteUnloaded(minTime lo: Int64, maxTime hi: Int64) {
        for block in unloadedBlocks where block.mayHold(minTime: lo, maxTime: hi) {
            leftOut.withLock { if !$0.contains(block.warning) { $0.append(block.warning) } }
        }
    }

    /// Series matching every matcher with a sample in [minTime, maxTime] (within the querier's
    /// range), in label order, each with its chunks in that range. Unreadable block data fails the
    /// select with a `BlockError` naming block and section.
    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [QueriedSeries] {
        let lo = max(minTime, self.minTime), hi = min(maxTime, self.maxTime)
        guard lo <= hi else { return [] }
        noteUnloaded(minTime: lo, maxTime: hi)
        let (fromHead, blocks) = database.readView { head, live in
            let fromHead = head.select(matchers).map { index in
                (head.labels(index), head.chunkCopies(index, minTime: lo, maxTime: hi, sourceRank: Int.max))
            }
            return (fromHead, sources(live))
        }
        // Series found by their symbol ids: one met in 30 daily blocks is made into `Labels` once,
        // and its chunks gathered by the set's number.
        var found = DistinctLabelSets()
        var chunksBySet: [[QueriedChunk]] = []
        func add(_ set: Int, _ chunks: [QueriedChunk]) {
            if set == chunksBySet.count { chunksBySet.append(chunks) } else { chunksBySet[set] += chunks }
        }
        let inRange = blocks.enumerated().filter { $0.element.meta.maxTime > lo && $0.element.meta.minTime <= hi }.map { (rank: $0.offset, block: $0.element) }
        for ((_, block), series) in zip(inRange, try Self.matchingChunks(inRange, matchers, minTime: lo, maxTime: hi)) {
            var translation = DistinctLabelSets.BlockTranslation(symbols: block.symbols, hashes: block.symbolHashes)
            for (ids, chunks) in series { add(found.add(blockSymbolIds: ids, &translation), chunks) }
        }
        for (labels, chunks) in fromHead where !chunks.isEmpty { add(found.add(labels), chunks) }
        return found.sortedWithNumbers().map { QueriedSeries(labels: $0.labels, chunks: chunksBySet[$0.number]) }
    }

    /// Each block's series matching `matchers` that have float chunks in [minTime, maxTime], as
    /// their labels' symbol ids and those chunks (checksums verified), block by block. Blocks are
    /// read on every core when there are several: checking the chunks is most of a selection.
    private static func matchingChunks(_ blocks: [(rank: Int, block: BlockReader)], _ matchers: [LabelMatcher],
                                       minTime lo: Int64, maxTime hi: Int64) throws(BlockError) -> [[(ids: [UInt32], chunks: [QueriedChunk])]] {
        @Sendable func read(_ rank: Int, _ block: BlockReader) throws(BlockError) -> [(ids: [UInt32], chunks: [QueriedChunk])] {
            var series: [(ids: [UInt32], chunks: [QueriedChunk])] = []
            try block.forEachMatchingSymbolIds(matchers) { (ref, ids, metas) throws(BlockError) in
                let deleted = block.tombstones.intervals[ref] ?? []
                var chunks: [QueriedChunk] = []
                for meta in metas where meta.maxTime >= lo && meta.minTime <= hi {
                    if deleted.contains(where: { $0.minTime <= meta.minTime && meta.maxTime <= $0.maxTime }) { continue }
                    // Float readers only: a histogram chunk is never decoded as XOR.
                    let chunk = try block.chunk(meta.ref)
                    guard chunk.encoding == XORChunk.encoding else { continue }
                    chunks.append(QueriedChunk(minTime: meta.minTime, maxTime: meta.maxTime, mapped: chunk.bytes,
                                               block: block, deleted: deleted, sourceRank: rank))
                }
                if !chunks.isEmpty { series.append((ids, chunks)) }
            }
            return series
        }
        let workers = min(blocks.count, ProcessInfo.processInfo.activeProcessorCount)
        guard workers >= 2 && blocks.count >= 4 else { return try blocks.map { (rank, block) throws(BlockError) in try read(rank, block) } }
        let results = Mutex([Int: Result<[(ids: [UInt32], chunks: [QueriedChunk])], BlockError>]())
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for i in stride(from: worker, to: blocks.count, by: workers) {
                let result = Result { () throws(BlockError) in try read(blocks[i].rank, blocks[i].block) }
                results.withLock { $0[i] = result }
            }
        }
        // The first unreadable block in order fails the selection, as reading them in turn would.
        return try results.withLock { all throws(BlockError) in try blocks.indices.map { (i) throws(BlockError) in try all[i]!.get() } }
    }

    /// The label sets `select` would give for any of `matcherSets`, sorted, from the indexes
    /// alone: whether a series has a chunk in the range is in its chunk metas, so no chunk is read
    /// or checked (as Prometheus' series API, which selects with a chunk reader that reads nothing).
    /// A series found in several blocks or by several sets is made into `Labels` once.
    public func seriesLabels(_ matcherSets: [[LabelMatcher]], minTime: Int64, maxTime: Int64) throws -> [Labels] {
        // A range whose start is after its end is not empty here, as in Prometheus: a series with a
        // chunk reaching from before the end to after the start is in it (the overlap test below).
        let lo = max(minTime, self.minTime), hi = min(maxTime, self.maxTime)
        noteUnloaded(minTime: min(lo, hi), maxTime: max(lo, hi))
        var inHead: [Labels] = []
        let blocks = database.readView { head, live in
            for matchers in matcherSets {
                for index in head.select(matchers) where head.hasChunk(index, minTime: lo, maxTime: hi) { inHead.append(head.labels(index)) }
            }
            return sources(live).filter { $0.meta.maxTime > lo && $0.meta.minTime <= hi }
        }
        func add(_ block: BlockReader, to found: inout DistinctLabelSets) throws {
            var translation = DistinctLabelSets.BlockTranslation(symbols: block.symbols, hashes: block.symbolHashes)
            for matchers in matcherSets {
                try block.forEachMatchingInRange(matchers, minTime: lo, maxTime: hi) { ids in found.add(blockSymbolIds: ids, &translation) }
            }
        }
        // Blocks the range covers answer the same whatever the range (see `CoveredBlockLabelSets`).
        let covered = blocks.filter { block in
            let (last, overflow) = block.meta.maxTime.subtractingReportingOverflow(1)
            return lo <= block.meta.minTime && !overflow && last <= hi
        }
        var found = DistinctLabelSets()
        if covered.count < 2 {
            for block in covered { try add(block, to: &found) }
        } else {
            let key = CoveredBlockLabelSets.Key(tenant: database.tenant, matcherSets: matcherSets.map { $0.map { ByteString($0.description) } },
                                                readers: covered.map(\.serial))
            if let known = CoveredBlockLabelSets.shared.answer(key) {
                found = known
            } else {
                for block in covered { try add(block, to: &found) }
                found.keepOrder()
                CoveredBlockLabelSets.shared.keep(found, for: key)
            }
        }
        let coveredSerials = Set(covered.map(\.serial))
        for block in blocks where !coveredSerials.contains(block.serial) { try add(block, to: &found) }
        for labels in inHead { found.add(labels) }
        return found.sorted()
    }

    /// `seriesLabels` for one matcher set.
    public func seriesLabels(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) throws -> [Labels] {
        try seriesLabels([matchers], minTime: minTime, maxTime: maxTime)
    }

    /// Label sets of the series matching `matchers` in the head, when the querier's range overlaps
    /// it, and in every block the range overlaps, whatever the times of their own samples. This is
    /// how Prometheus 2.42 answers `labels` and `label/<name>/values` with matchers (its index
    /// readers' `LabelNames(matchers...)`, by postings alone), and how both answer them without:
    /// a series whose samples all lie outside the range still names its labels while the head or a
    /// block in the range holds it.
    private func indexedLabelSets(_ matchers: [LabelMatcher]) throws -> [Labels] {
        noteUnloaded(minTime: minTime, maxTime: maxTime)
        let (inHead, blocks) = database.readView { head, live in
            (head.overlaps(minTime: minTime, maxTime: maxTime) ? head.select(matchers).map { head.labels($0) } : [],
             sources(live).filter { $0.meta.maxTime > minTime && $0.meta.minTime <= maxTime })
        }
        var found = DistinctLabelSets()
        for block in blocks {
            var translation = DistinctLabelSets.BlockTranslation(symbols: block.symbols, hashes: block.symbolHashes)
            try block.forEachMatchingSymbolIds(matchers) { _, ids, _ in _ = found.add(blockSymbolIds: ids, &translation) }
        }
        for labels in inHead { _ = found.add(labels) }
        return found.sorted()
    }

    /// Label names of the series matching `matchers` in the head and blocks the querier's range
    /// overlaps (see `indexedLabelSets`), sorted; with no matchers, every name in their indexes.
    public func labelNames(_ matchers: [LabelMatcher]) throws -> [String] {
        guard matchers.isEmpty else {
            return Set(try indexedLabelSets(matchers).flatMap { $0.pairs.map { ByteString($0.name) } }).sorted().map(\.string)
        }
        noteUnloaded(minTime: minTime, maxTime: maxTime)
        let (names, blocks) = database.readView { head, live in
            (head.overlaps(minTime: minTime, maxTime: maxTime) ? head.labelNames() : [], sources(live))
        }
        var all = names
        for block in blocks where block.meta.maxTime > minTime && block.meta.minTime <= maxTime {
            all.formUnion(block.postingsOffsets.keys.lazy.filter { !$0.isEmpty }.map { ByteString($0) })
        }
        return all.sorted().map(\.string)
    }

    /// Values of label `name` among the series matching `matchers` in the head and blocks the
    /// querier's range overlaps (see `indexedLabelSets`), sorted.
    public func labelValues(_ name: String, _ matchers: [LabelMatcher]) throws -> [String] {
        guard matchers.isEmpty else {
            return Set(try indexedLabelSets(matchers).compactMap { $0[name].map { ByteString($0) } }).sorted().map(\.string)
        }
        noteUnloaded(minTime: minTime, maxTime: maxTime)
        let (values, blocks) = database.readView { head, live in
            (head.overlaps(minTime: minTime, maxTime: maxTime) ? head.labelValues(name) : [], sources(live))
        }
        var all = values
        for block in blocks where block.meta.maxTime > minTime && block.meta.minTime <= maxTime {
            all.formUnion((block.postingsOffsets[name] ?? []).lazy.map { ByteString($0.value) })
        }
        return all.sorted().map(\.string)
    }

    /// The pinned blocks, then those made since (by the head's cuts or compaction), in time order.
    private func sources(_ live: [BlockReader]) -> [BlockReader] {
        let pinned = Set(pinnedBlocks.map(\.ulid))
        return (pinnedBlocks + live.filter { !pinned.contains($0.ulid) }).sorted { ($0.meta.minTime, $0.ulid) < ($1.meta.minTime, $1.ulid) }
    }

}

extension TenantDatabase {
    /// A querier over [minTime, maxTime] that pins the blocks live now until it is released.
    public func querier(minTime: Int64, maxTime: Int64) -> TenantQuerier {
        lock.withLock { _ in TenantQuerier(database: self, blocks: blocks, unloaded: unloaded, minTime: minTime, maxTime: maxTime) }
    }
}
