import Foundation

/// The shapes an answer takes, the same from the HTTP API and the CLI.
public enum CostReportFormat: String, CaseIterable, Sendable {
    case json, csv, focus, table

    public var contentType: String {
        switch self {
        case .json: "application/json"
        case .csv, .focus: "text/csv; charset=utf-8"
        case .table: "text/plain; charset=utf-8"
        }
    }
}

/// Renders cost rows. Numbers are printed in Swift's shortest round-trip form, so a reader parses
/// back exactly the Float64 that was computed.
public enum CostReport {
    public static func daily(_ rows: [DailyClusterCost], tenant: String, format: CostReportFormat) -> String {
        switch format {
        case .json:
            let items = rows.map { row -> String in
                var fields = [("cluster", quoted(row.cluster)), ("date", quoted(row.day.date)),
                              ("start", quoted(timestamp(row.day.start, row.day.offsetMinutes))),
                              ("end", quoted(timestamp(row.day.end, row.day.offsetMinutes)))]
                fields += CostCategory.allCases.map { ($0.rawValue, number(row.costs[$0])) }
                fields += NetworkCategory.allCases.map { ("network_\($0.rawValue)", number(row.network[$0] ?? 0)) }
                fields.append(("total", number(row.total)))
                fields.append(("covered_minutes", object(CostCategory.allCases.map { ($0.rawValue, number(row.coveredMinutes[$0])) })))
                fields.append(("complete", row.complete ? "true" : "false"))
                fields.append(("computed_at", quoted(timestamp(row.computedAt, 0))))
                return object(fields)
            }
            return object([("status", quoted("success")), ("tenant", quoted(tenant)), ("rows", "[" + items.joined(separator: ",") + "]")]) + "\n"
        case .csv:
            var header = ["cluster", "date"] + CostCategory.allCases.map(\.rawValue)
            header += NetworkCategory.allCases.map { "network_\($0.rawValue)" } + ["total"]
            header += CostCategory.allCases.map { "covered_minutes_\($0.rawValue)" } + ["complete", "computed_at"]
            return csv(header, rows.map { row in
                var cells = [row.cluster, row.day.date] + CostCategory.allCases.map { number(row.costs[$0]) }
                cells += NetworkCategory.allCases.map { number(row.network[$0] ?? 0) } + [number(row.total)]
                cells += CostCategory.allCases.map { number(row.coveredMinutes[$0]) }
                return cells + [row.complete ? "true" : "false", timestamp(row.computedAt, 0)]
            })
        case .focus:
            return focus(rows.flatMap { row in
                CostCategory.allCases.map { category in
                    FocusRow(day: row.day, category: category, cost: row.costs[category], resourceId: row.cluster, resourceName: row.cluster,
                             resourceType: "Cluster", description: "\(category.charge) of cluster \(row.cluster)", tags: [("cluster", row.cluster)])
                }
            }, tenant: tenant)
        case .table:
            var header = ["cluster", "date"] + CostCategory.allCases.map(\.rawValue) + ["total", "covered min (cpu)", "complete"]
            header[header.firstIndex(of: "load_balancer")!] = "lb"
            return table(header, rows.map { row in
                [row.cluster, row.day.date] + CostCategory.allCases.map { money(row.costs[$0]) }
                    + [money(row.total), minutes(row.coveredMinutes[.cpu]), row.complete ? "yes" : "no"]
            }, textColumns: 2)
        }
    }

