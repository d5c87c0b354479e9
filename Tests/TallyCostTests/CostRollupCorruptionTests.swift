import Foundation
import XCTest
@testable import TallyCost

/// A rollup file is a cache: any corrupt byte in it must leave it unused or partly used, never trap.
final class CostRollupCorruptionTests: XCTestCase {
    func testEveryByteOfARollupFileCorruptedNeverTraps() throws {
        let directory = NSTemporaryDirectory() + "tally-rollup-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = CostOptions()
        let days = try (10...12).map { try XCTUnwrap(CostDay(parsing: "2024-03-\($0)", calendar: .utc)) }
        let writer = CostRollupStore(tenantDirectory: directory, calendar: .utc, options: options)
        for (k, day) in days.enumerated() {
            var row = DailyClusterCost(cluster: "c\(k)", day: day)
            for (i, category) in CostCategory.allCases.enumerated() {
                row.costs[category] = Double(i) * 1.25 + Double(k)
                row.coveredMinutes[category] = 1440
            }
            row.network[.allCases[0]] = 0.5
            writer.store(day, version: "v\(k)", rows: [row], leftOut: [], computedAt: 1_700_000_000_000)
        }
        writer.save()
        let path = directory + "/rollups/daily.json"
        let pristine = try XCTUnwrap(FileManager.default.contents(atPath: path))
        XCTAssertNotNil(CostRollupStore(tenantDirectory: directory, calendar: .utc, options: options, readOnly: true).rows(days[0], version: "v0"))

        for offset in 0..<pristine.count {
            for change in [{ (_: UInt8) in UInt8(0) }, { _ in 0xFF }, { $0 ^ 0x80 }, { _ in UInt8(ascii: "9") }] {
                var bytes = pristine
                bytes[offset] = change(bytes[offset])
                try bytes.write(to: URL(fileURLWithPath: path))
                let reader = CostRollupStore(tenantDirectory: directory, calendar: .utc, options: options, readOnly: true)
                for (k, day) in days.enumerated() {
                    if let (rows, _, _) = reader.rows(day, version: "v\(k)") { XCTAssertLessThanOrEqual(rows.count, 1) }
                }
            }
        }
    }
}
