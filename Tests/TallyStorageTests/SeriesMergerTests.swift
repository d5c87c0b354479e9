@testable import TallyStorage
import TallyTestSupport
import XCTest

/// `SeriesMerger`: series from several sources (blocks in time order, then the head) merged by label
/// set, samples by timestamp. As documented, a timestamp held by more than one source is kept once,
/// from the earliest source; the result is in label order.
final class SeriesMergerTests: XCTestCase {
    /// A sample whose value names where it came from.
    static func s(_ timestamp: Int64, _ value: Double) -> Sample { Sample(timestamp: timestamp, valueBits: value.bitPattern) }

    static func series(_ name: String, _ samples: [(Int64, Double)]) -> SeriesSamples {
        SeriesSamples(labels: Labels(["__name__": "m", "s": name]), samples: samples.map { s($0.0, $0.1) })
    }

    /// A merged series as the rows write it: its `s` label, then (timestamp, value) pairs.
    private static func flat(_ merged: [SeriesSamples]) -> [String] {
        merged.map { series in
            (series.labels["s"] ?? "?") + ":" + series.samples.map { "\($0.timestamp)=\(Double(bitPattern: $0.valueBits))" }.joined(separator: ",")
        }
    }

    struct Row {
        let name: String
        let sources: [[SeriesSamples]]
        let expected: [String]
    }

    func testMerge() {
        let series = Self.series
        let rows = [
            Row(name: "no sources", sources: [], expected: []),
            Row(name: "sources without series", sources: [[], [], []], expected: []),
            Row(name: "one series", sources: [[series("a", [(1, 1), (2, 1)])]], expected: ["a:1=1.0,2=1.0"]),
            Row(name: "different series, in label order whatever the source order",
                sources: [[series("c", [(1, 1)])], [series("a", [(1, 2)]), series("b", [(5, 2)])]], expected: ["a:1=2.0", "b:5=2.0", "c:1=1.0"]),
            Row(name: "a series in time order across sources is appended",
                sources: [[series("a", [(1, 1), (2, 1)])], [series("a", [(3, 2), (4, 2)])]], expected: ["a:1=1.0,2=1.0,3=2.0,4=2.0"]),
            Row(name: "a later source with earlier samples is merged into order",
                sources: [[series("a", [(3, 1), (4, 1)])], [series("a", [(1, 2), (2, 2)])]], expected: ["a:1=2.0,2=2.0,3=1.0,4=1.0"]),
            Row(name: "interleaved timestamps", sources: [[series("a", [(1, 1), (3, 1), (5, 1)])], [series("a", [(2, 2), (4, 2), (6, 2)])]],
                expected: ["a:1=1.0,2=2.0,3=1.0,4=2.0,5=1.0,6=2.0"]),
            Row(name: "a timestamp held twice is kept from the earlier source",
                sources: [[series("a", [(1, 1), (2, 1), (3, 1)])], [series("a", [(2, 2), (3, 2), (4, 2)])]],
                expected: ["a:1=1.0,2=1.0,3=1.0,4=2.0"]),
            Row(name: "the earliest of three sources wins, and the second over the third",
                sources: [[series("a", [(2, 1)])], [series("a", [(1, 2), (2, 2), (3, 2)])], [series("a", [(1, 3), (2, 3), (3, 3), (4, 3)])]],
                expected: ["a:1=2.0,2=1.0,3=2.0,4=3.0"]),
            Row(name: "the same samples in every source", sources: Array(repeating: [series("a", [(1, 1), (2, 1)])], count: 4),
                expected: ["a:1=1.0,2=1.0"]),
            Row(name: "a source with nothing for a series in between",
                sources: [[series("a", [(1, 1)])], [series("b", [(1, 2)])], [series("a", [(1, 3), (2, 3)])]], expected: ["a:1=1.0,2=3.0", "b:1=2.0"]),
            Row(name: "negative and extreme timestamps", sources: [[series("a", [(0, 1), (.max, 1)])], [series("a", [(.min, 2), (-1, 2), (.max, 2)])]],
                expected: ["a:\(Int64.min)=2.0,-1=2.0,0=1.0,\(Int64.max)=1.0"]),
        ]
        for row in rows {
            XCTAssertEqual(Self.flat(SeriesMerger.merge(row.sources)), row.expected, row.name)
        }
    }

