/// UTC calendar fields of a Unix time, for `year()`, `month()`, `day_of_week()` and the rest,
/// computed as Go's `time` package does: from an unsigned count of seconds since Go's absolute zero
/// year, with Go's wrapping arithmetic. Every Int64 gives an answer, the same one Prometheus gives,
/// even for the `Int64.min` that NaN and huge values turn into.
enum DateFunctions {
    struct Civil {
        let year: Int64
        let month: Int64
        let day: Int64
        let hour: Int64
        let minute: Int64
        let weekday: Int64
        let dayOfYear: Int64
        let daysInMonth: Int64
    }

    static let fields: [String: @Sendable (Civil) -> Double] = [
        "year": { Double($0.year) }, "month": { Double($0.month) }, "day_of_month": { Double($0.day) },
        "day_of_week": { Double($0.weekday) }, "day_of_year": { Double($0.dayOfYear) },
        "days_in_month": { Double($0.daysInMonth) }, "hour": { Double($0.hour) }, "minute": { Double($0.minute) },
    ]

    private static let absoluteZeroYear: Int64 = -292_277_022_399
    /// Go's `unixToInternal + internalToAbsolute`.
    private static let unixToAbsolute: Int64 = 9_223_372_028_715_321_600
    private static let secondsPerDay: UInt64 = 86_400
    private static let daysBefore: [Int64] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365]

    static func civil(seconds: Int64) -> Civil {
        let abs = UInt64(bitPattern: seconds &+ unixToAbsolute)
        // Go's absDate.
        var d = abs / secondsPerDay
        var n = d / 146_097
        var y = 400 * n
        d -= 146_097 * n
        n = d / 36_524
        n -= n >> 2
        y += 100 * n
        d -= 36_524 * n
        n = d / 1461
        y += 4 * n
        d -= 1461 * n
        n = d / 365
        n -= n >> 2
        y += n
        d -= 365 * n
        let year = Int64(bitPattern: y) &+ absoluteZeroYear
        let yearDay = Int64(d)
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        var day = yearDay, month: Int64
        if leap && day == 31 + 29 - 1 {
            month = 2
            day = 29
        } else {
            if leap && day > 31 + 29 - 1 { day -= 1 }
            month = day / 31
            let end = daysBefore[Int(month + 1)]
            let begin: Int64
            if day >= end {
                month += 1
                begin = end
            } else {
                begin = daysBefore[Int(month)]
            }
            month += 1
            day = day - begin + 1
        }
        let monthLength = daysBefore[Int(month)] - daysBefore[Int(month - 1)] + (leap && month == 2 ? 1 : 0)
        let weekday = Int64((abs &+ secondsPerDay) % (7 * secondsPerDay) / secondsPerDay)
        return Civil(year: year, month: month, day: day, hour: Int64(abs % secondsPerDay / 3600), minute: Int64(abs % 3600 / 60),
                     weekday: weekday, dayOfYear: yearDay + 1, daysInMonth: monthLength)
    }
}

/// Go's `regexp.Expand` template: `$1`, `${1}`, `$name`, `${name}`, `$$`; a missing group is empty
/// and a malformed `$` is kept as written.
enum GoTemplate {
    /// `groups[k]` is group k's text (0 the whole match), `names[k - 1]` its name. Nil once the text
    /// passes `limit` bytes.
    static func expand(_ template: String, groups: [String?], names: [String?], limit: Int) -> String? {
        var out = ""
        var rest = Substring(template)
        while let dollar = rest.firstIndex(of: "$") {
            if out.utf8.count > limit { return nil }
            out += rest[..<dollar]
            rest = rest[rest.index(after: dollar)...]
            if rest.first == "$" {
                out += "$"
                rest = rest.dropFirst()
                continue
            }
            guard let (name, remainder) = extractName(rest) else {
                out += "$"
                continue
            }
            rest = remainder
            out += group(name, groups, names)
        }
        out += rest
        return out.utf8.count > limit ? nil : out
    }

    private static func extractName(_ text: Substring) -> (String, Substring)? {
        var s = text
        let brace = s.first == "{"
        if brace { s = s.dropFirst() }
        let name = s.prefix { $0.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType == .decimal || $0 == "_" } }
        guard !name.isEmpty else { return nil }
        s = s.dropFirst(name.count)
        if brace {
            guard s.first == "}" else { return nil }
            s = s.dropFirst()
        }
        return (String(name), s)
    }

    private static func group(_ name: String, _ groups: [String?], _ names: [String?]) -> String {
        if name.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            // Go reads at most 8 digits and no leading zero as a number; other digit runs name nothing.
            guard name.count <= 8, !(name.hasPrefix("0") && name.count > 1), let index = Int(name), index < groups.count else { return "" }
            return groups[index] ?? ""
        }
        // Go 1.19 allows a name twice: the first group of that name that took part in the match.
        for (k, groupName) in names.enumerated() where groupName == name {
            if let text = groups[k + 1] { return text }
        }
        return ""
    }
}
