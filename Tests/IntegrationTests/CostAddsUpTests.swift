import Foundation
import TallyLoad
import TallyWire
import XCTest

/// Allocation that adds up to the daily total, counted up to the moment of the question only, and
/// FOCUS rows that carry what the FOCUS 1.0 specification requires, against a real server.
final class CostAddsUpTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws { root = try makeTemporaryDirectory("cost-adds-up") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    private func server(holding dataset: KubecostDataset) throws -> TallyServerProcess {
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        try push(dataset.requests(senders: 1)[0], to: tally.client, headers: [("THANOS-TENANT", "acme")])
        return tally
    }

    private func rows(_ tally: TallyServerProcess, _ path: String) throws -> [[String: Any]] {
        let answer = try tally.client.request("GET", path, headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(answer.status, 200, answer.body)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], answer.body)
        XCTAssertNil(object["warnings"], answer.body)
        return try XCTUnwrap(object["rows"] as? [[String: Any]])
    }

    func testNamespacesIdleAndSharedAddUpToTheDailyTotalForEveryClusterAndDay() throws {
        var dataset = costDataset(days: 2)
        dataset.clusters = 3
        let tally = try server(holding: dataset)
        // Two whole days and the half hour of the third.
        let query = "start=\(utcDate(dataset.start))&end=\(utcDate(dataset.start + 2 * 86_400_000))"
        let daily = try dailyRows(tally.client.request("GET", "/api/v1/costs/daily?\(query)", headers: [("THANOS-TENANT", "acme")]).body)
        XCTAssertEqual(daily.count, 3 * 3)
        let categories = ["cpu", "ram", "gpu", "pv", "load_balancer", "management", "network"]
        for aggregate in ["namespace", "pod", "node"] {
            var sums: [String: [String: Double]] = [:]
            for row in try rows(tally, "/api/v1/costs/allocation?\(query)&aggregate=\(aggregate)") {
                let key = "\(row["date"] as? String ?? "?") \(row["cluster"] as? String ?? "?")"
                for field in categories + ["total"] { sums[key, default: [:]][field, default: 0] += (row[field] as? NSNumber)?.doubleValue ?? .nan }
            }
            XCTAssertEqual(Set(sums.keys), Set(daily.keys), aggregate)
            for (key, day) in daily {
                for field in categories + ["total"] {
                    let allocated = sums[key]?[field] ?? .nan, want = day[field] ?? .nan
                    XCTAssertEqual(allocated, want, accuracy: 1e-9, "\(aggregate) \(key) \(field)")
                }
                XCTAssertGreaterThan(day["network"] ?? 0, 0, key)
            }
        }
    }

    func testAQuestionAskedMidDayCountsNoMinuteAfterItsOwnTime() throws {
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        // The management fee, $0.10 an hour, every minute of the last 3 hours of today and 5
        // minutes ahead of the clock (a sender's clock runs ahead; each sample also holds 5 minutes).
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let today = now / 86_400_000 * 86_400_000
        let first = max(today, (now - 3 * 3_600_000) / 60_000 * 60_000)
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "kubecost_cluster_management_cost"), ("cluster_id", "c1"), ("provisioner_name", "EKS")],
                          samples: stride(from: first, through: now + 5 * 60_000, by: 60_000).map { WireSample(timestamp: $0, valueBits: 0.10.bitPattern) })
        try push([encoder.compressed()], to: tally.client, headers: [("THANOS-TENANT", "acme")])

        let date = utcDate(today)
        let asked = Int64(Date().timeIntervalSince1970 * 1000)
        let daily = try rows(tally, "/api/v1/costs/daily?start=\(date)&end=\(date)")
        let allocation = try rows(tally, "/api/v1/costs/allocation?start=\(date)&end=\(date)")
        let answered = Int64(Date().timeIntervalSince1970 * 1000)
        let row = try XCTUnwrap(daily.first { $0["cluster"] as? String == "c1" })
        // Counted from the first sample to the moment of the question, which lies in [asked, answered].
        let (least, most) = (0.10 * Double(asked - first) / 3_600_000, 0.10 * Double(answered - first) / 3_600_000)
        for cost in [row["management"], allocation.last?["management"]].map({ ($0 as? NSNumber)?.doubleValue ?? .nan }) {
            XCTAssertGreaterThanOrEqual(cost, least - 1e-12)
            XCTAssertLessThanOrEqual(cost, most + 1e-12)
        }
        let covered = try XCTUnwrap((row["covered_minutes"] as? [String: Any])?["management"] as? NSNumber).doubleValue
        XCTAssertLessThanOrEqual(covered * 60_000, Double(answered - first))
        XCTAssertEqual(allocation.last?["shared"] as? Bool, true)
        XCTAssertEqual(row["complete"] as? Bool, false)
    }

    /// The columns whose feature level is Mandatory in FOCUS 1.0 (the FinOps Open Cost and Usage
    /// Specification, version 1.0 of June 2024, `specification/columns/*.md`), and its allowed
    /// values of ServiceCategory and ChargeCategory.
    static let focusMandatoryColumns = [
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
        "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
        "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
        "ServiceCategory", "ServiceName",
    ]
    /// Mandatory columns that allow no null in FOCUS 1.0 (PricingQuantity and PricingUnit none in a Usage row).
    static let focusNeverNull = [
        "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory",
        "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
        "ProviderName", "PublisherName", "ServiceCategory", "ServiceName", "PricingQuantity", "PricingUnit", "ChargeDescription",
    ]
    static let focusServiceCategories: Set = [
        "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases", "Developer Tools", "Multicloud",
        "Identity", "Integration", "Internet of Things", "Management and Governance", "Media", "Migration", "Mobile", "Networking",
        "Security", "Storage", "Web", "Other",
    ]
    static let focusChargeCategories: Set = ["Adjustment", "Purchase", "Credit", "Usage", "Tax"]

    func testFocusRowsCarryEveryMandatoryColumnAndTheRightServiceCategory() throws {
        let dataset = costDataset(days: 1)
        let tally = try server(holding: dataset)
        let date = utcDate(dataset.start)
        let daily = try dailyRows(tally.client.request("GET", "/api/v1/costs/daily?start=\(date)&end=\(date)", headers: [("THANOS-TENANT", "acme")]).body)
        let expected = ["cpu": "Compute", "ram": "Compute", "gpu": "Compute", "pv": "Storage", "load_balancer": "Networking",
                        "network": "Networking", "management": "Management and Governance"]
        let charges = ["cpu": "Node CPU ", "ram": "Node memory ", "gpu": "Node GPUs ", "pv": "Persistent volume storage ", "load_balancer": "Load balancers ",
                       "network": "Network egress ", "management": "Cluster management fee "]
        for path in ["daily", "allocation"] {
            let answer = try tally.client.request("GET", "/api/v1/costs/\(path)?start=\(date)&end=\(date)&format=focus", headers: [("THANOS-TENANT", "acme")])
            XCTAssertEqual(answer.status, 200, answer.body)
            let table = parseCSV(answer.body)
            let header = try XCTUnwrap(table.first)
            XCTAssertEqual(Set(Self.focusMandatoryColumns).subtracting(header), [], path)
            var billed: [String: Double] = [:]
            for cells in table.dropFirst() {
                let row = Dictionary(uniqueKeysWithValues: zip(header, cells))
                for column in Self.focusNeverNull { XCTAssertFalse(row[column, default: ""].isEmpty, "\(path) \(column): \(cells)") }
                XCTAssertTrue(Self.focusServiceCategories.contains(row["ServiceCategory"]!), "\(cells)")
                XCTAssertTrue(Self.focusChargeCategories.contains(row["ChargeCategory"]!), "\(cells)")
                XCTAssertTrue(["", "Correction"].contains(row["ChargeClass"]!), "\(cells)")
                XCTAssertEqual(row["BillingPeriodStart"], String(date.prefix(8)) + "01T00:00:00Z")
                let tags = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(row["Tags"]!.utf8)) as? [String: String])
                let category = try XCTUnwrap(tags["category"])
                XCTAssertEqual(row["ServiceCategory"], expected[category], "\(path) \(category)")
                XCTAssertTrue(row["ChargeDescription"]!.hasPrefix(charges[category]!) && row["ChargeDescription"]!.hasSuffix("cluster \(tags["cluster"]!)"),
                              "\(path): \(cells)")
                XCTAssertEqual(row["BilledCost"], row["EffectiveCost"])
                billed[tags["cluster"]!, default: 0] += Double(row["BilledCost"]!) ?? .nan
            }
            for cluster in ["cluster-0", "cluster-1"] {
                XCTAssertEqual(billed[cluster] ?? 0, daily["\(date) \(cluster)"]?["total"] ?? .nan, accuracy: 1e-9, "\(path) \(cluster)")
            }
        }
    }

    /// RFC 4180 CSV: quoted cells may hold commas and doubled quotes.
    private func parseCSV(_ text: String) -> [[String]] {
        var table: [[String]] = [], row: [String] = [], cell = "", quoted = false
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            switch (chars[i], quoted) {
            case ("\"", true):
                if i + 1 < chars.count && chars[i + 1] == "\"" { cell.append("\""); i += 1 } else { quoted = false }
            case ("\"", false): quoted = true
            case (",", false): row.append(cell); cell = ""
            case ("\r\n", false), ("\n", false): row.append(cell); table.append(row); row = []; cell = ""
            default: cell.append(chars[i])
            }
            i += 1
        }
        return table
    }
}
