import ArgumentParser
import Foundation
import TallyLoad
import TallyStorage

struct DeleteSeries: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-series",
        abstract: "Delete the samples of matching series, optionally only between --start and --end.",
        discussion: """
        The data disappears from every read at once: blocks get tombstones, the head drops the samples \
        after a WAL record. It leaves the disk at the next compaction (blocks with 5% or more deleted are \
        rewritten). With a running server on the storage, the server is asked \
        (POST /api/v1/admin/tsdb/delete_series, as Prometheus takes it).
        """)

    @OptionGroup var target: MaintenanceTarget

    @Option(help: "Series selector, e.g. '{__name__=\"node_cpu_hourly_cost\",cluster_id=\"c1\"}'; repeat for several.")
    var match: [String] = []

    @Option(help: "Oldest time to delete, inclusive (RFC 3339 or Unix seconds). Default: all time.")
    var start: String?

    @Option(help: "Newest time to delete, inclusive (RFC 3339 or Unix seconds). Default: all time.")
    var end: String?

    @Flag(help: "Count what would be deleted and change nothing.")
    var dryRun = false

    func validate() throws {
        do { _ = try DeletionArguments(selectors: match, start: start, end: end) } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        let arguments = try DeletionArguments(selectors: match, start: start, end: end)
        var query = match.map { "match[]=" + LoopbackHTTP.escaped($0) }
        if let start { query.append("start=" + LoopbackHTTP.escaped(start)) }
        if let end { query.append("end=" + LoopbackHTTP.escaped(end)) }
        if dryRun { query.append("dry_run=1") }
        try target.run(dryRun ? "count what delete-series would delete" : "delete series",
                       header: ["TENANT", "WHERE", "SERIES", "SAMPLES"],
                       serverPath: { "/api/v1/admin/tsdb/delete_series?tenant=\($0)&" + query.joined(separator: "&") }) { db in
            let report = try db.deleteSeries(arguments.selectors, in: arguments.interval, dryRun: dryRun)
            // A series spans blocks, so per-part series counts do not add up to a total.
            var rows = [[db.tenant, dryRun ? "(dry run) total" : "total", "", String(report.samples)]]
            rows += report.parts.map { ["", $0.place, String($0.series), String($0.samples)] }
            return (report.json(tenant: db.tenant, by: "this process"), rows, [])
        }
    }
}
