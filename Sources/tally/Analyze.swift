import ArgumentParser
import Foundation
import TallyStorage

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find a tenant's cardinality problems: series and samples per metric and label, the labels with most values, churn.",
        discussion: "Reads the blocks' indexes and the WAL without changing anything, with a server running or not. No sample is decoded.")

    @OptionGroup var selection: TenantSelection

    @OptionGroup var progress: ProgressOption

    @Option(help: "Rows per table.")
    var limit = 10

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit must be 0 or more") }
    }

    struct Tally: Encodable {
        var name = ""
        var series = 0
        var samples = 0
        /// Series that started after the tenant's first sample or ended before its last (by more than an hour).
        var churned = 0
    }

    struct Report: Encodable {
        var tenant: String
        var series: Int
        var samples: Int
        var minTime: Int64
        var maxTime: Int64
        var metrics: [Tally]
        var labels: [LabelCardinality]
        var churningPairs: [Tally]
    }

    struct LabelCardinality: Encodable {
        var label: String
        var values: Int
        var series: Int
    }

    func run() throws {
        let tenants = try selection.tenants()
        let meter = progress.meter("analyze", total: tenants.count, unit: "tenants")
        for tenant in tenants {
            meter.write(try analyze(tenant))
            meter.advance(tenant)
        }
        meter.finish()
    }

    /// One tenant's report: a JSON line with `--json`, else its tables.
    private func analyze(_ tenant: String) throws -> String {
        let db = try TenantDatabase.open(directory: selection.storage + "/" + tenant, tenant: tenant, readOnly: true)
        for problem in db.replay.problems { Output.error("tally analyze: \(problem)\n") }
        let spans = try db.seriesSpans()
        let first = spans.map(\.minTime).min() ?? 0, last = spans.map(\.maxTime).max() ?? 0
        var metrics: [String: Tally] = [:], pairs: [String: Tally] = [:]
        var values: [String: Set<String>] = [:], labelSeries: [String: Int] = [:]
        for span in spans {
            let churned = span.minTime > first + 3_600_000 || span.maxTime < last - 3_600_000
            func count(_ tally: inout Tally) {
                tally.series += 1
                tally.samples += span.samples
                if churned { tally.churned += 1 }
            }
            let name = span.labels["__name__"] ?? ""
            metrics[name, default: Tally(name: name)].series += 0
            count(&metrics[name]!)
            for pair in span.labels.pairs where pair.name != "__name__" {
                values[pair.name, default: []].insert(pair.value)
                labelSeries[pair.name, default: 0] += 1
                let key = pair.name + "=" + pair.value
                if churned {
                    pairs[key, default: Tally(name: key)].series += 0
                    count(&pairs[key]!)
                }
            }
        }
        let report = Report(
            tenant: tenant, series: spans.count, samples: spans.reduce(0) { $0 + $1.samples }, minTime: first, maxTime: last,
            metrics: Array(metrics.values.sorted { ($0.series, $1.name) > ($1.series, $0.name) }.prefix(limit)),
            labels: Array(values.map { LabelCardinality(label: $0.key, values: $0.value.count, series: labelSeries[$0.key] ?? 0) }
                .sorted { ($0.values, $1.label) > ($1.values, $0.label) }.prefix(limit)),
            churningPairs: Array(pairs.values.sorted { ($0.churned, $1.name) > ($1.churned, $0.name) }.prefix(limit)))
        if selection.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
        }
        var out = "Tenant \(tenant): \(report.series) series, \(report.samples) samples, "
            + "\(Blocks.List.utc(first)) to \(Blocks.List.utc(last)), \(db.blockMetas.count) blocks\n\n"
        out += "Metric names with most series:\n"
        out += Table.render([["METRIC", "SERIES", "SAMPLES", "CHURNED SERIES"]] + report.metrics.map { [$0.name, String($0.series), String($0.samples), String($0.churned)] })
        out += "\nLabels with most values:\n"
        out += Table.render([["LABEL", "VALUES", "SERIES"]] + report.labels.map { [$0.label, String($0.values), String($0.series)] })
        out += "\nLabel pairs most involved in churn (series that started or ended more than an hour inside the range):\n"
        out += Table.render([["PAIR", "CHURNED SERIES"]] + report.churningPairs.map { [$0.name, String($0.churned)] })
        return out + "\n"
    }
}