    /// Labels that differ only in a value's case or a label's presence are different series.
    func testSeriesAreKeyedByTheWholeLabelSet() {
        let sources = [[SeriesSamples(labels: Labels(["__name__": "m", "s": "a"]), samples: [Self.s(1, 1)])],
                       [SeriesSamples(labels: Labels(["__name__": "m", "s": "A"]), samples: [Self.s(1, 2)]),
                        SeriesSamples(labels: Labels(["__name__": "m", "s": "a", "t": ""]), samples: [Self.s(1, 3)]),
                        SeriesSamples(labels: Labels(["s": "a", "__name__": "m"]), samples: [Self.s(1, 4), Self.s(2, 4)])]]
        let merged = SeriesMerger.merge(sources)
        XCTAssertEqual(merged.map(\.labels.description), [#"{__name__="m", s="A"}"#, #"{__name__="m", s="a"}"#, #"{__name__="m", s="a", t=""}"#])
        XCTAssertEqual(merged.map { $0.samples.map(\.valueBits) }, [[2], [1, 4], [3]].map { $0.map { Double($0).bitPattern } })
    }

    /// Many sources, many series, random overlaps, against a model: for each series and timestamp,
    /// the value of the first source that holds it.
    func testManySourcesAgainstAModel() {
        var random = SeededGenerator(test: "SeriesMergerTests", fixedSeed: 14)
        for _ in 0..<20 {
            let sourceCount = Int.random(in: 1...60, using: &random)
            var sources: [[SeriesSamples]] = []
            var model: [String: [Int64: Double]] = [:]
            for source in 0..<sourceCount {
                var seriesList: [SeriesSamples] = []
                for name in ["a", "b", "c", "d", "e"].filter({ _ in Bool.random(using: &random) }).shuffled(using: &random) {
                    let base = Int64.random(in: -50...200, using: &random)
                    let timestamps = Set((0..<Int.random(in: 0...30, using: &random)).map { _ in base + Int64.random(in: 0...60, using: &random) }).sorted()
                    seriesList.append(Self.series(name, timestamps.map { ($0, Double(source)) }))
                    for t in timestamps where model[name]?[t] == nil { model[name, default: [:]][t] = Double(source) }
                }
                sources.append(seriesList)
            }
            let expected = model.keys.sorted().map { name in
                name + ":" + model[name]!.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            }
            // A series in a source with no samples is still a series of the result.
            let empty = Set(sources.flatMap { $0.filter(\.samples.isEmpty).map { $0.labels["s"]! } }).subtracting(model.keys).sorted().map { $0 + ":" }
            XCTAssertEqual(Self.flat(SeriesMerger.merge(sources)), (expected + empty).sorted(), "\(sourceCount) sources")
        }
    }

    func testSortedUniqueKeepsTheFirstSampleOfEachTimestamp() {
        let s = Self.s
        let rows: [(name: String, input: [Sample], expected: [Sample])] = [
            ("empty", [], []),
            ("one", [s(5, 1)], [s(5, 1)]),
            ("sorted already", [s(1, 1), s(2, 1)], [s(1, 1), s(2, 1)]),
            ("reversed", [s(3, 1), s(2, 2), s(1, 3)], [s(1, 3), s(2, 2), s(3, 1)]),
            ("duplicates: the first in input order wins", [s(2, 1), s(1, 2), s(2, 3), s(1, 4), s(2, 5)], [s(1, 2), s(2, 1)]),
            ("all one timestamp", (0..<100).map { s(7, Double($0)) }, [s(7, 0)]),
            ("extremes", [s(.max, 1), s(.min, 2), s(0, 3), s(.min, 4)], [s(.min, 2), s(0, 3), s(.max, 1)]),
        ]
        for row in rows {
            XCTAssertEqual(SeriesMerger.sortedUnique(row.input), row.expected, row.name)
        }
    }
}
