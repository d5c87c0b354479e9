import enum TallyQuery.GoNumbers
import TallyStorage

/// A time as Prometheus' HTTP API takes it (`start`, `end`, `time`): Unix seconds with an optional
/// fraction, or RFC 3339. Returned as Unix milliseconds.
public enum TimeParameter {
    /// How a time's nanoseconds become milliseconds, which differs only for times before 1970
    /// with a fraction finer than a millisecond: Prometheus' `timestamp.FromTime` rounds down (the
    /// series, labels and deletion endpoints), its query engine (`UnixNano() / 1e6`) toward zero.
    public enum Rounding: Sendable {
        case down
        case towardZero
    }

    /// Prometheus' `minTime` and `maxTime`, the defaults of `start` and `end` where they are
    /// optional, in milliseconds.
    public static let prometheusMinTime: Int64 = -9_223_309_901_257_974_000
    public static let prometheusMaxTime: Int64 = 9_223_309_901_257_974_999

    /// Prometheus' `parseTime`: first Go's `strconv.ParseFloat`, its fraction rounded to the
    /// millisecond on its own (`math.Modf`, then `math.Round(frac*1000)/1000`), so `1.0005` is 1000 ms
    /// as there, not the 1001 that rounding the product gives; else Go's `time.Parse` with
    /// `time.RFC3339Nano`; else the RFC 3339 texts Prometheus writes for its `minTime` and
    /// `maxTime`, which clients send back. Unlike Prometheus, which wraps them into times of its own
    /// choosing, a number that is not finite or past ±9e15 seconds is no time.
    public static func milliseconds(_ text: String, rounding: Rounding = .down) -> Int64? {
        switch GoNumbers.parseFloat(text) {
        case let .value(seconds):
            guard seconds.isFinite, abs(seconds) < 9e15 else { return nil }
            let whole = seconds.rounded(.towardZero)
            // Exact: the fraction of a double is a double, and |whole| < 9e15 leaves room for ×1000.
            let fraction = ((seconds - whole) * 1000).rounded(.toNearestOrAwayFromZero)
            return Int64(whole) * 1000 + Int64(fraction)
        case .invalidSyntax, .outOfRange:
            if let milliseconds = RFC3339.milliseconds(text, rounding: rounding) { return milliseconds }
            switch text {
            case "-292273086-05-16T16:47:06Z": return prometheusMinTime
            case "292277025-08-18T07:12:54.999999999Z": return prometheusMaxTime
            default: return nil
            }
        }
    }
}

/// Go 1.19's `time.Parse(time.RFC3339Nano, text)`, the reader Prometheus 2.42 uses, rule for rule:
/// `YYYY-MM-DDTHH:MM:SS`, the hour in one or two digits, a fraction of up to nine digits after `.`
/// or `,`, then `Z` or `±hh:mm` (any two digits each); the date must exist in the proleptic
/// Gregorian calendar, hours below 24, minutes and seconds below 60, and nothing may follow.
enum RFC3339 {
    /// The time in Unix milliseconds.
    static func milliseconds(_ text: String, rounding: TimeParameter.Rounding) -> Int64? {
        var reader = Reader(bytes: Array(text.utf8))
        guard let (seconds, nanoseconds) = reader.time() else { return nil }
        // Four-digit years keep every value here far inside Int64.
        let down = Int64(seconds) * 1000 + Int64(nanoseconds / 1_000_000)
        let cut = seconds < 0 && nanoseconds % 1_000_000 != 0
        return rounding == .towardZero && cut ? down + 1 : down
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        private func isDigit(_ offset: Int) -> Bool {
            at + offset < bytes.count && bytes[at + offset] >= UInt8(ascii: "0") && bytes[at + offset] <= UInt8(ascii: "9")
        }

        /// Exactly `count` digits.
        private mutating func number(_ count: Int) -> Int? {
            var value = 0
            for _ in 0..<count {
                guard isDigit(0) else { return nil }
                value = value * 10 + Int(bytes[at] - UInt8(ascii: "0"))
                at += 1
            }
            return value
        }

        private mutating func literal(_ character: Unicode.Scalar) -> Bool {
            guard at < bytes.count, bytes[at] == UInt8(ascii: character) else { return false }
            at += 1
            return true
        }

        /// Unix seconds and the nanoseconds after them.
        mutating func time() -> (Int, Int)? {
            guard let year = number(4), literal("-"), let month = number(2), literal("-"), let day = number(2), literal("T"),
                  let hour = number(isDigit(1) ? 2 : 1), literal(":"), let minute = number(2), literal(":"), let second = number(2)
            else { return nil }
            var nanoseconds = 0
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") || bytes[at] == UInt8(ascii: ","), isDigit(1) {
                at += 1
                // Go takes nine digits at most: a tenth is left over and fails the zone after it.
                var scale = 100_000_000
                while scale > 0, isDigit(0) {
                    nanoseconds += Int(bytes[at] - UInt8(ascii: "0")) * scale
                    scale /= 10
                    at += 1
                }
            }
            var offset = 0
            if !literal("Z") {
                guard at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") else { return nil }
                let sign = bytes[at] == UInt8(ascii: "-") ? -1 : 1
                at += 1
                guard let hours = number(2), literal(":"), let minutes = number(2) else { return nil }
                offset = sign * (hours * 3600 + minutes * 60)
            }
            guard at == bytes.count, (1...12).contains(month), day >= 1, day <= Self.days(inMonth: month, of: year),
                  hour < 24, minute < 60, second < 60 else { return nil }
            return (Self.daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset, nanoseconds)
        }

        private static func days(inMonth month: Int, of year: Int) -> Int {
            switch month {
            case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
            case 4, 6, 9, 11: return 30
            default: return 31
            }
        }

        /// Days from 1970-01-01 to the date in the proleptic Gregorian calendar, as Go counts them
        /// (Howard Hinnant's `days_from_civil`).
        private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yearOfEra = y - era * 400
            let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            return era * 146_097 + dayOfEra - 719_468
        }
    }
}

/// What a deletion asks for, checked as Prometheus' `delete_series` checks it: one or more series
/// selectors, each with a matcher that does not match the empty value (so no selector means
/// "everything"), and an optional inclusive time range (RFC 3339 or Unix seconds).
public struct DeletionArguments: Sendable {
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    public let selectors: [[LabelMatcher]]
    public let interval: DeletedInterval

    public init(selectors texts: [String], start: String?, end: String?) throws(Problem) {
        guard !texts.isEmpty else { throw Problem(description: "at least one series selector (match[]) is required") }
        var selectors: [[LabelMatcher]] = []
        for text in texts {
            do { selectors.append(try SelectorParser.parse(text)) } catch { throw Problem(description: "selector \(text): \(error)") }
            if selectors.last!.allSatisfy({ $0.predicate()("") }) {
                throw Problem(description: "selector \(text): needs a matcher that does not match the empty value")
            }
        }
        var bounds: [Int64] = []
        for (name, text, fallback) in [("start", start, Int64.min), ("end", end, Int64.max)] {
            // Empty is absent, as Prometheus' `parseTimeParam` reads it (`start=&end=...`).
            guard let text, !text.isEmpty else { bounds.append(fallback); continue }
            guard let ms = TimeParameter.milliseconds(text) else { throw Problem(description: "\(name) \(text): expected RFC 3339 or Unix seconds") }
            bounds.append(ms)
        }
        guard bounds[0] <= bounds[1] else { throw Problem(description: "start is after end") }
        self.selectors = selectors
        interval = DeletedInterval(minTime: bounds[0], maxTime: bounds[1])
    }
}
