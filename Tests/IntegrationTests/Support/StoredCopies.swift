import Foundation
@testable import TallyStorage
import XCTest

/// One sample's identity: a series and a timestamp.
struct SampleKey: Hashable, CustomStringConvertible {
    let labels: Labels
    let timestamp: Int64

    var description: String { "\(labels) @\(timestamp)" }
}

/// Where a restarted tenant would load a stored copy of a sample from.
enum CopyPlace: Hashable, CustomStringConvertible {
    /// The newest complete checkpoint or a segment after it (named by its file): replay puts it in the head.
    case wal(String)
    /// A block the restart opens (named by its ULID).
    case block(String)

    var isWAL: Bool { if case .wal = self { true } else { false } }
    var block: String? { if case let .block(ulid) = self { ulid } else { nil } }

    var description: String {
        switch self {
        case let .wal(file): "wal/\(file)"
        case let .block(ulid): "block \(ulid)"
        }
    }
}

/// Every copy of every sample a tenant directory holds, counted without any de-duplication, read
/// with the storage's own WAL and block readers.
///
/// A copy is what a restart would load: `TenantDatabase.open` replays the newest complete checkpoint
/// and the segments after it into the head, where a sample whose series and timestamp the head
/// already holds is skipped (so the WAL gives at most one copy) and a Tombstones record deletes what
/// the head holds; and it opens every block directory except `.tmp` leftovers and parents a
/// compacted child lists. Each block's samples count once per block; tombstoned ones are no copy
/// and are counted per block apart (`Block.tombstonedSamples`).
/// Segments at or below the checkpoint, `.tmp` directories and expired parents are on disk but
/// are no copy: the restart deletes them unread.
struct StoredCopies {
    struct Copy: Equatable {
        let place: CopyPlace
        let valueBits: UInt64
    }

    /// A loaded block as the physical-state checks see it.
    struct Block {
        let meta: BlockMeta
        /// Samples in its chunks, tombstoned or not: what `meta.stats.numSamples` must count.
        let decodedSamples: Int
        /// Decoded samples outside `[minTime, maxTime)`.
        let samplesOutsideRange: Int
        /// Decoded samples its tombstones delete: what `meta.tally.deletedSamples` must count.
        let tombstonedSamples: Int
        /// Intervals in its `tombstones` file: what `meta.stats.numTombstones` must count.
        let tombstoneIntervals: Int
    }

    private(set) var copies: [SampleKey: [Copy]] = [:]
    private(set) var blocks: [Block] = []
    /// WAL samples whose series record is missing (replay skips them too).
    private(set) var walOrphans = 0
    /// Segments read short (torn or corrupt), as replay reports them.
    private(set) var walProblems: [String] = []

    func count(_ key: SampleKey) -> Int { copies[key]?.count ?? 0 }

    /// Copies in the WAL and in blocks: once each sample is stored exactly once, their sum is the
    /// number of distinct samples.
    var walCopies: Int { copies.values.reduce(0) { $0 + $1.filter(\.place.isWAL).count } }
    var blockCopies: Int { copies.values.reduce(0) { $0 + $1.filter { !$0.place.isWAL }.count } }

    /// Every stored sample with the value of its first copy: what a later state is compared with.
    var values: SentSamples { values { _ in true } }

    /// The samples with a copy in a place `holds` accepts, with that copy's value.
    func values(in holds: (CopyPlace) -> Bool) -> SentSamples {
        copies.compactMapValues { $0.first { holds($0.place) }?.valueBits }
    }

    /// Oldest and newest timestamp the WAL gives the head, nil when it gives none.
    var walTimeSpan: ClosedRange<Int64>? {
        let times = copies.lazy.filter { $0.value.contains { $0.place.isWAL } }.map(\.key.timestamp)
        guard let oldest = times.min(), let newest = times.max() else { return nil }
        return oldest...newest
    }

    /// Reads `tenantDirectory` under its read lease, so a server writing it removes nothing meanwhile.
    static func read(_ tenantDirectory: String) throws -> StoredCopies {
        var stored = StoredCopies()
        try ReadLease.reading(tenantDirectory) { () throws(StorageIOError) in
            try stored.readWAL(tenantDirectory + "/wal")
        }
        try stored.readBlocks(tenantDirectory)
        return stored
    }

