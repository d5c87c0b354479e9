/// Reads a whole block and checks it, reporting the first problem with its block and section.
/// Never repairs: what it finds is for an operator to decide on.
public enum BlockVerifier {
    /// Opens (every index checksum, the TOC, the postings offset table) then checks everything else.
    public static func verify(directory: String) throws {
        let reader = try BlockReader(directory: directory)
        let name = String(directory.split(separator: "/").last ?? "")
        if ULID(name) != nil { try reader.checkNamed(name) }
        try verify(reader)
    }

    /// Symbols sorted and unique; series sorted, each chunk decodable with a valid CRC, in time
    /// order without overlap, inside the block's range; every postings list sorted and naming only
    /// series that carry its label pair; tombstones naming only series of the index; meta.json's
    /// counts (samples, series, chunks, tombstones and the samples they delete) equal to the contents.
    static func verify(_ reader: BlockReader) throws {
        func fail(_ section: String, _ problem: String) -> BlockError { BlockError(block: reader.ulid, section: section, problem: problem) }
        for (a, b) in zip(reader.symbols, reader.symbols.dropFirst()) where Labels.compareBytes(a, b) >= 0 {
            throw fail("index symbols", "not sorted or not unique at \(GoFormat.quote(b))")
        }
        var previous: [(String, String)]?
        var labelsByRef: [UInt32: [(String, String)]] = [:]
        var samples: UInt64 = 0, chunkCount: UInt64 = 0, deleted: UInt64 = 0
        for ref in reader.seriesRefs {
            let (labels, chunks) = try reader.series(ref)
            func bad(_ problem: String) -> BlockError { fail("index series", "\(labels): \(problem)") }
            if let previous, !Labels.pairsPrecede(previous, labels) { throw bad("series out of order") }
            previous = labels
            labelsByRef[ref] = labels
            var lastMax = Int64.min
            for chunk in chunks {
                guard chunk.minTime <= chunk.maxTime, chunk.minTime > lastMax || lastMax == .min else { throw bad("chunks overlap or are out of order") }
                guard chunk.minTime >= reader.meta.minTime, chunk.maxTime < reader.meta.maxTime else {
                    throw bad("chunk [\(chunk.minTime), \(chunk.maxTime)] outside the block's range")
                }
                var count: UInt64 = 0
                try reader.forEachTimestamp(inChunk: chunk.ref) { t in
                    count += 1
                    if reader.tombstones.deletes(ref, t) { deleted += 1 }
                }
                samples += count
                chunkCount += 1
                lastMax = chunk.maxTime
            }
        }
        for (name, values) in reader.postingsOffsets where !name.isEmpty {
            for (value, offset) in values {
                let refs = reader.postings(offset)
                for (a, b) in zip(refs, refs.dropFirst()) where a >= b { throw fail("index postings of \(name)", "refs not ascending") }
                for ref in refs where !(labelsByRef[ref]?.contains { $0.0 == name && $0.1 == value } ?? false) {
                    throw fail("index postings of \(name)", "series \(ref) listed under \(name)=\(GoFormat.quote(value)) does not carry it")
                }
            }
        }
        for ref in reader.tombstones.intervals.keys where labelsByRef[ref] == nil {
            throw fail("tombstones", "names series \(ref), which the index does not hold")
        }
        let stats = reader.meta.stats
        guard stats.numSeries == UInt64(reader.seriesRefs.count), stats.numChunks == chunkCount, stats.numSamples == samples else {
            throw fail("meta.json", "stats say \(stats.numSeries) series, \(stats.numChunks) chunks, \(stats.numSamples) samples; "
                       + "the block holds \(reader.seriesRefs.count), \(chunkCount), \(samples)")
        }
        guard stats.numTombstones ?? 0 == UInt64(reader.tombstones.count) else {
            throw fail("meta.json", "numTombstones says \(stats.numTombstones ?? 0); the tombstones file holds \(reader.tombstones.count) intervals")
        }
        if let counted = reader.meta.tally?.deletedSamples, counted != deleted {
            throw fail("meta.json", "tally.deletedSamples says \(counted); the tombstones cover \(deleted) samples")
        }
    }
}
