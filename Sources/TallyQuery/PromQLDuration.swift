/// PromQL durations (`5m`, `1h30m`, `1y`, `100ms`) as Prometheus 2.42 reads and prints them
/// (`model.ParseDuration` and `model.Duration.String` of prometheus/common 0.39): units in
/// decreasing order, each at most once; a year is 365 days; values held in milliseconds.
enum PromQLDuration {
    /// Unit suffixes with their length in milliseconds, largest first.
    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("y", 365 * 24 * 3_600_000), ("w", 7 * 24 * 3_600_000), ("d", 24 * 3_600_000),
        ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1),
    ]

    private static let nanosecondsPerMillisecond: Int64 = 1_000_000

    /// Milliseconds, or the message Prometheus gives. Durations are bounded as Go's `time.Duration`
    /// is (about 292 years in nanoseconds): past that is "duration out of range", not a wrapped value.
    static func parse(_ text: String) -> Result<Int64, PromQLParseMessage> {
        if text == "0" { return .success(0) }
        let invalid = PromQLParseMessage("not a valid duration string: " + GoQuoting.quote(text))
        let bytes = Array(text.utf8)
        var index = 0
        var nextUnit = 0
        var totalNanoseconds: Int64 = 0
        var outOfRange = false
        while index < bytes.count {
            let digitsStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > digitsStart, index < bytes.count else { return .failure(invalid) }
            // "ms" before "m": a minute count is followed by digits or the end, never by "s".
            let isMilliseconds = bytes[index] == UInt8(ascii: "m") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "s")
            let suffix = isMilliseconds ? "ms" : String(UnicodeScalar(bytes[index]))
            guard let unit = units[nextUnit...].firstIndex(where: { $0.suffix == suffix }) else { return .failure(invalid) }
            index += suffix.utf8.count
            nextUnit = unit + 1
            let unitNanoseconds = units[unit].milliseconds * nanosecondsPerMillisecond
            // Digits past Int64 count as Int64.max, which is out of range for every unit.
            let count = Int64(String(decoding: bytes[digitsStart..<(index - suffix.utf8.count)], as: UTF8.self)) ?? Int64.max
            if count > Int64.max / unitNanoseconds {
                outOfRange = true
                continue
            }
            let (sum, overflow) = totalNanoseconds.addingReportingOverflow(count * unitNanoseconds)
            if overflow { outOfRange = true }
            totalNanoseconds = sum
        }
        if outOfRange { return .failure(PromQLParseMessage("duration out of range")) }
        return .success(totalNanoseconds / nanosecondsPerMillisecond)
    }

    /// Prometheus' printed form: `1h30m`, `1w`, `382d4h`. Years and weeks only when they divide the
    /// whole duration; `0s` for zero. Takes a non-negative value.
    static func format(milliseconds: Int64) -> String {
        if milliseconds == 0 { return "0s" }
        var rest = milliseconds
        var out = ""
        for (index, unit) in units.enumerated() {
            if index < 2 && rest % unit.milliseconds != 0 { continue }
            let count = rest / unit.milliseconds
            if count > 0 {
                out += "\(count)\(unit.suffix)"
                rest -= count * unit.milliseconds
            }
        }
        return out
    }
}
