import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Series questions reuse what blocks wholly inside their range answered before, and never past
/// a change: a deletion, a compaction, another tenant's blocks, or a range that covers other blocks.
final class CoveredBlockLabelSetsTests: XCTestCase {
    private static let hour: Int64 = 3_600_000
    private var root = ""

    override func setUpWithError() throws { root = try temporaryDirectory() }
    override func tearDown() { try? FileSystem.removeTree(root) }

    /// A tenant with a block per 2 hours over [0, 2h x `blocks`), each holding `m{k=...}` for `keys`.
    private func tenant(_ name: String, keys: [String], blocks: Int = 3) throws -> TenantDatabase {
        let directory = root + "/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for b in 0..<blocks {
            let start = Int64(b) * 2 * Self.hour
            let series = keys.sorted().map { key in
                var chunk = XORChunk()
                for minute in 0..<120 { chunk.append(timestamp: start + Int64(minute) * 60_000, valueBits: Double(minute).bitPattern) }
                return BlockSeries(labels: [("__name__", "m"), ("k", key)],
                                   chunks: [EncodedChunk(minTime: start, maxTime: start + 119 * 60_000, bytes: chunk.bytes)])
            }
            _ = try BlockWriter.write(series: series, minTime: start, maxTime: start + 2 * Self.hour, into: directory, tenant: name)
        }
        return try TenantDatabase.open(directory: directory, tenant: name)
    }

    private func keys(_ db: TenantDatabase, _ lo: Int64 = .min, _ hi: Int64 = .max) throws -> [String] {
        try db.querier(minTime: lo, maxTime: hi).seriesLabels([try LabelMatcher("__name__", .equal, "m")], minTime: lo, maxTime: hi).map { $0["k"]! }
    }

    func testADeletionIsSeenByTheNextQuestion() throws {
        let db = try tenant("t", keys: ["a", "b", "c"])
        defer { try? db.close() }
        XCTAssertEqual(try keys(db), ["a", "b", "c"])
        XCTAssertEqual(try keys(db), ["a", "b", "c"], "asked again")
        let before = db.querier(minTime: .min, maxTime: .max)
        _ = try db.deleteSeries([[try LabelMatcher("k", .equal, "b")]], in: DeletedInterval(minTime: .min, maxTime: .max))
        XCTAssertEqual(try keys(db), ["a", "c"])
        // Deleted from one block only: the series is still in the others.
        _ = try db.deleteSeries([[try LabelMatcher("k", .equal, "c")]], in: DeletedInterval(minTime: 0, maxTime: 2 * Self.hour - 1))
        XCTAssertEqual(try keys(db), ["a", "c"])
        XCTAssertEqual(try keys(db, 0, 2 * Self.hour - 1), ["a"])
        XCTAssertEqual(try keys(db, 0, 4 * Self.hour - 1), ["a", "c"])
        // A querier made before the deletion still reads the blocks as they were then.
        XCTAssertEqual(try before.seriesLabels([try LabelMatcher("__name__", .equal, "m")], minTime: .min, maxTime: .max).map { $0["k"]! }, ["a", "b", "c"])
    }

    func testEveryRangeAnswersAsItsBlocksDo() throws {
        let db = try tenant("t", keys: ["a", "b"], blocks: 4)
        defer { try? db.close() }
        _ = try db.deleteSeries([[try LabelMatcher("k", .equal, "a")]], in: DeletedInterval(minTime: 2 * Self.hour, maxTime: 6 * Self.hour - 1))
        XCTAssertEqual(try keys(db, 2 * Self.hour, 6 * Self.hour - 1), ["b"])
        // Block b's chunks span [2h b, 2h b + 119 min]; "a" is left in blocks 0 and 3. Asked twice,
        // so the second round can reuse the first's answers.
        func expected(_ lo: Int64, _ hi: Int64) -> [String] {
            let reached = (0..<4).filter { b in
                let start = Int64(b) * 2 * Self.hour
                return start <= hi && start + 119 * 60_000 >= lo
            }
            return reached.isEmpty ? [] : (reached.contains(0) || reached.contains(3) ? ["a", "b"] : ["b"])
        }
        let edges: [Int64] = [.min, 0, 1, 2 * Self.hour - 1, 2 * Self.hour, 4 * Self.hour, 6 * Self.hour - 1, 6 * Self.hour, 8 * Self.hour - 1, .max]
        for _ in 0..<2 {
            for lo in edges {
                for hi in edges where hi >= lo {
                    XCTAssertEqual(try keys(db, lo, hi), expected(lo, hi), "[\(lo), \(hi)]")
                }
            }
        }
    }

    func testCompactionAndOtherTenantsAreNotMixedUp() throws {
        let first = try tenant("first", keys: ["a", "b"])
        let second = try tenant("second", keys: ["x"])
        defer {
            try? first.close()
            try? second.close()
        }
        XCTAssertEqual(try keys(first), ["a", "b"])
        XCTAssertEqual(try keys(second), ["x"])
        _ = try first.compact()
        XCTAssertEqual(first.blockMetas.count, 1, "the three blocks compacted into one")
        XCTAssertEqual(try keys(first), ["a", "b"])
        XCTAssertEqual(try keys(second), ["x"])
    }

    func testTheCacheKeepsToItsBounds() throws {
        var sets = DistinctLabelSets()
        sets.add(Labels([Label("k", "v")]))
        let small = sets.estimatedBytes
        let cache = CoveredBlockLabelSets(maxEntries: 2, maxBytes: 8 * small)
        let keys = (0..<3).map { CoveredBlockLabelSets.Key(tenant: "t", matcherSets: [["k=\"v\""]], readers: [UInt64($0)]) }
        for key in keys { cache.keep(sets, for: key) }
        XCTAssertNil(cache.answer(keys[0]), "the oldest answer made room")
        XCTAssertEqual(cache.answer(keys[1])?.sorted(), [Labels([Label("k", "v")])])
        XCTAssertEqual(cache.answer(keys[2])?.sorted(), [Labels([Label("k", "v")])])
        XCTAssertNil(cache.answer(CoveredBlockLabelSets.Key(tenant: "other", matcherSets: [["k=\"v\""]], readers: [2])), "another tenant's key")
        // An answer larger than an eighth of the bytes is not kept.
        for i in 0..<4 { sets.add(Labels([Label("k", "v\(i)")])) }
        let large = CoveredBlockLabelSets.Key(tenant: "t", matcherSets: [], readers: [9])
        cache.keep(sets, for: large)
        XCTAssertNil(cache.answer(large))
    }

    /// A kept answer has its order kept with it; sets added to a copy afterwards (from blocks the
    /// range covers in part and from the head), with strings that sort before, between and after
    /// the kept ones, come out in label order with the rest, byte order and prefixes included.
    func testSetsAddedAfterTheOrderWasKeptAreOrderedWithTheRest() {
        var rng = SeededGenerator(test: "CoveredBlockLabelSetsTests.testSetsAddedAfterTheOrderWasKeptAreOrderedWithTheRest")
        let alphabet = ["", "a", "b", "B", "é", "z", "0", "~"]
        func labels() -> Labels {
            let names = Set((0..<Int.random(in: 0...4, using: &rng)).map { _ in "n" + alphabet.randomElement(using: &rng)! })
            return Labels(names.map { Label($0, (0..<Int.random(in: 0...3, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()) })
        }
        for _ in 0..<50 {
            var kept = DistinctLabelSets()
            var all: Set<Labels> = []
            for _ in 0..<Int.random(in: 0...30, using: &rng) {
                let set = labels()
                kept.add(set)
                all.insert(set)
            }
            kept.keepOrder()
            var copy = kept
            for _ in 0..<Int.random(in: 0...10, using: &rng) {
                let set = labels()
                copy.add(set)
                all.insert(set)
            }
            XCTAssertEqual(copy.sorted(), all.sorted())
            XCTAssertEqual(copy.sorted(), { var fresh = DistinctLabelSets(); for set in copy.sorted().shuffled(using: &rng) { fresh.add(set) }; return fresh.sorted() }())
        }
    }
}
