import Foundation
import TallyStorage

/// A query API answer (Prometheus' JSON envelope) read back for printing: its table for people,
/// its warnings, and its error.
struct QueryAnswer {
    /// nil for an error answer.
    let table: String?
    let warnings: [String]
    /// `errorType: error`, for an error answer.
    let error: String?

    init(status: Int, body: [UInt8]) throws {
        guard let envelope = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let state = envelope["status"] as? String else {
            throw CommandFailure("unexpected answer (HTTP \(status)): \(String(decoding: body.prefix(500), as: UTF8.self))")
        }
        warnings = envelope["warnings"] as? [String] ?? []
        guard state == "success" else {
            error = "\(envelope["errorType"] as? String ?? "error"): \(envelope["error"] as? String ?? "")"
            table = nil
            return
        }
        error = nil
        guard let data = envelope["data"] as? [String: Any], let type = data["resultType"] as? String else {
            throw CommandFailure("unexpected answer: no resultType")
        }
        table = Self.table(type, data["result"])
    }

    /// Scalars and strings as one line; a vector as a series per line; a matrix as each series
    /// followed by its points.
    private static func table(_ type: String, _ result: Any?) -> String {
        switch type {
        case "scalar", "string":
            guard let point = result as? [Any], point.count == 2 else { return "" }
            return columns([["TIME", "VALUE"], [time(point[0]), "\(point[1])"]])
        case "vector":
            let samples = result as? [[String: Any]] ?? []
            guard !samples.isEmpty else { return "(no series)\n" }
            var rows = [["SERIES", "VALUE", "TIME"]]
            for sample in samples {
                let point = sample["value"] as? [Any] ?? []
                rows.append([series(sample["metric"]), point.count == 2 ? "\(point[1])" : "", point.isEmpty ? "" : time(point[0])])
            }
            return columns(rows)
        default:
            let all = result as? [[String: Any]] ?? []
            guard !all.isEmpty else { return "(no series)\n" }
            return all.map { one in
                let points = (one["values"] as? [[Any]] ?? []).filter { $0.count == 2 }
                return series(one["metric"]) + "\n" + columns(points.map { ["  " + time($0[0]), "\($0[1])"] })
            }.joined()
        }
    }

    /// `name{label="value", ...}` as Prometheus prints a series.
    private static func series(_ metric: Any?) -> String {
        let labels = (metric as? [String: String] ?? [:]).sorted { $0.key < $1.key }
        let name = labels.first { $0.key == "__name__" }?.value ?? ""
        let rest = labels.filter { $0.key != "__name__" }.map { "\($0.key)=\(GoFormat.quote($0.value))" }
        return rest.isEmpty && !name.isEmpty ? name : name + "{" + rest.joined(separator: ", ") + "}"
    }

    /// Unix seconds as RFC 3339 in UTC, milliseconds shown when there are any.
    private static func time(_ value: Any) -> String {
        guard let seconds = (value as? NSNumber)?.doubleValue else { return "\(value)" }
        let milliseconds = Int64((seconds * 1000).rounded())
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = milliseconds % 1000 == 0 ? [.withInternetDateTime] : [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// Rows padded into left-aligned columns two spaces apart.
    private static func columns(_ rows: [[String]]) -> String {
        var widths: [Int] = []
        for row in rows {
            for (index, cell) in row.enumerated() {
                if index == widths.count { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}
