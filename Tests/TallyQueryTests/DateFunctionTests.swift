@testable import TallyQuery
import XCTest

/// The calendar fields behind `year()`, `month()` and the rest, against dates worked out
/// independently, and the far ends of Int64 (what NaN and 1e300 become), which must not trap.
final class DateFunctionTests: XCTestCase {
    func testKnownDates() {
        // seconds: year, month, day, hour, minute, weekday (Sunday 0), day of year, days in month
        let cases: [(Int64, [Int64])] = [
            (0, [1970, 1, 1, 0, 0, 4, 1, 31]),
            (1_764_547_200, [2025, 12, 1, 0, 0, 1, 335, 31]),
            (951_782_400, [2000, 2, 29, 0, 0, 2, 60, 29]),
            (-946_080_000, [1940, 1, 9, 0, 0, 2, 9, 31]),
            (4_102_448_461, [2100, 1, 1, 1, 1, 5, 1, 31]),
        ]
        for (seconds, want) in cases {
            let c = DateFunctions.civil(seconds: seconds)
            XCTAssertEqual([c.year, c.month, c.day, c.hour, c.minute, c.weekday, c.dayOfYear, c.daysInMonth], want, "\(seconds)")
        }
    }

    func testTheEndsOfInt64DoNotTrap() {
        for seconds in [Int64.min, Int64.min + 1, Int64.max, Int64.max - 86_400, goInt64(.nan), goInt64(1e300)] {
            let c = DateFunctions.civil(seconds: seconds)
            XCTAssertTrue((1...12).contains(c.month) && (1...31).contains(c.day) && (0...6).contains(c.weekday), "\(seconds)")
        }
    }
}
