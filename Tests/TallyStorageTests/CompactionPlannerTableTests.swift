@testable import TallyStorage
import XCTest

/// A block meta for the planner and retention tables, named `name` (its ULID, which breaks ties in
/// minTime).
func blockMeta(_ name: String, _ minTime: Int64, _ maxTime: Int64, level: Int = 1, samples: UInt64 = 100,
               deleted: UInt64? = nil, tombstones: UInt64? = nil) -> BlockMeta {
    var meta = BlockMeta(ulid: name, minTime: minTime, maxTime: maxTime,
                         stats: .init(numSamples: samples, numSeries: 1, numChunks: 1, numTombstones: tombstones ?? deleted.map { _ in 1 }),
                         compaction: .init(level: level, sources: [name], parents: nil, hints: nil), version: 1, thanos: nil)
    meta.tally = deleted.map { BlockMeta.Tally(deletedSamples: $0) }
    return meta
}

/// `CompactionPlanner.plan` and `simulate` on block metas alone, as tables: each row is a set of
/// blocks ([minTime, maxTime), level, tombstone counts), the ranges, and the groups expected.
///
/// Where Tally follows Prometheus 2.42 (`tsdb/compact.go`): overlapping blocks are found as
/// `selectOverlappingDirs` finds them (sorted by minTime, a block overlaps the group while it starts
/// before the group's furthest end) and win over everything; windows are aligned as `splitByRange`
/// aligns them (floor division, so negative times too) and a block belongs to its start's window only
/// when it ends inside it. Where Tally's doc comment says otherwise, the rows hold its rule: every
/// overlapping group and every due window of the first range that has one is planned in one call
/// (Prometheus returns one group); a window is due once it ends at or before the newest block's end
/// (Prometheus leaves out the newest block and compares with its start), and the child spans the whole
/// window; and the deleted-data rewrite counts samples (5% or more), not tombstones against series.
final class CompactionPlannerTableTests: XCTestCase {
    static let h: Int64 = 3_600_000
    /// A UTC midnight.
    static let d: Int64 = 1_700_006_400_000

    /// `count` adjacent blocks of `span` from `start`, named from `first` on ("A", "B", ...).
    static func run(_ count: Int, of span: Int64, from start: Int64, first: Character = "A", level: Int = 1) -> [BlockMeta] {
        (0..<count).map { k in
            blockMeta(String(UnicodeScalar(first.unicodeScalars.first!.value + UInt32(k))!), start + Int64(k) * span, start + Int64(k + 1) * span,
                  level: level)
        }
    }

    /// A planned group as the rows write it.
    struct Group: Equatable, CustomStringConvertible {
        let reason: CompactionGroup.Reason
        let parents: [String]
        let minTime: Int64
        let maxTime: Int64

        init(_ reason: CompactionGroup.Reason, _ parents: [String], _ minTime: Int64, _ maxTime: Int64) {
            (self.reason, self.parents, self.minTime, self.maxTime) = (reason, parents, minTime, maxTime)
        }

        init(_ group: CompactionGroup) { self.init(group.reason, group.parents.map(\.ulid), group.minTime, group.maxTime) }

        var description: String { "\(reason.rawValue)(\(parents.joined(separator: ",")) [\(minTime), \(maxTime)))" }
    }

    struct Row {
        let name: String
        let blocks: [BlockMeta]
        var ranges = CompactionPlanner.defaultRanges
        let expected: [Group]
    }

    /// Each row planned as given and with its blocks reversed (the planner sorts them itself).
    private func check(_ rows: [Row], file: StaticString = #filePath, line: UInt = #line) {
        for row in rows {
            for blocks in [row.blocks, Array(row.blocks.reversed())] {
                XCTAssertEqual(CompactionPlanner.plan(blocks, ranges: row.ranges).map(Group.init), row.expected, row.name, file: file, line: line)
            }
        }
    }

