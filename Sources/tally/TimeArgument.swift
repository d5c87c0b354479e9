import Foundation
import TallyCost
import TallyServer
import TallyStorage

/// A time on the command line, in the forms every command takes: a day `YYYY-MM-DD`, RFC 3339,
/// or Unix seconds (with an optional fraction).
enum TimeArgument {
    /// Which end of a range a time bounds: a day given as a start means its first millisecond,
    /// as an end (inclusive) its last, so `--start D --end D` is the whole day D.
    enum Bound {
        case start, end
    }

    static let forms = "YYYY-MM-DD, RFC 3339 or Unix seconds"

    /// Unix milliseconds; a day is taken in `calendar` (UTC unless a command offers --tz).
    static func milliseconds(_ text: String, as bound: Bound, calendar: CostCalendar = .utc) -> Int64? {
        if let day = CostDay(parsing: text, calendar: calendar) { return bound == .start ? day.start : day.end - 1 }
        return TimeParameter.milliseconds(text)
    }

    /// The day holding the time, in `calendar`.
    static func day(_ text: String, calendar: CostCalendar) -> CostDay? {
        CostDay(parsing: text, calendar: calendar) ?? TimeParameter.milliseconds(text).map { calendar.day(containing: $0) }
    }

    /// Unix seconds with milliseconds, as the admin endpoints take them.
    static func secondsText(_ milliseconds: Int64) -> String {
        String(format: "%.3f", Double(milliseconds) / 1000)
    }
}
