import Foundation
import TallyLoad
import TallyWire
import XCTest

/// The cost endpoints and `tally costs` against a real server holding pushed data.
final class CostAPITests: XCTestCase {
    let days = 2

    /// A server holding `acme` (clusters cluster-*) and `other` (clusters other-*).
    func serverWithTwoTenants(_ root: String) throws -> (TallyServerProcess, KubecostDataset) {
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        let acme = costDataset(days: days), other = costDataset(days: days, prefix: "other-")
        try push(acme.requests(senders: 1)[0], to: tally.client, headers: [("THANOS-TENANT", "acme")])
        try push(other.requests(senders: 1)[0], to: tally.client, headers: [("X-Scope-OrgID", "other")])
        return (tally, acme)
    }

    func testTenantsSeeOnlyTheirClustersInEveryFormat() throws {
        let root = try makeTemporaryDirectory("cost-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (tally, dataset) = try serverWithTwoTenants(root)
        let (first, last) = (utcDate(dataset.start), utcDate(dataset.start + 86_400_000))
        let query = "start=\(first)&end=\(last)"

        let acme = try dailyRows(tally.client.request("GET", "/api/v1/costs/daily?\(query)", headers: [("THANOS-TENANT", "acme")]).body)
        let other = try dailyRows(tally.client.request("GET", "/api/v1/costs/daily?\(query)&tenant=other").body)
        XCTAssertEqual(Set(acme.keys), ["\(first) cluster-0", "\(first) cluster-1", "\(last) cluster-0", "\(last) cluster-1"])
        XCTAssertEqual(Set(other.keys), ["\(first) other-0", "\(first) other-1", "\(last) other-0", "\(last) other-1"])
        let row = try XCTUnwrap(acme["\(first) cluster-0"])
        XCTAssertEqual(row["complete"], 1)
        XCTAssertEqual(row["total"] ?? 0, ["cpu", "ram", "gpu", "pv", "load_balancer", "management", "network"].reduce(0) { $0 + row[$1]! }, accuracy: 1e-9)
        XCTAssertEqual(row["network"] ?? 0, row["network_zone"]! + row["network_region"]! + row["network_internet"]!, accuracy: 1e-9)
        XCTAssertGreaterThan(row["network_internet"] ?? 0, 0)
        // One cluster; CSV; FOCUS.
        let one = try dailyRows(tally.client.request("GET", "/api/v1/costs/daily?\(query)&cluster=cluster-1", headers: [("THANOS-TENANT", "acme")]).body)
        XCTAssertEqual(Set(one.keys), ["\(first) cluster-1", "\(last) cluster-1"])
        XCTAssertEqual(one["\(first) cluster-1"]?["total"], acme["\(first) cluster-1"]?["total"])
        let csv = try tally.client.request("GET", "/api/v1/costs/daily?\(query)&format=csv", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(csv.headers["content-type"], "text/csv; charset=utf-8")
        let csvLines = csv.body.split(separator: "\r\n")
        XCTAssertEqual(csvLines.count, 5)
        let header = csvLines[0].split(separator: ",").map(String.init)
        let firstRow = csvLines[1].split(separator: ",").map(String.init)
        XCTAssertEqual(firstRow[0], "cluster-0")
        XCTAssertEqual(Double(firstRow[header.firstIndex(of: "total")!]), acme["\(first) cluster-0"]?["total"])
        let focus = try tally.client.request("GET", "/api/v1/costs/daily?\(query)&format=focus", headers: [("THANOS-TENANT", "acme")])
        let focusLines = focus.body.split(separator: "\r\n")
        XCTAssertTrue(focusLines[0].hasPrefix("BillingAccountId,BillingAccountName,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart"))
        XCTAssertEqual(focusLines.count, 1 + 4 * 7)
        XCTAssertTrue(focusLines[1].hasPrefix("acme,acme,") && focusLines[1].contains(",USD,Usage,"), String(focusLines[1]))

        // gzip when asked, the same rows once inflated (computed_at aside).
        let plain = try tally.client.request("GET", "/api/v1/costs/daily?\(query)", headers: [("THANOS-TENANT", "acme")])
        let zipped = try tally.client.request("GET", "/api/v1/costs/daily?\(query)", headers: [("THANOS-TENANT", "acme"), ("Accept-Encoding", "gzip, deflate")])
        XCTAssertEqual(zipped.headers["content-encoding"], "gzip")
        XCTAssertLessThan(zipped.bytes.count, plain.bytes.count)
        let gz = root + "/answer.gz"
        XCTAssertTrue(FileManager.default.createFile(atPath: gz, contents: Data(zipped.bytes)))
        XCTAssertEqual(try dailyRows(runCommand("/bin/gzip", ["-dc", gz]).stdout), try dailyRows(plain.body))
        XCTAssertNil(plain.headers["content-encoding"])
    }

    func testAllocationMetroculusAndTheCLIAgreeWithDaily() throws {
        let root = try makeTemporaryDirectory("cost-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (tally, dataset) = try serverWithTwoTenants(root)
        let first = utcDate(dataset.start)
        let acme = [("THANOS-TENANT", "acme")]
        let daily = try dailyRows(tally.client.request("GET", "/api/v1/costs/daily?start=\(first)&end=\(first)", headers: acme).body)

        // Allocation: namespaces plus idle are the nodes' cpu+ram+gpu (no node is over-allocated here).
        let allocation = try tally.client.request("GET", "/api/v1/costs/allocation?start=\(first)&end=\(first)&aggregate=namespace", headers: acme)
        XCTAssertEqual(allocation.status, 200, allocation.body)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(allocation.body.utf8)) as? [String: Any])
        let rows = try XCTUnwrap(object["rows"] as? [[String: Any]])
        for cluster in ["cluster-0", "cluster-1"] {
            let mine = rows.filter { $0["cluster"] as? String == cluster }
            XCTAssertEqual(mine.filter { $0["idle"] as? Bool == true }.count, 1)
            let compute = mine.reduce(0.0) { sum, row in sum + ["cpu", "ram", "gpu"].reduce(0.0) { $0 + ((row[$1] as? NSNumber)?.doubleValue ?? 0) } }
            let nodes = try XCTUnwrap(daily["\(first) \(cluster)"])
            XCTAssertEqual(compute, nodes["cpu"]! + nodes["ram"]! + nodes["gpu"]!, accuracy: 1e-9)
            XCTAssertGreaterThan(mine.reduce(0.0) { $0 + (($1["pv"] as? NSNumber)?.doubleValue ?? 0) }, 0)
        }

        // The Metroculus summary is the sum of the daily rows of the tenant's clusters.
        let dayStart = dataset.start / 1000
        let metro = try tally.client.request("GET", "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=acme&start_date=\(dayStart)&end_date=\(dayStart + 86_400)")
        XCTAssertEqual(metro.status, 200, metro.body)
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(metro.body.utf8)) as? [String: Any])
        let summary = try XCTUnwrap(m["summary"] as? [String: Any])
        let total = daily.values.reduce(0) { $0 + $1["total"]! }
        XCTAssertEqual((summary["total_cost"] as? NSNumber)?.doubleValue ?? 0, total, accuracy: 1e-9)
        XCTAssertEqual((m["days"] as? [Any])?.count, 1)
        let breakdown = try XCTUnwrap(m["breakdown"] as? [String: Any])
        XCTAssertEqual((breakdown["network_internet_cost"] as? NSNumber)?.doubleValue ?? 0,
                       daily.values.reduce(0) { $0 + $1["network_internet"]! }, accuracy: 1e-9)
        let mismatch = try tally.client.request("GET", "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=acme&start_date=\(dayStart)&end_date=\(dayStart + 86_400)",
                                                headers: [("THANOS-TENANT", "other")])
        XCTAssertEqual(mismatch.status, 400)

