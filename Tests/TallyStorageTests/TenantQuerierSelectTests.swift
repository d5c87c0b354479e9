import Foundation
import XCTest
@testable import TallyStorage

/// `TenantQuerier.select` reads the blocks of a range on every core once there are several; what
/// it gives must not depend on that: the same series, in label order, with every sample of every
/// block, and the same failure (the first unreadable block in time order) whatever thread read it.
final class TenantQuerierSelectTests: XCTestCase {
    private static let hour: Int64 = 3_600_000
    private var root = ""

    override func setUpWithError() throws { root = try temporaryDirectory() }
    override func tearDown() { try? FileSystem.removeTree(root) }

    /// Block `b` covers [2h b, 2h (b + 1)) and holds `m{k=...}` for each key whose number divides
    /// into `b + 1` or that is "all": series come and go between blocks. Values repeat in runs, as
    /// a price or an allocation does.
    private func writeBlocks(_ count: Int) throws -> (directory: String, expected: [String: [Sample]], ulids: [String]) {
        let directory = root + "/tenant"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var expected: [String: [Sample]] = [:]
        var ulids: [String] = []
        for b in 0..<count {
            let start = Int64(b) * 2 * Self.hour
            let keys = ["all"] + (1...4).filter { (b + 1) % $0 == 0 }.map(String.init)
            let series = keys.map { key in
                let chunks = (0..<2).map { c in
                    var chunk = XORChunk()
                    var samples: [Sample] = []
                    for minute in 0..<60 {
                        let t = start + Int64(c * 60 + minute) * 60_000
                        let value = Double(key.count * 1000 + b * 10 + minute / 25)
                        chunk.append(timestamp: t, valueBits: value.bitPattern)
                        samples.append(Sample(timestamp: t, valueBits: value.bitPattern))
                    }
                    expected[key, default: []] += samples
                    return EncodedChunk(minTime: samples[0].timestamp, maxTime: samples[59].timestamp, bytes: chunk.bytes)
                }
                return BlockSeries(labels: [("__name__", "m"), ("k", key)], chunks: chunks)
            }
            ulids.append(try BlockWriter.write(series: series, minTime: start, maxTime: start + 2 * Self.hour, into: directory, tenant: "t").ulid)
        }
        return (directory, expected, ulids)
    }

    private func samples(_ series: QueriedSeries) -> [Sample] {
        var iterator = series.makeIterator()
        var out: [Sample] = []
        iterator.appendSamples(through: .max, to: &out)
        return out
    }

    func testManyBlocksGiveEverySeriesAndSampleInOrder() throws {
        let (directory, expected, _) = try writeBlocks(12)
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        let querier = db.querier(minTime: .min, maxTime: .max)
        let selected = try querier.select([try LabelMatcher("__name__", .equal, "m")], minTime: .min, maxTime: .max)
        XCTAssertEqual(selected.map { $0.labels["k"]! }, expected.keys.sorted())
        for series in selected {
            XCTAssertEqual(samples(series), expected[series.labels["k"]!], series.labels.description)
        }
        // A window inside the range: only the blocks it meets, cut to their chunks in it.
        let lo = 5 * Self.hour, hi = 9 * Self.hour - 1
        let window = try querier.select([try LabelMatcher("k", .regex, "all|2")], minTime: lo, maxTime: hi)
        XCTAssertEqual(window.map { $0.labels["k"]! }, ["2", "all"])
        for series in window {
            let got = samples(series).filter { $0.timestamp >= lo && $0.timestamp <= hi }
            XCTAssertEqual(got, expected[series.labels["k"]!]!.filter { $0.timestamp >= lo && $0.timestamp <= hi })
        }
    }

    func testTheFirstCorruptBlockInTimeOrderFailsTheSelection() throws {
        let (directory, _, ulids) = try writeBlocks(10)
        // A byte inside the first chunk's data (of the first series, `k="1"`), in blocks 4 and 8: its
        // checksum no longer matches.
        for b in [4, 8] {
            let path = directory + "/" + ulids[b] + "/chunks/000001"
            var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
            bytes[8 + 1 + 1 + 4] ^= 0xff
            try bytes.write(to: URL(fileURLWithPath: path))
        }
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        let querier = db.querier(minTime: .min, maxTime: .max)
        for _ in 0..<20 {
            XCTAssertThrowsError(try querier.select([try LabelMatcher("__name__", .equal, "m")], minTime: .min, maxTime: .max)) { error in
                XCTAssertTrue("\(error)".contains(ulids[4]), "\(error)")
                XCTAssertTrue("\(error)".contains("checksum mismatch in chunk"), "\(error)")
            }
        }
        // Blocks before the damage still answer, and series whose chunks are whole.
        XCTAssertEqual(try querier.select([try LabelMatcher("__name__", .equal, "m")], minTime: 0, maxTime: 8 * Self.hour - 1).count, 5)
        XCTAssertEqual(try querier.select([try LabelMatcher("k", .equal, "all")], minTime: .min, maxTime: .max).count, 1)
    }
}
