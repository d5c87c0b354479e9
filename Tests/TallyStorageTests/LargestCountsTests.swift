@testable import TallyStorage
import TallyTestSupport
import XCTest

/// `LargestCounts` (the top lists of `/api/v1/status/tsdb`) against the model it must equal: every
/// offer sorted by count, largest first, ties by key, cut to the limit; with many ties, a limit
/// over the offers, and a limit of 0.
final class LargestCountsTests: XCTestCase {
    func testItKeepsWhatSortingEverythingAndCuttingWouldKeep() {
        var random = SeededGenerator(test: "LargestCountsTests")
        for round in 0..<200 {
            let limit = [0, 1, 3, 10, 50][round % 5]
            let top = round % 2 == 0 ? 5 : 1000
            var offers: [(key: Int, count: Int)] = []
            for key in 0..<Int.random(in: 0...80, using: &random) { offers.append((key, Int.random(in: 0...top, using: &random))) }
            var largest = LargestCounts<Int>(limit: limit, tie: { $0 < $1 })
            for offer in offers.shuffled(using: &random) { largest.offer(offer.key, offer.count) }
            let model: [(key: Int, count: Int)] = Array(offers.sorted { $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key }.prefix(limit))
            XCTAssertEqual(largest.kept.map { $0.key }, model.map { $0.key }, "round \(round), limit \(limit), \(offers.count) offers")
            XCTAssertEqual(largest.kept.map { $0.count }, model.map { $0.count }, "round \(round)")
        }
    }
}