    public static func allocation(_ rows: [AllocationRow], tenant: String, aggregate: AllocationAggregate, format: CostReportFormat) -> String {
        switch format {
        case .json:
            let items = rows.map { row -> String in
                var fields = [("cluster", quoted(row.cluster)), ("date", quoted(row.day.date)), (aggregate.rawValue, quoted(row.name)),
                              ("idle", row.isIdle ? "true" : "false"), ("shared", row.isShared ? "true" : "false")]
                fields += CostCategory.allCases.map { ($0.rawValue, number(row.costs[$0])) }
                fields += [("total", number(row.total)), ("complete", row.complete ? "true" : "false"), ("computed_at", quoted(timestamp(row.computedAt, 0)))]
                return object(fields)
            }
            return object([("status", quoted("success")), ("tenant", quoted(tenant)), ("aggregate", quoted(aggregate.rawValue)),
                           ("rows", "[" + items.joined(separator: ",") + "]")]) + "\n"
        case .csv:
            let header = ["cluster", "date", aggregate.rawValue, "idle", "shared"] + CostCategory.allCases.map(\.rawValue) + ["total", "complete", "computed_at"]
            return csv(header, rows.map { row in
                [row.cluster, row.day.date, row.name, row.isIdle ? "true" : "false", row.isShared ? "true" : "false"]
                    + CostCategory.allCases.map { number(row.costs[$0]) }
                    + [number(row.total), row.complete ? "true" : "false", timestamp(row.computedAt, 0)]
            })
        case .focus:
            return focus(rows.flatMap { row in
                let type = row.isIdle ? "Idle" : row.isShared ? "Shared" : aggregate.rawValue.capitalized
                var tags = [("cluster", row.cluster)]
                if aggregate != .node && !row.isIdle && !row.isShared { tags.append(("namespace", String(row.name.split(separator: "/").first ?? ""))) }
                return CostCategory.allCases.map { category in
                    let whose = row.isIdle ? "not allocated (idle) in cluster \(row.cluster)"
                        : row.isShared ? "shared by cluster \(row.cluster)" : "allocated to \(aggregate.rawValue) \(row.name) of cluster \(row.cluster)"
                    return FocusRow(day: row.day, category: category, cost: row.costs[category], resourceId: row.cluster + "/" + row.name,
                                    resourceName: row.name, resourceType: type, description: "\(category.charge) \(whose)", tags: tags)
                }
            }, tenant: tenant)
        case .table:
            var header = ["cluster", "date", aggregate.rawValue] + CostCategory.allCases.map(\.rawValue) + ["total"]
            header[header.firstIndex(of: "load_balancer")!] = "lb"
            return table(header, rows.map { row in
                [row.cluster, row.day.date, row.isIdle ? "(idle)" : row.isShared ? "(shared)" : row.name]
                    + CostCategory.allCases.map { money(row.costs[$0]) } + [money(row.total)]
            }, textColumns: 3)
        }
    }

    /// The answer of `/metroculus/v2/kubecost_cluster_costs`: every cluster of the tenant summed,
    /// per day and over the whole range.
    public static func metroculus(_ rows: [DailyClusterCost], account: String, start: Int64, end: Int64) -> String {
        func sums(_ rows: some Sequence<DailyClusterCost>) -> (CategoryValues, [NetworkCategory: Double]) {
            var categories: [CostCategory: NeumaierSum] = [:], network: [NetworkCategory: NeumaierSum] = [:]
            for row in rows {
                for c in CostCategory.allCases { categories[c, default: NeumaierSum()].add(row.costs[c]) }
                for n in NetworkCategory.allCases { network[n, default: NeumaierSum()].add(row.network[n] ?? 0) }
            }
            var values = CategoryValues()
            for (c, sum) in categories { values[c] = sum.value }
            return (values, network.mapValues(\.value))
        }
        func costFields(_ v: CategoryValues) -> [(String, String)] {
            [("total_cost", number(v.total))] + CostCategory.allCases.map { ($0.rawValue + "_cost", number(v[$0])) }
        }
        let (summary, network) = sums(rows)
        let byDay = Dictionary(grouping: rows, by: \.day)
        let days = byDay.keys.sorted().map { day -> String in
            let (values, _) = sums(byDay[day]!)
            return object([("date", quoted(day.date)), ("start_date", "\(day.start / 1000)")] + costFields(values)
                          + [("complete", byDay[day]!.allSatisfy(\.complete) ? "true" : "false")])
        }
        let breakdown = [("management_cost", number(summary[.management])), ("load_balancer_cost", number(summary[.loadBalancer]))]
            + NetworkCategory.allCases.map { ("network_\($0.rawValue)_cost", number(network[$0] ?? 0)) }
        return object([("cloud_account_id", quoted(account)), ("start_date", "\(start)"), ("end_date", "\(end)"),
                       ("summary", object(costFields(summary))), ("breakdown", object(breakdown)),
                       ("days", "[" + days.joined(separator: ",") + "]")]) + "\n"
    }

    /// One FinOps FOCUS charge row: one category of one cluster, group, idle or shared row and day.
    struct FocusRow {
        let day: CostDay
        let category: CostCategory
        let cost: Double
        let resourceId, resourceName, resourceType, description: String
        let tags: [(String, String)]
    }