    private mutating func readWAL(_ walDirectory: String) throws(StorageIOError) {
        guard FileSystem.isDirectory(walDirectory) else { return }
        var files: [(name: String, path: String)] = []
        let checkpoint = try WALCheckpoint.latest(in: walDirectory)
        if let checkpoint {
            let directory = WALCheckpoint.name(checkpoint)
            for segment in try WALFormat.segments(in: walDirectory + "/" + directory) {
                let name = directory + "/" + WALFormat.segmentName(segment)
                files.append((name, walDirectory + "/" + name))
            }
        }
        for segment in try WALFormat.segments(in: walDirectory) where segment > (checkpoint ?? -1) {
            files.append((WALFormat.segmentName(segment), walDirectory + "/" + WALFormat.segmentName(segment)))
        }
        var seriesByRef: [UInt64: Labels] = [:]
        for file in files {
            let bytes = try SegmentBytes(path: file.path, mapped: false)
            let end = WALSegmentReader.read(bytes.bytes) { record in
                replay(record, from: file.name, &seriesByRef)
            }
            if end != .clean { walProblems.append("\(file.name): \(end)") }
        }
    }

    /// Applies one record as `TenantDatabase.replayRecord` applies it to the head.
    private mutating func replay(_ record: UnsafeRawBufferPointer, from file: String, _ seriesByRef: inout [UInt64: Labels]) {
        var decoder = WALRecordDecoder(record)
        do {
            switch decoder.type {
            case WALRecordType.series.rawValue:
                try decoder.forEachSeries { ref, labels in
                    seriesByRef[ref] = Labels(labels.map { Label(String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) })
                }
            case WALRecordType.samples.rawValue:
                try decoder.forEachSample { ref, t, v in
                    guard StorableTime.range.contains(t) else { return }
                    guard let labels = seriesByRef[ref] else {
                        walOrphans += 1
                        return
                    }
                    // A second record of a series and timestamp is skipped, as replay skips it.
                    let key = SampleKey(labels: labels, timestamp: t)
                    if copies[key]?.contains(where: { $0.place.isWAL }) != true {
                        copies[key, default: []].append(Copy(place: .wal(file), valueBits: v))
                    }
                }
            case WALRecordType.tombstones.rawValue:
                try decoder.forEachTombstone { ref, interval in
                    guard let labels = seriesByRef[ref] else { return }
                    for key in copies.keys where key.labels == labels && interval.covers(key.timestamp) {
                        copies[key]?.removeAll { $0.place.isWAL }
                        if copies[key]?.isEmpty == true { copies[key] = nil }
                    }
                }
            default:
                walProblems.append("\(file): record of unknown type \(decoder.type)")
            }
        } catch {
            walProblems.append("\(file): \(error)")
        }
    }

    private mutating func readBlocks(_ tenantDirectory: String) throws {
        var readers: [BlockReader] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: tenantDirectory).sorted()
        where ULID(name) != nil && FileSystem.isDirectory(tenantDirectory + "/" + name) {
            readers.append(try BlockReader(directory: tenantDirectory + "/" + name))
        }
        let compacted = Set(readers.flatMap { $0.meta.compaction.parents?.map(\.ulid) ?? [] })
        for reader in readers where !compacted.contains(reader.ulid) {
            var decoded = 0, outside = 0, tombstoned = 0
            for ref in reader.seriesRefs {
                let (pairs, chunks) = try reader.series(ref)
                let labels = Labels(pairs.map { Label($0.0, $0.1) })
                for chunk in chunks {
                    // Floats only: histogram chunks are counted by the histogram tests.
                    let stored = try reader.chunk(chunk.ref)
                    guard stored.encoding == XORChunk.encoding else { continue }
                    var samples = XORIterator(stored.bytes)
                    while let (t, v) = samples.next() {
                        decoded += 1
                        if t < reader.meta.minTime || t >= reader.meta.maxTime { outside += 1 }
                        if reader.tombstones.deletes(ref, t) {
                            tombstoned += 1
                        } else {
                            copies[SampleKey(labels: labels, timestamp: t), default: []].append(Copy(place: .block(reader.ulid), valueBits: v))
                        }
                    }
                    if samples.failed { throw BlockError(block: reader.ulid, section: "chunk \(chunk.ref)", problem: "does not decode") }
                }
            }
            blocks.append(Block(meta: reader.meta, decodedSamples: decoded, samplesOutsideRange: outside,
                                tombstonedSamples: tombstoned, tombstoneIntervals: reader.tombstones.count))
        }
    }
}

