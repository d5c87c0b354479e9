/// UTC calendar fields of a Unix time, for `year()`, `month()`, `day_of_week()` and the rest, over
/// the whole Int64 range (Go's `time` does not fail on far dates either).
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

    static func civil(seconds: Int64) -> Civil {
        let days = floorDiv(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's days-to-civil, on March-based years.
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfMarchYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfMarchYear + 2) / 153
        let day = dayOfMarchYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let dayOfYear = lengths.prefix(Int(month - 1)).reduce(0, +) + day
        return Civil(year: year, month: month, day: day, hour: secondOfDay / 3600, minute: secondOfDay % 3600 / 60,
                     weekday: floorMod(days + 4, 7), dayOfYear: dayOfYear, daysInMonth: lengths[Int(month - 1)])
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    private static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
}

/// Go's `regexp.Expand` template: `$1`, `${1}`, `$name`, `${name}`, `$$`; a missing group is empty
/// and a malformed `$` is kept as written.
enum GoTemplate {
    static func expand(_ template: String, match: Regex<AnyRegexOutput>.Match) -> String {
        var out = ""
        var rest = Substring(template)
        while let dollar = rest.firstIndex(of: "$") {
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
            out += group(name, match)
        }
        return out + rest
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

    private static func group(_ name: String, _ match: Regex<AnyRegexOutput>.Match) -> String {
        let output = match.output
        if name.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            // Go reads at most 8 digits and no leading zero as a number; other digit runs name nothing.
            guard name.count <= 8, !(name.hasPrefix("0") && name.count > 1), let index = Int(name) else { return "" }
            guard index < output.count, let substring = output[index].substring else { return "" }
            return String(substring)
        }
        for i in 0..<output.count where output[i].name == name {
            return output[i].substring.map(String.init) ?? ""
        }
        return ""
    }
}