    /// The FOCUS 1.0 columns written: every mandatory one, and the resource and tag columns.
    static let focusColumns = [
        "BillingAccountId", "BillingAccountName", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
        "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "ChargeCategory", "ChargeClass", "ChargeDescription",
        "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceName", "ServiceCategory",
        "ResourceId", "ResourceName", "ResourceType", "Tags",
    ]

    /// The tenant is the billing account; the billing period is the calendar month holding the day.
    /// Prices change during a day, so a row has no unit price: its quantity is one day of the item.
    /// ChargeClass is empty (null): no row corrects an earlier billing period.
    static func focus(_ rows: [FocusRow], tenant: String) -> String {
        csv(focusColumns, rows.map { row in
            let cost = number(row.cost)
            let month = row.day.month
            return [tenant, tenant, timestamp(month.start, 0), timestamp(month.end, 0), timestamp(row.day.start, 0), timestamp(row.day.end, 0),
                    cost, cost, cost, cost, "USD", "Usage", "", row.description,
                    "1", "Day", "Kubernetes", "Kubernetes", "Tally", "Kubernetes", row.category.focusServiceCategory,
                    row.resourceId, row.resourceName, row.resourceType, object((row.tags + [("category", row.category.rawValue)]).map { ($0.0, quoted($0.1)) })]
        })
    }

    // MARK: primitives

    public static func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

    static func money(_ x: Double) -> String { String(format: "%.4f", x) }

    /// Minutes as precise as they are, up to thousandths: 1440, 10.5, 1439.983.
    static func minutes(_ x: Double) -> String {
        var text = String(format: "%.3f", x)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    public static func quoted(_ s: String) -> String {
        var bytes: [UInt8] = []
        appendQuoted(s, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `quoted(s)`'s UTF-8 bytes, appended: copied as they are when nothing needs escaping.
    public static func appendQuoted(_ s: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        func needsEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        // A native string's bytes are scanned and copied as one buffer: through `String.UTF8View`
        // each byte costs an index check, which made label-heavy answers slow to write.
        let copied = s.utf8.withContiguousStorageIfAvailable { utf8 in
            guard !utf8.contains(where: needsEscape) else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if copied ?? !s.utf8.contains(where: needsEscape) {
            if copied == nil { bytes.append(contentsOf: s.utf8) }
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), byte]
            case UInt8(ascii: "\n"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20: bytes += Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xf)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { quoted($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    static func csv(_ header: [String], _ rows: [[String]]) -> String {
        func cell(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([header] + rows).map { $0.map(cell).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    /// Aligned columns: the first `textColumns` to the left, numbers to the right. Control characters
    /// in a cell (a cluster named with a newline) are written as escapes, so each row stays one line.
    static func table(_ header: [String], _ rows: [[String]], textColumns: Int) -> String {
        let all = ([header] + rows).map { $0.map(printable) }
        let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i < textColumns ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// `s` with each control character as an escape: `\n`, `\r`, `\t`, else `\u{1b}` and the like.
    static func printable(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.properties.generalCategory == .control: out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// About 571,000 years either side of 1970, the dates' arithmetic far from overflowing.
    private static let writableMilliseconds: ClosedRange<Int64> = -(1 << 54) ... (1 << 54)

    /// RFC 3339 in the given offset (`Z` for UTC), the milliseconds written when there are any or
    /// when `milliseconds` asks for them always (tables of times that line up).
    /// A time past ±2^54 ms (past the times a block may span; a corrupt or hostile chunk can hold
    /// any 64 bits) is its milliseconds as they are.
    public static func timestamp(_ ms: Int64, _ offsetMinutes: Int, milliseconds: Bool = false) -> String {
        let (local, overflow) = ms.addingReportingOverflow(Int64(offsetMinutes) * 60_000)
        guard !overflow, writableMilliseconds.contains(local) else { return String(ms) + "ms" }
        let dayIndex = local >= 0 ? local / 86_400_000 : (local + 1) / 86_400_000 - 1
        let within = local - dayIndex * 86_400_000
        let date = CostDay(index: dayIndex, calendar: CostCalendar(offsetMinutes: offsetMinutes)).date
        let seconds = within / 1000
        var out = date + "T" + twoDigits(seconds / 3600) + ":" + twoDigits(seconds / 60 % 60) + ":" + twoDigits(seconds % 60)
        if milliseconds || within % 1000 != 0 { out += "." + String(within % 1000 + 1000).dropFirst() }
        return out + (offsetMinutes == 0 ? "Z" : CostCalendar(offsetMinutes: offsetMinutes).label)
    }
}
