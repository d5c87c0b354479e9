import TallyCost
import XCTest

/// Times printed in RFC 3339 (cost reports, `tally blocks ls` and the other maintenance tables), the
/// years Go's `time.Format` writes: four digits, a year before 1 with its sign, year 0 as `0000`.
final class TimestampFormatTests: XCTestCase {
    func testYearsBeforeOneKeepTheirSignAndMillisecondsAreWrittenWhenAsked() {
        let cases: [(Int64, Bool, String)] = [
            (0, false, "1970-01-01T00:00:00Z"),
            (0, true, "1970-01-01T00:00:00.000Z"),
            (-1, false, "1969-12-31T23:59:59.999Z"),
            (1_796_313_274_108, false, "2026-12-03T15:54:34.108Z"),
            (-62_135_596_800_000, true, "0001-01-01T00:00:00.000Z"),
            (-62_167_219_200_000 + 1, false, "0000-01-01T00:00:00.001Z"),
            (-62_198_755_200_000, true, "-0001-01-01T00:00:00.000Z"),
            (-62_198_755_200_000 - 1, false, "-0002-12-31T23:59:59.999Z"),
            (253_402_300_800_000, false, "10000-01-01T00:00:00Z"),
        ]
        for (ms, milliseconds, expected) in cases {
            XCTAssertEqual(CostReport.timestamp(ms, 0, milliseconds: milliseconds), expected, "\(ms)")
        }
        XCTAssertEqual(CostReport.timestamp(-62_198_755_200_000, 120), "-0001-01-01T02:00:00+02:00")
    }

    /// A corrupt or hostile chunk can hold any 64-bit time: past ±2^54 ms (571,000 years) it is
    /// written as milliseconds, where the date arithmetic used to overflow (and trap) near Int64.min.
    func testTimesPastTheBlockRangeAreMillisecondsNotATrap() {
        XCTAssertEqual(CostReport.timestamp(.min, 0), "-9223372036854775808ms")
        XCTAssertEqual(CostReport.timestamp(.max, 0, milliseconds: true), "9223372036854775807ms")
        XCTAssertEqual(CostReport.timestamp(.max - 1000, -120), "9223372036854774807ms")
        // The edge itself is still a date (checked against a proleptic Gregorian calendar in Python).
        XCTAssertEqual(CostReport.timestamp(1 << 54, 0), "572823-07-25T17:58:01.984Z")
    }
}
