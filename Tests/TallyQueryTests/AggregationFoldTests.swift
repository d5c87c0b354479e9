import Foundation
@testable import TallyQuery
import TallyStorage
import TallyTestSupport
import XCTest

/// A range query's aggregation folded one input series at a time answers as the step-by-step
/// aggregation: the same series in the same order (a later aggregation adds them in that order),
/// the same points, the same value bits.
final class AggregationFoldTests: XCTestCase {
    private let steps = 40
    private let interval: Int64 = 60_000
    private let start: Int64 = 1_800_000_000_000

    private func evaluator(_ script: PromQLScript) -> Evaluator {
        Evaluator(start: start, end: start + Int64(steps - 1) * interval, interval: interval, options: QueryOptions(),
                  querier: script.tenant.querier(minTime: .min, maxTime: .max), deadline: Deadline(milliseconds: 60_000),
                  budget: SampleBudget(limit: .max))
    }

    /// Series with gaps (so groups first appear at different steps, and not in series order), and
    /// values whose sums depend on the order they are added in, with NaN and infinities among them.
    private func randomInput(_ random: inout SeededGenerator) -> Matrix {
        let values: [Double] = [1, -1, 0.1, 1e16, -1e16, 3.5, .nan, .infinity, -.infinity, 2e-300, 7]
        return (0..<Int.random(in: 10..<40, using: &random)).map { s in
            let labels = Labels([Label("__name__", "m"), Label("g", "g\(Int.random(in: 0..<4, using: &random))"), Label("h", "h\(Int.random(in: 0..<3, using: &random))"),
                                 Label("series", "\(s)")])
            let from = Int.random(in: 0..<steps / 2, using: &random), presence = Int.random(in: 40..<100, using: &random)
            let points = (from..<steps).filter { _ in Int.random(in: 0..<100, using: &random) < presence }.map { step in
                Point(timestamp: start + Int64(step) * interval, value: values[Int.random(in: 0..<values.count, using: &random)])
            }
            return EvalSeries(labels: labels, points: points)
        }
    }

    private func same(_ a: Matrix, _ b: Matrix) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            x.labels == y.labels && x.points.count == y.points.count && zip(x.points, y.points).allSatisfy {
                $0.timestamp == $1.timestamp && ($0.value.bitPattern == $1.value.bitPattern || ($0.value.isNaN && $1.value.isNaN))
            }
        }
    }

    func testFoldedAggregationsAnswerAsStepByStepOnes() throws {
        let script = try PromQLScript()
        let evaluator = evaluator(script)
        var random = SeededGenerator(test: "AggregationFoldTests")
        let ops: [AggregateOp] = [.sum, .avg, .count, .min, .max, .group, .stddev, .stdvar]
        let groupings: [(grouping: [String], without: Bool)] = [([], false), (["g"], false), (["g", "h"], false), (["h", "series"], true), (["series"], true)]
        var folded = 0
        for round in 0..<300 {
            let input = randomInput(&random)
            let op = ops[round % ops.count], grouping = groupings[(round / ops.count) % groupings.count]
            let node = AggregateNode(op: op, expr: .number(0), parameter: nil, grouping: grouping.grouping, without: grouping.without)
            let stepped = try evaluator.stepped(node, input)
            guard let fold = try evaluator.fold(node, input) else { continue }
            folded += 1
            XCTAssertTrue(same(fold, stepped), "round \(round), \(op) \(grouping):\n  folded:  \(fold)\n  stepped: \(stepped)")
        }
        // Most inputs have more points than groups x steps.
        XCTAssertGreaterThan(folded, 150)
    }

    func testInputsTheFoldCannotHoldGoStepByStep() throws {
        let script = try PromQLScript()
        let evaluator = evaluator(script)
        let node = AggregateNode(op: .sum, expr: .number(0), parameter: nil, grouping: ["g"], without: false)
        // A point between two steps.
        let offGrid = [EvalSeries(labels: Labels([Label("g", "a")]), points: (0..<steps).map { Point(timestamp: start + Int64($0) * interval + 1, value: 1) })]
        XCTAssertNil(try evaluator.fold(node, offGrid))
        // One point in each of many groups: a cell per group and step would outgrow the input.
        let sparse = (0..<10).map { EvalSeries(labels: Labels([Label("g", "\($0)")]), points: [Point(timestamp: start, value: 1)]) }
        XCTAssertNil(try evaluator.fold(node, sparse))
        XCTAssertEqual(try evaluator.stepped(node, sparse).count, 10)
    }
}
