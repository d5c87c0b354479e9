/// Calendar days of a fixed UTC offset, as millisecond ranges. Days are civil dates; no time-zone
/// database is involved, so a day is always exactly 24 hours.
public struct CostCalendar: Sendable, Equatable {
    /// East of UTC, in minutes (`+05:30` is 330).
    public let offsetMinutes: Int

    public static let utc = CostCalendar(offsetMinutes: 0)

    public init(offsetMinutes: Int) { self.offsetMinutes = offsetMinutes }

    /// Parses `Z`, `UTC`, `+HH:MM`, `-HH:MM` or `+HHMM`. A leading space is read as `+`, because an
    /// unescaped `+` in a query string arrives as a space.
    public init?(parsing text: String) {
        if text.isEmpty || text == "Z" || text == "UTC" { self.init(offsetMinutes: 0); return }
        var chars = Array(text)
        if chars.first == " " { chars[0] = "+" }
        guard let sign = chars.first, sign == "+" || sign == "-" else { return nil }
        var digits = Array(chars.dropFirst())
        if digits.count == 5 && digits[2] == ":" { digits.remove(at: 2) }
        guard digits.count == 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let hours = Int(String(digits[0..<2])), let minutes = Int(String(digits[2..<4])),
              hours <= 14, minutes < 60 else { return nil }
        self.init(offsetMinutes: (sign == "-" ? -1 : 1) * (hours * 60 + minutes))
    }

    public var label: String {
        if offsetMinutes == 0 { return "+00:00" }
        let m = abs(offsetMinutes)
        return (offsetMinutes < 0 ? "-" : "+") + twoDigits(m / 60) + ":" + twoDigits(m % 60)
    }

    /// The day holding instant `t` (milliseconds since the epoch).
    public func day(containing t: Int64) -> CostDay {
        let local = t + Int64(offsetMinutes) * 60_000
        let index = local >= 0 ? local / 86_400_000 : (local + 1) / 86_400_000 - 1
        return CostDay(index: index, calendar: self)
    }
}

/// One calendar day of a `CostCalendar`: [start, end) in milliseconds since the epoch.
public struct CostDay: Sendable, Hashable, Comparable {
    /// Days since 1970-01-01 in the calendar's local time.
    public let index: Int64
    public let offsetMinutes: Int

    init(index: Int64, calendar: CostCalendar) {
        self.index = index
        self.offsetMinutes = calendar.offsetMinutes
    }

    /// Parses `YYYY-MM-DD`, a real date.
    public init?(parsing text: String, calendar: CostCalendar) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year) else { return nil }
        self.init(index: Self.daysFromCivil(year: year, month: month, day: day), calendar: calendar)
    }

    public var start: Int64 { index * 86_400_000 - Int64(offsetMinutes) * 60_000 }
    public var end: Int64 { start + 86_400_000 }

    public func advanced(by days: Int64) -> CostDay {
        CostDay(index: index + days, calendar: CostCalendar(offsetMinutes: offsetMinutes))
    }

    /// `YYYY-MM-DD`; a year before 1 with its sign, as Go writes it (`-0001`, year 0 is `0000`).
    public var date: String {
        let (y, m, d) = Self.civil(fromDays: index)
        let year = String(y.magnitude)
        return (y < 0 ? "-" : "") + String(repeating: "0", count: max(0, 4 - year.count)) + year + "-" + twoDigits(m) + "-" + twoDigits(d)
    }

    /// The calendar month holding the day, [its first day's start, the next month's first day's start).
    public var month: (start: Int64, end: Int64) {
        let (year, month, _) = Self.civil(fromDays: index)
        let calendar = CostCalendar(offsetMinutes: offsetMinutes)
        let first = CostDay(index: Self.daysFromCivil(year: Int(year), month: month, day: 1), calendar: calendar)
        let next = CostDay(index: Self.daysFromCivil(year: Int(year) + (month == 12 ? 1 : 0), month: month % 12 + 1, day: 1), calendar: calendar)
        return (first.start, next.start)
    }

    public static func < (a: CostDay, b: CostDay) -> Bool { a.start < b.start }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// `n` with a leading zero below 10, for dates, times and durations.
public func twoDigits(_ n: some BinaryInteger) -> String { n < 10 ? "0\(n)" : "\(n)" }