    func testDefaultRangesAre2h6h24h() {
        XCTAssertEqual(CompactionPlanner.defaultRanges, [2 * Self.h, 6 * Self.h, 24 * Self.h])
    }

    func testNothingToPlan() {
        let h = Self.h, d = Self.d
        check([
            Row(name: "no blocks", blocks: [], expected: []),
            Row(name: "one 2h block", blocks: [blockMeta("A", d, d + 2 * h)], expected: []),
            Row(name: "one 24h block", blocks: [blockMeta("A", d, d + 24 * h, level: 3)], expected: []),
            Row(name: "two adjacent blocks touch at an end, which is not an overlap, and their window is not behind the newest end",
                blocks: Self.run(2, of: 2 * h, from: d), expected: []),
            Row(name: "one block a window is no merge", blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + 6 * h, d + 8 * h)], expected: []),
            Row(name: "a gap between windows", blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + 8 * h, d + 10 * h), blockMeta("C", d + 12 * h, d + 14 * h)],
                expected: []),
            Row(name: "a single range never levels up", blocks: Self.run(3, of: 2 * h, from: d), ranges: [2 * h], expected: []),
            Row(name: "empty blocks at one instant do not overlap", blocks: [blockMeta("A", d, d), blockMeta("B", d, d)], expected: []),
        ])
    }

    func testOverlappingBlocks() {
        let h = Self.h, d = Self.d
        check([
            Row(name: "two", blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + h, d + 3 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 3 * h)]),
            Row(name: "one millisecond of overlap", blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + 2 * h - 1, d + 4 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 4 * h)]),
            Row(name: "three chained: C overlaps B only", blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + h, d + 3 * h), blockMeta("C", d + 5 * h / 2, d + 4 * h)],
                expected: [Group(.overlapping, ["A", "B", "C"], d, d + 4 * h)]),
            Row(name: "nested: the group ends at the outer block's end", blocks: [blockMeta("A", d, d + 6 * h), blockMeta("B", d + h, d + 2 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 6 * h)]),
            Row(name: "nested, then a block overlapping only the outer one",
                blocks: [blockMeta("A", d, d + 6 * h), blockMeta("B", d + h, d + 2 * h), blockMeta("C", d + 5 * h, d + 7 * h)],
                expected: [Group(.overlapping, ["A", "B", "C"], d, d + 7 * h)]),
            Row(name: "the same range twice: ties in minTime go by ULID", blocks: [blockMeta("B", d, d + 2 * h), blockMeta("A", d, d + 2 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 2 * h)]),
            Row(name: "two separate overlaps are both planned, in time order",
                blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + h, d + 3 * h), blockMeta("C", d + 10 * h, d + 12 * h), blockMeta("D", d + 11 * h, d + 13 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 3 * h), Group(.overlapping, ["C", "D"], d + 10 * h, d + 13 * h)]),
            Row(name: "a block after an overlap that touches its end is left out",
                blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + h, d + 3 * h), blockMeta("C", d + 3 * h, d + 4 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 3 * h)]),
            Row(name: "overlap wins over a due level-up",
                blocks: Self.run(3, of: 2 * h, from: d) + [blockMeta("D", d + 6 * h, d + 8 * h), blockMeta("E", d + 7 * h, d + 9 * h)],
                expected: [Group(.overlapping, ["D", "E"], d + 6 * h, d + 9 * h)]),
            Row(name: "overlap wins over a deleted-data rewrite",
                blocks: [blockMeta("A", d, d + 2 * h, deleted: 50), blockMeta("B", d + 4 * h, d + 6 * h), blockMeta("C", d + 5 * h, d + 7 * h)],
                expected: [Group(.overlapping, ["B", "C"], d + 4 * h, d + 7 * h)]),
            Row(name: "levels do not matter to overlap", blocks: [blockMeta("A", d, d + 24 * h, level: 3), blockMeta("B", d + 23 * h, d + 25 * h)],
                expected: [Group(.overlapping, ["A", "B"], d, d + 25 * h)]),
        ])
    }

    func testLevelUp() {
        let h = Self.h, d = Self.d
        check([
            Row(name: "three 2h blocks fill a 6h window that ends at the newest end (Prometheus would leave the newest out)",
                blocks: Self.run(3, of: 2 * h, from: d), expected: [Group(.levelUp, ["A", "B", "C"], d, d + 6 * h)]),
            Row(name: "a window with gaps, behind a newer block: the child spans the whole window",
                blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + 4 * h, d + 6 * h), blockMeta("C", d + 6 * h, d + 8 * h)],
                expected: [Group(.levelUp, ["A", "B"], d, d + 6 * h)]),
            Row(name: "not before the window lies behind the newest block's end",
                blocks: [blockMeta("A", d, d + 2 * h), blockMeta("B", d + 2 * h, d + 4 * h), blockMeta("C", d + 4 * h, d + 6 * h - 1)], expected: []),
            Row(name: "small blocks inside one window", blocks: [blockMeta("A", d, d + 1), blockMeta("B", d + 1, d + 2), blockMeta("C", d + 6 * h, d + 6 * h + 1)],
                expected: [Group(.levelUp, ["A", "B"], d, d + 6 * h)]),
            Row(name: "every due window of the range, in time order",
                blocks: Self.run(2, of: 2 * h, from: d) + Self.run(2, of: 2 * h, from: d + 6 * h, first: "C") + [blockMeta("E", d + 12 * h, d + 14 * h)],
                expected: [Group(.levelUp, ["A", "B"], d, d + 6 * h), Group(.levelUp, ["C", "D"], d + 6 * h, d + 12 * h)]),
            Row(name: "6h before 24h: a 6h window due means no 24h group in the same step",
                blocks: [blockMeta("A", d, d + 6 * h, level: 2)] + Self.run(3, of: 2 * h, from: d + 6 * h, first: "B"),
                expected: [Group(.levelUp, ["B", "C", "D"], d + 6 * h, d + 12 * h)]),
            Row(name: "four 6h blocks make a day",
                blocks: Self.run(4, of: 6 * h, from: d, level: 2), expected: [Group(.levelUp, ["A", "B", "C", "D"], d, d + 24 * h)]),
            Row(name: "a day is not due while its last 6h is still open",
                blocks: Self.run(3, of: 6 * h, from: d, level: 2) + [blockMeta("D", d + 18 * h, d + 20 * h)], expected: []),
            Row(name: "a block ending after its window straddles it and stays out of it",
                blocks: Self.run(2, of: 2 * h, from: d) + [blockMeta("C", d + 5 * h, d + 7 * h), blockMeta("D", d + 7 * h, d + 9 * h)],
                expected: [Group(.levelUp, ["A", "B"], d, d + 6 * h)]),
            Row(name: "a straddling block alone leaves nothing at 6h; at 24h the rest of the day merges without it",
                blocks: Self.run(3, of: 6 * h, from: d, level: 2) + [blockMeta("D", d + 18 * h, d + 26 * h, level: 2)],
                expected: [Group(.levelUp, ["A", "B", "C"], d, d + 24 * h)]),
            Row(name: "a block longer than every range is never a parent",
                blocks: [blockMeta("A", d - 48 * h, d), blockMeta("B", d, d + 2 * h), blockMeta("C", d + 2 * h, d + 4 * h), blockMeta("D", d + 6 * h, d + 8 * h)],
                expected: [Group(.levelUp, ["B", "C"], d, d + 6 * h)]),
            Row(name: "splitByRange's example: [0,10) [10,20) [50,60) [90,100) by 30",
                blocks: [blockMeta("A", 0, 10), blockMeta("B", 10, 20), blockMeta("C", 50, 60), blockMeta("D", 90, 100)], ranges: [10, 30],
                expected: [Group(.levelUp, ["A", "B"], 0, 30)]),
            Row(name: "ranges of zero or less are skipped", blocks: Self.run(3, of: 2 * h, from: d), ranges: [2 * h, 0, -6 * h, 6 * h],
                expected: [Group(.levelUp, ["A", "B", "C"], d, d + 6 * h)]),
            Row(name: "level-up wins over a deleted-data rewrite",
                blocks: [blockMeta("A", d, d + 2 * h, deleted: 50), blockMeta("B", d + 2 * h, d + 4 * h), blockMeta("C", d + 6 * h, d + 8 * h)],
                expected: [Group(.levelUp, ["A", "B"], d, d + 6 * h)]),
        ])
    }

    func testNegativeTimesUseFloorDivision() {
        let h = Self.h
        check([
            Row(name: "the 6h before the epoch", blocks: Self.run(3, of: 2 * h, from: -6 * h), expected: [Group(.levelUp, ["A", "B", "C"], -6 * h, 0)]),
            Row(name: "unaligned blocks before the epoch fall in [-6h, 0), not [0, 6h)",
                blocks: [blockMeta("A", -5 * h, -3 * h), blockMeta("B", -3 * h, -1 * h), blockMeta("C", 0, 2 * h)],
                expected: [Group(.levelUp, ["A", "B"], -6 * h, 0)]),
            Row(name: "a block across the epoch belongs to neither window",
                blocks: [blockMeta("A", -4 * h, -2 * h), blockMeta("B", -1 * h, 1 * h), blockMeta("C", 2 * h, 4 * h), blockMeta("D", 6 * h, 8 * h)], expected: []),
            Row(name: "-1 ms is in the window before 0", blocks: [blockMeta("A", -1, 0), blockMeta("B", -2, -1), blockMeta("C", 0, 1)],
                ranges: [1, 10], expected: [Group(.levelUp, ["B", "A"], -10, 0)]),
            Row(name: "a day before the epoch", blocks: Self.run(4, of: 6 * h, from: -24 * h, level: 2),
                expected: [Group(.levelUp, ["A", "B", "C", "D"], -24 * h, 0)]),
        ])
    }

    /// Times the planner is handed as values (a meta.json read from disk is bounded to ±2^54 ms, but
    /// `plan` is public): windows whose bounds do not fit in Int64 are never due, and nothing traps.
    func testInt64ExtremesDoNotTrap() {
        let max = Int64.max, min = Int64.min
        check([
            Row(name: "one block over all time", blocks: [blockMeta("A", min, max)], expected: []),
            Row(name: "at both ends of time", blocks: [blockMeta("A", min, min + 1), blockMeta("B", max - 1, max)], expected: []),
            Row(name: "two blocks in the last window, which ends past Int64.max", blocks: [blockMeta("A", max - 2, max - 1), blockMeta("B", max - 1, max)],
                expected: []),
            Row(name: "two blocks in the first window, which starts before Int64.min",
                blocks: [blockMeta("A", min, min + 1), blockMeta("B", min + 1, min + 2), blockMeta("C", 0, 1)], expected: []),
            Row(name: "overlap at the extremes", blocks: [blockMeta("A", min, max), blockMeta("B", 0, 1)], expected: [Group(.overlapping, ["A", "B"], min, max)]),
            Row(name: "a range of Int64.max: its first window is [0, Int64.max)", blocks: [blockMeta("A", 0, 1), blockMeta("B", 1, 2), blockMeta("C", 3, max)],
                ranges: [1, max, max], expected: [Group(.levelUp, ["A", "B", "C"], 0, max)]),
            Row(name: "a range of Int64.max before the epoch: [-Int64.max, 0)", blocks: [blockMeta("A", -2, -1), blockMeta("B", -1, 0)], ranges: [1, max],
                expected: [Group(.levelUp, ["A", "B"], -max, 0)]),
            Row(name: "a window of Int64.max starting below Int64.min", blocks: [blockMeta("A", min, min), blockMeta("B", min, min + 1), blockMeta("C", 0, 1)],
                ranges: [1, max], expected: []),
        ])
    }

    /// Extends `CompactionRuleTests.testTheFivePercentRuleIsExactAtItsEdge` (the threshold on one
    /// meta) to the plan: which blocks are rewritten, alone, in time order, and only when nothing
    /// else is due.
    func testDeletedDataRewrite() {
        let h = Self.h, d = Self.d
        check([
            Row(name: "5% of samples deleted", blocks: [blockMeta("A", d, d + 2 * h, samples: 100, deleted: 5)],
                expected: [Group(.deletedData, ["A"], d, d + 2 * h)]),
            Row(name: "4% of samples deleted", blocks: [blockMeta("A", d, d + 2 * h, samples: 100, deleted: 4)], expected: []),
            Row(name: "tombstones without a count (another tool wrote them)", blocks: [blockMeta("A", d, d + 2 * h, tombstones: 3)],
                expected: [Group(.deletedData, ["A"], d, d + 2 * h)]),
            Row(name: "each block alone, in time order, whatever its size or level",
                blocks: [blockMeta("B", d + 24 * h, d + 26 * h, deleted: 100), blockMeta("A", d, d + 24 * h, level: 3, samples: 1000, deleted: 50),
                         blockMeta("C", d + 26 * h, d + 28 * h, deleted: 1)],
                expected: [Group(.deletedData, ["A"], d, d + 24 * h), Group(.deletedData, ["B"], d + 24 * h, d + 26 * h)]),
            Row(name: "a window that is not due does not hold back a rewrite",
                blocks: [blockMeta("A", d, d + 2 * h, deleted: 5), blockMeta("B", d + 2 * h, d + 4 * h)],
                expected: [Group(.deletedData, ["A"], d, d + 2 * h)]),
        ])
    }

    /// Every step to the end, merges simulated on the metas: the reasons of each step and the
    /// blocks left.
    func testSimulateRunsEveryStepToTheEnd() {
        let h = Self.h, d = Self.d
        struct Row {
            let name: String
            let blocks: [BlockMeta]
            let steps: [[CompactionGroup.Reason]]
            let blocksAfter: Int
        }
        let rows = [
            Row(name: "nothing to do", blocks: [blockMeta("A", d, d + 2 * h)], steps: [], blocksAfter: 1),
            Row(name: "a day of 2h blocks: four 6h merges, then one 24h", blocks: Self.run(12, of: 2 * h, from: d),
                steps: [Array(repeating: .levelUp, count: 4), [.levelUp]], blocksAfter: 1),
            Row(name: "overlap first, then the window it no longer blocks",
                blocks: Self.run(3, of: 2 * h, from: d) + [blockMeta("D", d + 6 * h, d + 8 * h), blockMeta("E", d + 7 * h, d + 9 * h)],
                steps: [[.overlapping], [.levelUp]], blocksAfter: 2),
            Row(name: "a rewritten block is not rewritten again", blocks: [blockMeta("A", d, d + 2 * h, deleted: 50)], steps: [[.deletedData]], blocksAfter: 1),
            Row(name: "an overlap whose child fills a window", blocks: Self.run(3, of: 2 * h, from: d) + [blockMeta("D", d, d + 2 * h)] + [blockMeta("E", d + 6 * h, d + 8 * h)],
                steps: [[.overlapping], [.levelUp]], blocksAfter: 2),
        ]
        for row in rows {
            let (steps, after) = CompactionPlanner.simulate(row.blocks)
            XCTAssertEqual(steps.map { $0.map(\.reason) }, row.steps, row.name)
            XCTAssertEqual(after, row.blocksAfter, row.name)
        }
        // The day's child is two levels above its sources and names all twelve.
        let day = CompactionPlanner.simulate(Self.run(12, of: 2 * h, from: d)).steps.last?.first
        XCTAssertEqual(day.map { BlockCompactor.childCompaction($0.parents).level }, 3)
        XCTAssertEqual(day.map { BlockCompactor.childCompaction($0.parents).sources.count }, 12)
    }
}
