import TallyTestSupport
import XCTest
@testable import TallyStorage

/// A series' iterator hands out the same samples whether a range window takes them in slices
/// (`appendSamples(through:to:)`) or one at a time (`advance`), across every kind of chunk a querier
/// reads: blocks alone, blocks that overlap (merged into one run), samples deleted by tombstones, and
/// the head.
final class SeriesIteratorTests: XCTestCase {
    static let day: Int64 = 1_700_006_400_000
    static let hour: Int64 = 3_600_000
    static let minute: Int64 = 60_000

    private var directory = ""
    private var db: TenantDatabase!

    override func setUpWithError() throws {
        directory = try temporaryDirectory() + "/tenant"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let d = Self.day, h = Self.hour, m = Self.minute
        func times(_ from: Int64, _ to: Int64, every step: Int64) -> [Int64] {
            var out: [Int64] = []
            var t = from
            while t < to {
                out.append(t)
                t += step
            }
            return out
        }
        // Two chunks a minute apart, alone in their block.
        try writeBlock(d, d + 2 * h, chunks: [times(d, d + h, every: m), times(d + h, d + 2 * h, every: m)], offset: 0)
        // Every 90 s over [1h, 3h): overlaps the block above, so the two are merged into one run.
        try writeBlock(d + h, d + 3 * h, chunks: [times(d + h, d + 3 * h, every: 90_000)], offset: 0.5)
        try writeBlock(d + 4 * h, d + 6 * h, chunks: [times(d + 4 * h, d + 6 * h, every: m)], offset: 0)
        db = try TenantDatabase.open(directory: directory, tenant: "t")
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m")]],
                                in: DeletedInterval(minTime: d + 4 * h + 10 * m, maxTime: d + 4 * h + 20 * m))
        let headStart: Int64 = d + 6 * h
        var head: [(Int64, UInt64)] = (0..<Int64(30)).map { k in (headStart + k * m, Double(headStart + k * m).bitPattern) }
        head.append((headStart + 30 * m, staleMarkerBits))
        _ = try appendSamples(db, "m", head)
    }

    override func tearDown() {
        try? db?.close()
        try? FileSystem.removeTree(String(directory.dropLast("/tenant".count)))
    }

    private func writeBlock(_ minTime: Int64, _ maxTime: Int64, chunks: [[Int64]], offset: Double, into directory: String? = nil) throws {
        let encoded = chunks.map { timestamps in
            var chunk = XORChunk()
            for t in timestamps { chunk.append(timestamp: t, valueBits: (Double(t) + offset).bitPattern) }
            return EncodedChunk(minTime: timestamps[0], maxTime: timestamps[timestamps.count - 1], bytes: chunk.bytes)
        }
        _ = try BlockWriter.write(series: [BlockSeries(labels: [("__name__", "m")], chunks: encoded)], minTime: minTime, maxTime: maxTime,
                              into: directory ?? self.directory, tenant: "t")
    }

    private func series() throws -> QueriedSeries {
        let selected = try db.querier(minTime: .min, maxTime: .max).select([try LabelMatcher("__name__", .equal, "m")], minTime: .min, maxTime: .max)
        XCTAssertEqual(selected.count, 1)
        return try XCTUnwrap(selected.first)
    }

    private func oneAtATime() throws -> [Sample] {
        var iterator = try series().makeIterator()
        var out: [Sample] = []
        while iterator.advance() { out.append(Sample(timestamp: iterator.timestamp, valueBits: iterator.valueBits)) }
        return out
    }

    func testSlicesOfEveryWidthHandOutEachSampleOnceInOrder() throws {
        let expected = try oneAtATime()
        let d = Self.day, h = Self.hour
        // 120 + 80 merged into 180 distinct timestamps (20 shared), 120 less 11 deleted, 31 in the head.
        XCTAssertEqual(expected.count, 180 + 109 + 31)
        XCTAssertEqual(expected.map(\.timestamp), expected.map(\.timestamp).sorted())
        XCTAssertEqual(Set(expected.map(\.timestamp)).count, expected.count)
        // Where both blocks hold a timestamp, the earlier block's sample is the one read.
        XCTAssertEqual(expected.first { $0.timestamp == d + h + 3 * Self.minute }?.valueBits, Double(d + h + 3 * Self.minute).bitPattern)

        for width: Int64 in [1, Self.minute - 1, Self.minute, 7 * Self.minute, h, 7 * h] {
            var iterator = try series().makeIterator()
            var collected: [Sample] = []
            var through = d - 1
            while through < d + 7 * h {
                let before = collected.count
                iterator.appendSamples(through: through, to: &collected)
                XCTAssertTrue(collected[before...].allSatisfy { $0.timestamp <= through }, "width \(width): nothing past the window's end")
                through += width
            }
            XCTAssertEqual(collected, expected, "width \(width)")
        }
    }

    /// Slices cut by a count rather than a time (a reader a batch ahead) hand out the same samples,
    /// through merged runs, deletions and the head.
    func testSlicesOfAtMostSomeSamplesHandOutEachSampleOnce() throws {
        let expected = try oneAtATime()
        for limit in [1, 7, 128, 129, 1000] {
            var iterator = try series().makeIterator()
            var collected: [Sample] = []
            while true {
                let before = collected.count
                iterator.appendSamples(through: .max, to: &collected, limit: limit)
                XCTAssertLessThanOrEqual(collected.count - before, limit)
                if collected.count == before { break }
            }
            XCTAssertEqual(collected, expected, "limit \(limit)")
        }
    }

    /// After a slice, the sample it stopped before is the next one `advance` and `seek` give.
    func testTheSampleAfterASliceComesNext() throws {
        let expected = try oneAtATime()
        let d = Self.day, h = Self.hour
        var slices: [Sample] = []
        var iterator = try series().makeIterator()
        iterator.appendSamples(through: d + h + 30 * Self.minute, to: &slices)
        XCTAssertTrue(iterator.advance())
        XCTAssertEqual(iterator.timestamp, expected[slices.count].timestamp)

        var seeking = try series().makeIterator()
        slices = []
        seeking.appendSamples(through: d + 2 * h, to: &slices)
        let held = expected[slices.count].timestamp
        XCTAssertTrue(seeking.seek(held - 1), "the held sample answers a seek before it")
        XCTAssertEqual(seeking.timestamp, held)
        XCTAssertTrue(seeking.advance())
        XCTAssertEqual(seeking.timestamp, expected[slices.count + 1].timestamp)

        var skipping = try series().makeIterator()
        slices = []
        skipping.appendSamples(through: d + 2 * h, to: &slices)
        XCTAssertTrue(skipping.seek(d + 5 * h), "a seek past the held sample moves on")
        XCTAssertEqual(skipping.timestamp, d + 5 * h)
        slices = []
        skipping.appendSamples(through: d + 5 * h + 2 * Self.minute, to: &slices)
        XCTAssertEqual(slices.map(\.timestamp), [d + 5 * h + Self.minute, d + 5 * h + 2 * Self.minute])
    }

    /// Skipping to a time, from anywhere in the reading (before the first sample, inside a chunk,
    /// inside the merged run, at a held sample), leaves a tail of the samples in order that starts
    /// no later than the first unread sample at or after that time: whole chunks before it go
    /// unread, nothing after it is lost.
    func testSkippingChunksLeavesEverySampleFromThatTimeOn() throws {
        let expected = try oneAtATime()
        let d = Self.day, h = Self.hour, m = Self.minute
        for readFirst in [0, 1, 30, 61, 150, 200, 250, 300] {
            for skipTo in [d - 1, d + 30 * m, d + h + 5 * m, d + 3 * h, d + 4 * h + 15 * m, d + 5 * h + 30 * m, d + 6 * h + 10 * m, d + 8 * h] {
                var iterator = try series().makeIterator()
                var collected: [Sample] = []
                iterator.appendSamples(through: .max, to: &collected, limit: readFirst)
                iterator.skipChunks(endingBefore: skipTo)
                var rest: [Sample] = []
                iterator.appendSamples(through: .max, to: &rest)
                let context = "read \(readFirst), skip to \(skipTo - d)"
                let start = expected.count - rest.count
                XCTAssertGreaterThanOrEqual(start, collected.count, context)
                XCTAssertEqual(rest, Array(expected[start...]), "\(context): a tail, in order")
                let firstWanted = max(collected.count, expected.firstIndex { $0.timestamp >= skipTo } ?? expected.count)
                XCTAssertLessThanOrEqual(start, firstWanted, "\(context): nothing at or after it, nor unread, lost")
            }
        }
        // A skip past a whole chunk reads none of it: the two-chunk block's second chunk starts at 1h.
        var iterator = try series().makeIterator()
        iterator.skipChunks(endingBefore: d + h)
        XCTAssertTrue(iterator.advance())
        XCTAssertEqual(iterator.timestamp, d + h)
    }

    /// A chunk far longer than the batches a slice decodes in: slices that end inside a batch, on
    /// its edge, and past the chunk's end all hand out what `advance` does.
    func testLongChunksAreHandedOutAcrossBatchEdges() throws {
        let other = String(directory.dropLast("/tenant".count)) + "/long"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let d = Self.day, second: Int64 = 1000
        let times = (0..<Int64(1000)).map { d + $0 * second }
        try writeBlock(d, d + 2 * Self.hour, chunks: [times], offset: 0.25, into: other)
        let long = try TenantDatabase.open(directory: other, tenant: "t")
        defer { try? long.close() }
        func makeIterator() throws -> SeriesIterator {
            let selected = try long.querier(minTime: .min, maxTime: .max).select([try LabelMatcher("__name__", .equal, "m")], minTime: .min, maxTime: .max)
            return try XCTUnwrap(selected.first).makeIterator()
        }
        var one = try makeIterator()
        var expected: [Sample] = []
        while one.advance() { expected.append(Sample(timestamp: one.timestamp, valueBits: one.valueBits)) }
        XCTAssertEqual(expected.map(\.timestamp), times)
        for width in [1, 127, 128, 129, 300, 2000].map({ Int64($0) * second }) {
            var iterator = try makeIterator()
            var collected: [Sample] = []
            var through = d - 1
            while through < d + 1000 * second + width {
                let before = collected.count
                iterator.appendSamples(through: through, to: &collected)
                XCTAssertTrue(collected[before...].allSatisfy { $0.timestamp <= through }, "width \(width): nothing past the window's end")
                if collected.count < expected.count {
                    XCTAssertTrue(iterator.advance(), "width \(width)")
                    XCTAssertEqual(iterator.timestamp, expected[collected.count].timestamp, "width \(width): the held sample comes next")
                    collected.append(Sample(timestamp: iterator.timestamp, valueBits: iterator.valueBits))
                }
                through += width
            }
            XCTAssertEqual(collected, expected, "width \(width)")
        }
    }
}
