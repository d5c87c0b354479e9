import XCTest
@testable import TallyStorage

/// The planner's order and its 5% rule, on real blocks of a real tenant: overlapping blocks are
/// merged before any level-up, and a block is rewritten alone exactly when its tombstones cover 5%
/// or more of its samples.
final class CompactionRuleTests: XCTestCase {
    /// A UTC midnight, so the 6h and 24h windows start on it.
    static let day: Int64 = 1_700_006_400_000
    static let hour: Int64 = 3_600_000

    private var directory = ""

    override func setUpWithError() throws { directory = try temporaryDirectory() + "/tenant" }
    override func tearDown() { try? FileSystem.removeTree(String(directory.dropLast("/tenant".count))) }

    /// A block of `series` series `m{s="k"}` with a sample at each timestamp, value = timestamp.
    @discardableResult
    private func writeBlock(_ minTime: Int64, _ maxTime: Int64, at timestamps: [Int64], series: Int = 1) throws -> BlockMeta {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let all = (0..<series).map { k in
            var chunk = XORChunk()
            for t in timestamps { chunk.append(timestamp: t, valueBits: Double(t).bitPattern) }
            return BlockSeries(labels: [("__name__", "m"), ("s", String(k))],
                               chunks: [EncodedChunk(minTime: timestamps[0], maxTime: timestamps[timestamps.count - 1], bytes: chunk.bytes)])
        }
        return try BlockWriter.write(series: all, minTime: minTime, maxTime: maxTime, into: directory, tenant: "t")
    }

    /// Every chunk of a block, series by series in index order.
    private func chunkBytes(_ ulid: String) throws -> [[UInt8]] {
        let block = try BlockReader(directory: directory + "/" + ulid)
        return try block.seriesRefs.flatMap { ref in try block.series(ref).chunks.map { Array(try block.chunk($0.ref).bytes) } }
    }

    private func everything(_ db: TenantDatabase) throws -> [String: [Int64]] {
        var out: [String: [Int64]] = [:]
        for s in try db.select([try LabelMatcher("__name__", .equal, "m")]) { out[s.labels.description] = s.samples.map(\.timestamp) }
        return out
    }

    /// Three 2h blocks fill the first 6h window, which lies behind the newest block, so a level-up is
    /// due; two later blocks overlap. The overlap is merged first, alone, then the window.
    func testOverlappingBlocksAreMergedBeforeAnyLevelUp() throws {
        let d = Self.day, h = Self.hour
        for k in Int64(0)..<3 { try writeBlock(d + k * 2 * h, d + (k + 1) * 2 * h, at: [d + k * 2 * h, d + k * 2 * h + 60_000]) }
        let early = try writeBlock(d + 6 * h, d + 8 * h, at: [d + 6 * h, d + 7 * h + 30 * 60_000])
        let late = try writeBlock(d + 7 * h, d + 9 * h, at: [d + 7 * h, d + 8 * h + 30 * 60_000])

        let metas = try BlockCatalog.list(tenantDirectory: directory).map(\.meta)
        let firstStep = CompactionPlanner.plan(metas)
        XCTAssertEqual(firstStep.map(\.reason), [.overlapping], "nothing else is planned while blocks overlap")
        XCTAssertEqual(Set(firstStep.first?.parents.map(\.ulid) ?? []), [early.ulid, late.ulid])

        let firstWindow = try metas.filter { $0.maxTime <= d + 6 * h }.flatMap { try chunkBytes($0.ulid) }
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        let before = try everything(db)
        let report = try db.compact()
        XCTAssertEqual(report.failures, [])
        XCTAssertEqual(report.groups.map(\.reason), [.overlapping, .levelUp])
        // Chunks that neither overlap nor hold deleted samples are copied as they are.
        let child = try XCTUnwrap(db.blockMetas.first { $0.minTime == d })
        XCTAssertEqual(try chunkBytes(child.ulid), firstWindow)
        XCTAssertEqual(report.groups.map { [$0.minTime, $0.maxTime] }, [[d + 6 * h, d + 9 * h], [d, d + 6 * h]])
        XCTAssertEqual(db.blockMetas.map { [$0.minTime, $0.maxTime] }, [[d, d + 6 * h], [d + 6 * h, d + 9 * h]])
        XCTAssertEqual(try everything(db), before, "compaction changes no answer")
    }

