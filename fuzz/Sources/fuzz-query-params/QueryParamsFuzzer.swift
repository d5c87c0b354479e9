import FuzzSupport
import TallyCost
import TallyServer
import TallyStorage

// The text parameters of the HTTP API and the limits file. Each line of the input goes through the
// one-line parsers: durations (`keep=`, limits), cost days and time zones (`start`, `end`, `tz`);
// lines 1 and 2 are a deletion's `start` and `end` (times), the rest its `match[]` selectors; the
// whole input is a limits YAML file and a multipart form body with boundary `b`, each line a
// Content-Type. Parsed values must print back to what parses to them, and a
// time's two roundings (down, toward zero) may differ only before 1970, by a millisecond.

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked {
        [
            "deletion-seconds": "1700000000.5\n1700003600\nup{job=\"kubecost\"}\n{namespace=~\"kube-.*\"}",
            "deletion-rfc3339": "2023-11-14T22:13:20Z\n2023-11-14T23:13:20.123+05:30\nnode_total_hourly_cost",
            "cost-days": "2024-02-29\n+05:30\n-0800\n Z\n1999-12-31\nUTC",
            "durations": "500ms\n30s\n90m\n24h\n2d\n1w\n0s",
            "multipart": "multipart/form-data; boundary=\"b\"\r\n--b\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nsum(up)\r\n"
                + "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nx\n--b--\r\n",
            "limits.yaml": """
                defaults:
                  max_label_names_per_series: 64
                  max_series_per_metric: 10000
                  max_future: 10m
                  ingestion_rate: 50000
                tenants:
                  team-a:
                    max_series_per_tenant: 1000
                    max_past: 2h
                """,
        ].mapValues { Array($0.utf8) }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for line in lines {
        if let ms = ServerConfiguration.milliseconds(line) { precondition(ms >= 0, "duration \(line) is \(ms) ms") }
        if let calendar = CostCalendar(parsing: line) {
            precondition(CostCalendar(parsing: calendar.label) == calendar, "time zone \(line) prints as \(calendar.label)")
        }
        if let day = CostDay(parsing: line, calendar: .utc) {
            precondition(CostDay(parsing: day.date, calendar: .utc) == day && day.end - day.start == 86_400_000, "day \(line) prints as \(day.date)")
        }
        if let down = TimeParameter.milliseconds(line) {
            let towardZero = TimeParameter.milliseconds(line, rounding: .towardZero)
            precondition(towardZero == down || (down < 0 && towardZero == down + 1), "time \(line): \(down) rounded down, \(towardZero as Any) toward zero")
        }
    }
    if lines.count > 2 {
        _ = try? DeletionArguments(selectors: Array(lines.dropFirst(2)), start: lines[0], end: lines[1])
    }
    _ = try? LimitsConfig.parse(text, over: TenantLimits())
    for line in lines { _ = MultipartForm.mediaType(line) }
    if let values = MultipartForm.values(Array(UnsafeBufferPointer(start: data, count: size)), boundary: "b") {
        precondition(values.allSatisfy { !$0.name.isEmpty }, "a multipart value without a name")
    }
    return 0
}