/// Samples a test sent, by identity, with their value bits.
typealias SentSamples = [SampleKey: UInt64]

/// Asserts exactly one stored copy, with the sent value, of every acknowledged sample, and at most
/// one of every other stored sample, which must have been sent with that value. A sample for which
/// `isAllowedRepeat` accepts the places of its copies may have more (the documented window between
/// a block's rename and the checkpoint's). Returns how many such samples it accepted.
@discardableResult
func assertStoredOnce(_ stored: StoredCopies, acknowledged: SentSamples, sent: SentSamples, _ context: String,
                      isAllowedRepeat: ([CopyPlace]) -> Bool = { _ in false },
                      file: StaticString = #filePath, line: UInt = #line) -> Int {
    var lost: [SampleKey] = [], wrongValue: [String] = [], unsent: [SampleKey] = [], tooMany: [String] = []
    var allowedRepeats = 0
    for key in acknowledged.keys where stored.count(key) == 0 { lost.append(key) }
    for (key, copies) in stored.copies {
        guard let value = sent[key] else {
            unsent.append(key)
            continue
        }
        if let copy = copies.first(where: { $0.valueBits != value }) { wrongValue.append("\(key) in \(copy.place)") }
        if copies.count > 1 && isAllowedRepeat(copies.map(\.place)) {
            allowedRepeats += 1
        } else if copies.count > 1 {
            tooMany.append("\(key): \(copies.count) copies in \(copies.map(\.place))")
        }
    }
    func sample<T>(_ items: [T]) -> String { items.prefix(5).map { "\($0)" }.joined(separator: "; ") }
    XCTAssertEqual(lost.count, 0, "\(context): acknowledged samples with no stored copy, e.g. \(sample(lost))", file: file, line: line)
    XCTAssertEqual(tooMany.count, 0, "\(context): samples stored more than once, e.g. \(sample(tooMany))", file: file, line: line)
    XCTAssertEqual(unsent.count, 0, "\(context): stored samples that were never sent, e.g. \(sample(unsent))", file: file, line: line)
    XCTAssertEqual(wrongValue.count, 0, "\(context): stored with another value than sent, e.g. \(sample(wrongValue))", file: file, line: line)
    XCTAssertEqual(stored.walProblems, [], "\(context): the WAL reads short", file: file, line: line)
    XCTAssertEqual(stored.walOrphans, 0, "\(context): WAL samples without their series", file: file, line: line)
    return allowedRepeats
}

/// Asserts what a tenant directory physically holds after a restart: no `.tmp` file or directory
/// anywhere under it, every loaded block's samples inside its `[minTime, maxTime)` and counted by
/// its meta's `numSamples`; returns the blocks, oldest first, for checks of their ranges.
@discardableResult
func assertPhysicalState(_ stored: StoredCopies, tenantDirectory: String, _ context: String,
                         file: StaticString = #filePath, line: UInt = #line) -> [BlockMeta] {
    XCTAssertEqual(filesUnder(tenantDirectory).filter { $0.hasSuffix(".tmp") }, [], "\(context): unfinished writes left", file: file, line: line)
    for block in stored.blocks {
        XCTAssertEqual(block.samplesOutsideRange, 0, "\(context): block \(block.meta.ulid) holds samples outside its range", file: file, line: line)
        XCTAssertEqual(block.meta.stats.numSamples, UInt64(block.decodedSamples), "\(context): block \(block.meta.ulid) numSamples", file: file, line: line)
    }
    return stored.blocks.map(\.meta).sorted { ($0.minTime, $0.ulid) < ($1.minTime, $1.ulid) }
}

/// Asserts that no two blocks' time ranges overlap (what a finished compaction leaves).
func assertNoOverlappingBlocks(_ metas: [BlockMeta], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
    for (older, newer) in zip(metas, metas.dropFirst()) {
        XCTAssertLessThanOrEqual(older.maxTime, newer.minTime, "\(context): blocks \(older.ulid) and \(newer.ulid) overlap", file: file, line: line)
    }
}
