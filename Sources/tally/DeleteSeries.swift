import ArgumentParser
import Foundation
import TallyLoad
import TallyServer
import TallyStorage

struct DeleteSeries: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-series",
        abstract: "Delete the samples of matching series, optionally only between --start and --end.",
        discussion: """
        The data disappears from every read at once: blocks get tombstones, the head drops the samples \
        after a WAL record. It leaves the disk at the next compaction (blocks with 5% or more deleted are \
        rewritten). With a running server on the storage, that server (found through <storage>/.server) is asked \
        (POST /api/v1/admin/tsdb/delete_series, as Prometheus takes it).
        """)

    @OptionGroup var target: MaintenanceTarget

    @Option(help: "Series selector, e.g. '{__name__=\"node_cpu_hourly_cost\",cluster_id=\"c1\"}'; repeat for several.")
    var match: [String] = []

    @Option(parsing: .unconditional, help: "Oldest time to delete, inclusive: YYYY-MM-DD (UTC, from the day's start), RFC 3339 or Unix seconds. Default: all time.")
    var start: String?

    @Option(parsing: .unconditional, help: "Newest time to delete, inclusive: YYYY-MM-DD (UTC, to the day's end), RFC 3339 or Unix seconds. Default: all time.")
    var end: String?

    @Flag(help: "Count what would be deleted and change nothing.")
    var dryRun = false

    /// `tally delete-series --json` and `POST /api/v1/admin/tsdb/delete_series`, one tenant.
    struct Answer: MaintenanceAnswer {
        struct Part: Decodable {
            var place: String
            var series: Int
            var samples: Int
        }

        var tenant: String
        var dryRun: Bool
        var samples: Int
        var parts: [Part]

        static let header = ["TENANT", "WHERE", "SERIES", "SAMPLES"]

        // A series spans blocks, so per-part series counts do not add up to a total.
        var rows: [[String]] {
            [[tenant, dryRun ? "(dry run) total" : "total", "", String(samples)]] + parts.map { ["", $0.place, String($0.series), String($0.samples)] }
        }
    }

    func validate() throws {
        guard !match.isEmpty else { throw ValidationError("name the series to delete with --match, e.g. --match '{cluster_id=\"c1\"}'") }
        for (flag, text, bound) in [("--start", start, TimeArgument.Bound.start), ("--end", end, .end)] {
            if let text, TimeArgument.milliseconds(text, as: bound) == nil { throw ValidationError("\(flag) \(text): expected \(TimeArgument.forms)") }
        }
        let (first, last) = bounds
        if let first, let last, first > last { throw ValidationError("--start \(start ?? "") is after --end \(end ?? "")") }
        do { _ = try DeletionArguments(selectors: match, start: nil, end: nil) } catch { throw ValidationError(error.description) }
    }

    /// --start and --end in Unix milliseconds (a day as --end means its last millisecond).
    private var bounds: (Int64?, Int64?) {
        (start.flatMap { TimeArgument.milliseconds($0, as: .start) }, end.flatMap { TimeArgument.milliseconds($0, as: .end) })
    }

    func run() throws {
        // Passed on as Unix seconds, the form both this process and the admin endpoint read alike.
        let (first, last) = bounds
        let arguments = try DeletionArguments(selectors: match, start: first.map(TimeArgument.secondsText), end: last.map(TimeArgument.secondsText))
        var query = match.map { "match[]=" + LoopbackHTTP.escaped($0) }
        if let first { query.append("start=" + TimeArgument.secondsText(first)) }
        if let last { query.append("end=" + TimeArgument.secondsText(last)) }
        if dryRun { query.append("dry_run=1") }
        try target.run(dryRun ? "count what delete-series would delete" : "delete series", Answer.self,
                       serverPath: { "/api/v1/admin/tsdb/delete_series?tenant=\($0)&" + query.joined(separator: "&") }) { db in
            try db.deleteSeries(arguments.selectors, in: arguments.interval, dryRun: dryRun).json(tenant: db.tenant, by: "this process")
        }
    }
}