        // The CLI on the live store gives the same JSON numbers; its table is for people.
        let cli = try runCommand(Binaries.tally, ["costs", "daily", "--storage", tally.storage, "--tenant", "acme", "--from", first, "--to", first, "--format", "json"])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        XCTAssertEqual(try dailyRows(cli.stdout).mapValues { $0.filter { $0.key != "complete" } }, daily.mapValues { $0.filter { $0.key != "complete" } })
        let table = try runCommand(Binaries.tally, ["costs", "allocation", "--storage", tally.storage, "--tenant", "acme", "--from", first, "--to", first])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("(idle)") && table.stdout.contains("ns-0"), table.stdout)
        let bad = try runCommand(Binaries.tally, ["costs", "daily", "--storage", tally.storage, "--tenant", "acme", "--from", "2024-02-30", "--to", first])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--from"), bad.stderr)
    }

    func testBadParametersAre400WithAReason() throws {
        let root = try makeTemporaryDirectory("cost-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        let cases: [(String, String)] = [
            ("/api/v1/costs/daily?start=2024-13-01&end=2024-12-02", "start: expected a date"),
            ("/api/v1/costs/daily?start=2024-03-02&end=2024-03-01", "is after end"),
            ("/api/v1/costs/daily?start=2020-01-01&end=2024-01-01", "at most 400"),
            ("/api/v1/costs/daily?end=2024-01-01", "start is required"),
            ("/api/v1/costs/daily?start=2024-01-01&end=2024-01-01&tz=%2B25:00", "tz:"),
            ("/api/v1/costs/daily?start=2024-01-01&end=2024-01-01&format=xml", "format:"),
            ("/api/v1/costs/allocation?start=2024-01-01&end=2024-01-01&aggregate=team", "aggregate:"),
            ("/api/v1/costs/daily?start=2024-01-01&end=2024-01-01&tenant=../x", "tenant"),
            ("/metroculus/v2/kubecost_cluster_costs?cloud_account_id=acme&start_date=10&end_date=5", "not before"),
            ("/metroculus/v2/kubecost_cluster_costs?start_date=1&end_date=5", "cloud_account_id is required"),
        ]
        for (path, reason) in cases {
            let r = try tally.client.request("GET", path)
            XCTAssertEqual(r.status, 400, path)
            XCTAssertTrue(r.body.contains(reason), "\(path): \(r.body)")
        }
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/costs/daily?start=2024-01-01&end=2024-01-01").status, 405)
        // A +05:30 offset written unescaped arrives as a space and still means +05:30: past the
        // parameters, the question reaches the (unknown) tenant.
        let local = try tally.client.request("GET", "/api/v1/costs/daily?start=2024-01-01&end=2024-01-01&tz=+05:30")
        XCTAssertEqual(local.status, 404, local.body)
        XCTAssertEqual(filesUnder(root + "/storage").filter { $0 != ".lock" && $0 != ".admin-token" && $0 != ".server" }, [])
    }

    func testAnUnknownTenantIs404OnEveryCostEndpointAndExits1OnTheCommandLine() throws {
        let root = try makeTemporaryDirectory("cost-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (tally, dataset) = try serverWithTwoTenants(root)
        let (first, dayStart) = (utcDate(dataset.start), dataset.start / 1000)
        for path in ["/api/v1/costs/daily?start=\(first)&end=\(first)&tenant=nobody",
                     "/api/v1/costs/allocation?start=\(first)&end=\(first)&tenant=nobody",
                     "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=nobody&start_date=\(dayStart)&end_date=\(dayStart + 86_400)"] {
            let answer = try tally.client.request("GET", path)
            XCTAssertEqual(answer.status, 404, path)
            XCTAssertEqual(answer.headers["content-type"], "application/json")
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: String], answer.body)
            XCTAssertEqual(object, ["status": "error", "errorType": "not_found", "error": "unknown tenant nobody: it has never written to this server"])
        }
        // Asking makes no directory for it, and a tenant that has written still answers.
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/storage/nobody"))
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/costs/daily?start=\(first)&end=\(first)&tenant=other").status, 200)

        let cli = try runCommand(Binaries.tally, ["costs", "daily", "--storage", tally.storage, "--tenant", "nobody", "--from", first, "--to", first])
        XCTAssertEqual(cli.status, 1)
        XCTAssertEqual(cli.stdout, "")
        XCTAssertTrue(cli.stderr.contains("unknown tenant nobody: it has never written under \(tally.storage)"), cli.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/storage/nobody"))
    }

    func testSeriesWithoutAJoinLabelAreLeftOutCountedAndWarned() throws {
        let root = try makeTemporaryDirectory("cost-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        // The fee of cluster c1, a fee sent without cluster_id (no external_labels), and a node price without its node.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let samples = stride(from: now - 3_600_000, through: now, by: 60_000).map { WireSample(timestamp: $0, valueBits: 0.10.bitPattern) }
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "kubecost_cluster_management_cost"), ("cluster_id", "c1"), ("provisioner_name", "EKS")], samples: samples)
        encoder.addSeries(labels: [("__name__", "kubecost_cluster_management_cost"), ("provisioner_name", "GKE")], samples: samples)
        encoder.addSeries(labels: [("__name__", "node_cpu_hourly_cost"), ("cluster_id", "c1"), ("instance", "10.0.0.1:9003")], samples: samples)
        try push([encoder.compressed()], to: tally.client, headers: [("THANOS-TENANT", "acme")])

        let date = utcDate(now - 3_600_000)
        let expected = [
            "left out 1 series of kubecost_cluster_management_cost without a cluster_id label, e.g. "
                + "{__name__=\"kubecost_cluster_management_cost\", provisioner_name=\"GKE\"}",
            "left out 1 series of node_cpu_hourly_cost without a node label, e.g. "
                + "{__name__=\"node_cpu_hourly_cost\", cluster_id=\"c1\", instance=\"10.0.0.1:9003\"}",
        ]
        for path in ["daily", "allocation"] {
            let answer = try tally.client.request("GET", "/api/v1/costs/\(path)?start=\(date)&end=\(date)", headers: [("THANOS-TENANT", "acme")])
            XCTAssertEqual(answer.status, 200, answer.body)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], answer.body)
            XCTAssertEqual(object["warnings"] as? [String], expected, path)
            XCTAssertTrue(expected.contains(answer.headers["tally-warning"] ?? ""), "\(path): \(answer.headers)")
            let rows = try XCTUnwrap(object["rows"] as? [[String: Any]])
            XCTAssertEqual(Set(rows.compactMap { $0["cluster"] as? String }), ["c1"], path)
        }
        let page = try tally.client.request("GET", "/metrics").body
        let gauge = page.split(separator: "\n").first { $0.hasPrefix("tally_cost_series_left_out{tenant=\"acme\"} ") }
        XCTAssertEqual(gauge.flatMap { Double($0.split(separator: " ").last ?? "") }, 2, page)

        // The command line prints the same warnings and the rows of c1 only.
        let cli = try runCommand(Binaries.tally, ["costs", "daily", "--storage", tally.storage, "--tenant", "acme", "--from", date, "--to", date,
                                                  "--format", "json"])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        XCTAssertEqual(Set(try dailyRows(cli.stdout).keys), ["\(date) c1"])
        for warning in expected { XCTAssertTrue(cli.stderr.contains("tally costs: warning: " + warning), cli.stderr) }
    }
}
