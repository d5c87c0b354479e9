@testable import TallyStorage
import XCTest

/// `RetentionPolicy.expired` as a table: blocks ([minTime, maxTime)), `keep`, and the blocks dropped,
/// oldest first. The rule (its doc comment, and Prometheus' `BeyondTimeRetention`): a block expires
/// when it ends `keep` or more before the newest block ends, so a block ending exactly `keep` before
/// is dropped and one ending a millisecond later is kept.
final class RetentionPolicyTests: XCTestCase {
    struct Row {
        let name: String
        /// (name, minTime, maxTime)
        let blocks: [(String, Int64, Int64)]
        let keep: Int64
        let expired: [String]
    }

    func testExpiredBlocks() {
        let h = CompactionPlannerTableTests.h, d = CompactionPlannerTableTests.d, max = Int64.max, min = Int64.min
        let rows = [
            Row(name: "no blocks", blocks: [], keep: h, expired: []),
            Row(name: "no blocks, keep 0", blocks: [], keep: 0, expired: []),
            Row(name: "the newest block is never older than itself", blocks: [("A", d, d + 2 * h)], keep: 1, expired: []),
            Row(name: "keep 0 drops every block, the newest too (callers refuse keep <= 0)",
                blocks: [("A", d, d + 2 * h), ("B", d + 2 * h, d + 4 * h)], keep: 0, expired: ["A", "B"]),
            Row(name: "ending exactly keep before the newest end: dropped",
                blocks: [("A", d, d + 2 * h), ("B", d + 2 * h, d + 4 * h), ("C", d + 4 * h, d + 6 * h)], keep: 4 * h, expired: ["A"]),
            Row(name: "ending one millisecond after that: kept",
                blocks: [("A", d, d + 2 * h + 1), ("B", d + 2 * h + 1, d + 4 * h), ("C", d + 4 * h, d + 6 * h)], keep: 4 * h, expired: []),
            Row(name: "measured from the newest end, not its start nor the clock",
                blocks: [("A", d - 30 * 24 * h, d - 29 * 24 * h), ("B", d - 24 * h, d), ("C", d, d + 30 * 24 * h)], keep: 30 * 24 * h,
                expired: ["A", "B"]),
            Row(name: "oldest first, whatever the order given",
                blocks: [("C", d + 4 * h, d + 6 * h), ("A", d, d + 2 * h), ("D", d + 8 * h, d + 10 * h), ("B", d + 2 * h, d + 4 * h)], keep: 5 * h,
                expired: ["A", "B"]),
            Row(name: "a long block that started early but ends late is kept",
                blocks: [("A", d - 100 * h, d + 9 * h), ("B", d + 2 * h, d + 4 * h), ("C", d + 8 * h, d + 10 * h)], keep: 5 * h, expired: ["B"]),
            Row(name: "blocks ending together with the newest", blocks: [("A", d, d + 2 * h), ("B", d + h, d + 2 * h)], keep: 1, expired: []),
            Row(name: "before the epoch", blocks: [("A", -6 * h, -4 * h), ("B", -4 * h, -2 * h)], keep: 2 * h, expired: ["A"]),
            Row(name: "huge keep", blocks: [("A", d, d + 2 * h), ("B", d + 2 * h, d + 4 * h)], keep: max, expired: []),
            Row(name: "huge keep before the epoch: newest - keep is below Int64.min",
                blocks: [("A", -6 * h, -4 * h), ("B", -4 * h, -2 * h)], keep: max, expired: []),
            Row(name: "huge keep at the start of time", blocks: [("A", min, min), ("B", min, min + 1)], keep: max, expired: []),
            Row(name: "keep 1 at the start of time", blocks: [("A", min, min), ("B", min, min + 1)], keep: 1, expired: ["A"]),
            Row(name: "keep 1 with the newest at Int64.min", blocks: [("A", min, min)], keep: 1, expired: []),
            Row(name: "ages past Int64.max are over any keep", blocks: [("A", min, min + 1), ("B", max - 1, max)], keep: max, expired: ["A"]),
            Row(name: "a negative keep drops every block", blocks: [("A", d, d + 2 * h), ("B", min, max)], keep: -1, expired: ["B", "A"]),
            Row(name: "keep Int64.min", blocks: [("A", 0, max), ("B", max, max)], keep: min, expired: ["A", "B"]),
        ]
        for row in rows {
            let metas = row.blocks.map { blockMeta($0.0, $0.1, $0.2) }
            XCTAssertEqual(RetentionPolicy.expired(metas, keep: row.keep).map(\.ulid), row.expired, row.name)
        }
    }
}