    /// A querier made before a compaction and a retention pass reads exactly what it read before
    /// them, although their parents' directories are gone by then; a querier made after sees the
    /// retention.
    func testAQuerierKeepsReadingTheBlocksItStartedWith() throws {
        let d = Self.day, h = Self.hour
        for k in Int64(0)..<3 { try writeBlock(d + k * 2 * h, d + (k + 1) * 2 * h, at: [d + k * 2 * h, d + k * 2 * h + 60_000]) }
        try writeBlock(d + 6 * h, d + 8 * h, at: [d + 6 * h, d + 7 * h + 30 * 60_000])
        try writeBlock(d + 7 * h, d + 9 * h, at: [d + 7 * h, d + 8 * h + 30 * 60_000])
        let parents = try BlockCatalog.list(tenantDirectory: directory).map(\.meta.ulid)
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        func read(_ querier: TenantQuerier) throws -> [String: [Int64]] {
            var out: [String: [Int64]] = [:]
            for series in try querier.select([try LabelMatcher("__name__", .equal, "m")], minTime: .min, maxTime: .max) {
                var iterator = series.makeIterator()
                while iterator.advance() { out[series.labels.description, default: []].append(iterator.timestamp) }
            }
            return out
        }
        let querier = db.querier(minTime: .min, maxTime: .max)
        let before = try read(querier)
        XCTAssertEqual(before.values.map(\.count).reduce(0, +), 10)

        XCTAssertEqual(try db.compact().failures, [])
        XCTAssertTrue(parents.allSatisfy { !FileManager.default.fileExists(atPath: directory + "/" + $0) }, "the parents were removed")
        XCTAssertEqual(try read(querier), before, "compaction changes nothing a running query reads")

        XCTAssertFalse(try db.applyRetention(keep: h).isEmpty)
        XCTAssertEqual(try read(querier), before, "retention changes nothing a running query reads")
        XCTAssertNotEqual(try read(db.querier(minTime: .min, maxTime: .max)), before, "a new query sees what retention removed")
    }

    /// The threshold on the counts alone: 5% or more, integer exact, overflow-safe; a block whose
    /// tombstones another tool wrote (no count) is rewritten.
    func testTheFivePercentRuleIsExactAtItsEdge() {
        func meta(samples: UInt64, deleted: UInt64?, tombstones: UInt64? = 1) -> BlockMeta {
            var meta = BlockMeta(ulid: "01H00000000000000000000000", minTime: 0, maxTime: 1,
                                 stats: .init(numSamples: samples, numSeries: 1, numChunks: 1, numTombstones: tombstones),
                                 compaction: .init(level: 1, sources: [], parents: nil, hints: nil), version: 1, thanos: nil)
            meta.tally = deleted.map { BlockMeta.Tally(deletedSamples: $0) }
            return meta
        }
        XCTAssertTrue(CompactionPlanner.holdsMuchDeletedData(meta(samples: 100, deleted: 5)))
        XCTAssertFalse(CompactionPlanner.holdsMuchDeletedData(meta(samples: 100, deleted: 4)))
        XCTAssertTrue(CompactionPlanner.holdsMuchDeletedData(meta(samples: 20, deleted: 1)))
        XCTAssertFalse(CompactionPlanner.holdsMuchDeletedData(meta(samples: 21, deleted: 1)), "1/21 is under 5%")
        XCTAssertFalse(CompactionPlanner.holdsMuchDeletedData(meta(samples: 100, deleted: 0)))
        XCTAssertTrue(CompactionPlanner.holdsMuchDeletedData(meta(samples: .max, deleted: .max / 19)), "20 x deleted overflows: well over 5%")
        XCTAssertTrue(CompactionPlanner.holdsMuchDeletedData(meta(samples: 100, deleted: nil)), "tombstones of unknown size")
        XCTAssertFalse(CompactionPlanner.holdsMuchDeletedData(meta(samples: 100, deleted: nil, tombstones: nil)))
        // Cleaning tombstones takes any deletion, and only blocks that hold one.
        XCTAssertTrue(CompactionPlanner.holdsDeletedData(meta(samples: 100, deleted: 1)))
        XCTAssertTrue(CompactionPlanner.holdsDeletedData(meta(samples: .max, deleted: 1)))
        XCTAssertTrue(CompactionPlanner.holdsDeletedData(meta(samples: 100, deleted: 0)), "a tombstone that covers no sample is cleaned too")
        XCTAssertTrue(CompactionPlanner.holdsDeletedData(meta(samples: 100, deleted: nil)))
        XCTAssertFalse(CompactionPlanner.holdsDeletedData(meta(samples: 100, deleted: nil, tombstones: nil)))
        XCTAssertFalse(CompactionPlanner.holdsDeletedData(meta(samples: 100, deleted: 0, tombstones: 0)))
    }

