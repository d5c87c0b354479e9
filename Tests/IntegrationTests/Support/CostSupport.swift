import Foundation
import TallyLoad
import XCTest

/// A small several-day Kubecost dataset (2 clusters x 3 nodes x 2 pods) with churn and staleness.
func costDataset(days: Int, prefix: String = "cluster-") -> KubecostDataset {
    var dataset = KubecostDataset.costDays(days, nodesPerCluster: 3, podsPerNode: 2, now: Int64(Date().timeIntervalSince1970 * 1000))
    dataset.clusterPrefix = prefix
    return dataset
}

/// `YYYY-MM-DD` of a UTC day start.
func utcDate(_ ms: Int64) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd"
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// Sends every request in order and checks each was stored.
func push(_ requests: [[UInt8]], to client: LoopbackHTTP, headers: [(String, String)] = [], file: StaticString = #filePath, line: UInt = #line) throws {
    for body in requests {
        let r = try client.request("POST", "/api/v1/write", headers: headers + [("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "0.1.0")], body: body)
        guard r.status / 100 == 2 else { return XCTFail("write answered \(r.status): \(r.body)", file: file, line: line) }
    }
}

/// Daily rows of a JSON answer keyed by "date cluster", each field as a number.
func dailyRows(_ json: String) throws -> [String: [String: Double]] {
    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
    let rows = try XCTUnwrap(object["rows"] as? [[String: Any]], json)
    var out: [String: [String: Double]] = [:]
    for row in rows {
        let key = "\(row["date"] as? String ?? "?") \(row["cluster"] as? String ?? "?")"
        out[key] = row.filter { $0.key != "complete" }.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        out[key]?["complete"] = (row["complete"] as? Bool).map { $0 ? 1 : 0 }
    }
    return out
}

/// Debian's Prometheus 2.42 as a remote-write receiver on its own directory, and its PromQL.
final class PrometheusReceiver {
    let server: PrometheusProcess

    init(directory: String) throws {
        server = try PrometheusProcess(directory: directory, configuration: { _ in "global:\n  scrape_interval: 1m\n" },
                                           arguments: ["--storage.tsdb.path=\(directory)/data", "--web.enable-remote-write-receiver"])
        try server.waitReady()
    }

    var client: LoopbackHTTP { server.client(timeoutSeconds: 60) }

    /// An instant query's vector as value by the values of `labels`, joined by spaces.
    func query(_ promql: String, at ms: Int64, by labels: [String] = ["cluster_id"]) throws -> [String: Double] {
        let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let r = try client.request("GET", "/api/v1/query?query=\(encoded)&time=\(Double(ms) / 1000)")
        guard r.status == 200,
              let object = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else {
            throw NSError(domain: "promql", code: r.status, userInfo: [NSLocalizedDescriptionKey: "\(promql): \(r.body)"])
        }
        var out: [String: Double] = [:]
        for element in result {
            let metric = element["metric"] as? [String: String] ?? [:]
            out[labels.map { metric[$0] ?? "" }.joined(separator: " ")] = Double(((element["value"] as? [Any])?.last as? String) ?? "")
        }
        return out
    }
}

/// Whether two costs agree to a relative error below `tolerance`.
func agree(_ a: Double, _ b: Double, within tolerance: Double) -> Bool {
    a == b || abs(a - b) <= tolerance * max(abs(a), abs(b))
}
