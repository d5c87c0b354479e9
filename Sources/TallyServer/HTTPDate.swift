#if canImport(Glibc)
import Glibc
#endif

/// The `Date` header every answer carries (RFC 9110 6.6.1: a server with a clock sends one), in the
/// IMF-fixdate form Go's server writes (`http.TimeFormat`): `Fri, 04 Dec 2026 15:30:07 GMT`. A
/// connection formats it once a second, not once an answer.
struct HTTPDate {
    private var second: time_t = -1
    private var text = ""

    /// The current second's date, formatted when the second changed since the last call.
    mutating func now() -> String {
        let current = time(nil)
        if current != second {
            second = current
            text = Self.format(current)
        }
        return text
    }

    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