    /// Through a real deletion and compaction: 5 of 100 samples deleted rewrites the block without
    /// them; 4 of 100 leaves it, tombstones and all.
    func testDeletingFivePercentRewritesTheBlockAndFourPercentDoesNot() throws {
        let d = Self.day
        let timestamps = (0..<100).map { d + Int64($0) * 60_000 }
        for (deleted, rewritten) in [(5, true), (4, false)] {
            try? FileSystem.removeTree(directory)
            try writeBlock(d, d + 2 * Self.hour, at: timestamps)
            let db = try TenantDatabase.open(directory: directory, tenant: "t")
            defer { try? db.close() }
            let deletion = try db.deleteSeries([[try LabelMatcher("s", .equal, "0")]],
                                               in: DeletedInterval(minTime: timestamps[10], maxTime: timestamps[10 + deleted - 1]))
            XCTAssertEqual(deletion.parts.map(\.samples), [deleted])
            XCTAssertEqual(db.blockMetas.first?.tally?.deletedSamples, UInt64(deleted))
            let report = try db.compact()
            XCTAssertEqual(report.groups.map(\.reason), rewritten ? [.deletedData] : [], "\(deleted) of 100 deleted")
            XCTAssertEqual(db.blockMetas.count, 1)
            XCTAssertEqual(db.blockMetas[0].stats.numSamples, rewritten ? UInt64(100 - deleted) : 100)
            XCTAssertEqual(db.blockMetas[0].stats.numTombstones ?? 0, rewritten ? 0 : 1)
            XCTAssertEqual(try everything(db)["{__name__=\"m\", s=\"0\"}"]?.count, 100 - deleted, "reads skip the deleted samples either way")
        }
    }

    /// Cleaning tombstones (Prometheus' `clean_tombstones`) rewrites a block whose deletion is under
    /// the 5% rule, and leaves a block without deletions as it is.
    func testCleaningTombstonesRewritesEveryBlockWithADeletionAndNoOther() throws {
        let d = Self.day
        let timestamps = (0..<100).map { d + Int64($0) * 60_000 }
        try? FileSystem.removeTree(directory)
        try writeBlock(d, d + 2 * Self.hour, at: timestamps)
        try writeBlock(d + 2 * Self.hour, d + 4 * Self.hour, at: timestamps.map { $0 + 2 * Self.hour })
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        let untouched = try XCTUnwrap(db.blockMetas.first { $0.minTime == d + 2 * Self.hour }?.ulid)
        _ = try db.deleteSeries([[try LabelMatcher("s", .equal, "0")]], in: DeletedInterval(minTime: timestamps[10], maxTime: timestamps[10]))
        XCTAssertEqual(try db.compact().groups.count, 0, "1 of 100 deleted: under the 5% rule")
        XCTAssertEqual(CompactionPlanner.simulate(db.blockMetas, ranges: [2 * Self.hour], cleaningTombstones: true).steps.map { $0.map(\.reason) },
                       [[.deletedData]])
        let report = try db.compact(ranges: [2 * Self.hour], cleaningTombstones: true)
        XCTAssertEqual(report.groups.map(\.reason), [.deletedData])
        XCTAssertEqual(report.groups.first?.parents.first?.minTime, d)
        XCTAssertEqual(db.blockMetas.count, 2)
        XCTAssertTrue(db.blockMetas.contains { $0.ulid == untouched }, "a block without deletions is left as it is")
        let cleaned = try XCTUnwrap(db.blockMetas.first { $0.minTime == d })
        XCTAssertEqual(cleaned.stats.numSamples, 99)
        XCTAssertEqual(cleaned.stats.numTombstones ?? 0, 0)
        XCTAssertEqual(try everything(db)["{__name__=\"m\", s=\"0\"}"]?.count, 199)
        XCTAssertEqual(try db.compact(ranges: [2 * Self.hour], cleaningTombstones: true).groups.count, 0, "nothing left to clean")
    }
}
