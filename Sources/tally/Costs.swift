import ArgumentParser
import Foundation
import TallyCost
import TallyStorage

struct Costs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Daily cluster costs and allocation of a tenant, by the cost semantics of docs/costs.md.",
        discussion: "Reads the store without changing it, so it works whether or not a server is running on it.",
        subcommands: [Daily.self, Allocation.self])

    /// What both subcommands are asked.
    struct Question: ParsableArguments {
        @Option(help: "Storage root (it must exist).")
        var storage = "storage"

        @Option(help: "Tenant to read.")
        var tenant: String

        @Option(parsing: .unconditional, help: "First day: YYYY-MM-DD, or the day holding an RFC 3339 time or Unix seconds.")
        var from: String

        @Option(parsing: .unconditional, help: "Last day (inclusive): YYYY-MM-DD, or the day holding an RFC 3339 time or Unix seconds.")
        var to: String

        @Option(help: "Only this cluster (its cluster_id).")
        var cluster: String?

        @Option(parsing: .unconditional, help: "Days of this fixed UTC offset, e.g. +05:30.")
        var tz = "Z"

        @Option(help: "table, json, csv or focus.")
        var format = "table"

        @OptionGroup var progress: ProgressOption

        func validate() throws {
            _ = try checked()
        }

        /// The calendar, days and format asked for, or the argument that is wrong.
        private func checked() throws -> (CostCalendar, CostDay, CostDay, CostReportFormat) {
            guard TenantID.isValid(tenant) else { throw ValidationError(TenantError.invalidName(tenant).description) }
            guard let calendar = CostCalendar(parsing: tz) else { throw ValidationError("--tz: expected Z or an offset like +05:30") }
            guard let first = TimeArgument.day(from, calendar: calendar) else { throw ValidationError("--from \(from): expected \(TimeArgument.forms)") }
            guard let last = TimeArgument.day(to, calendar: calendar) else { throw ValidationError("--to \(to): expected \(TimeArgument.forms)") }
            guard first <= last else { throw ValidationError("--from \(first.date) is after --to \(last.date)") }
            guard let format = CostReportFormat(rawValue: format) else { throw ValidationError("--format: expected table, json, csv or focus") }
            return (calendar, first, last, format)
        }

        func open() throws -> (CostEngine, SkippingQuerier, CostDay, CostDay, CostReportFormat) {
            let (calendar, first, last, format) = try checked()
            let directory = try StoreLocation.tenantDirectory(storage: storage, tenant: tenant)
            let db = try TenantDatabase.open(directory: directory, tenant: tenant, readOnly: true)
            for problem in db.replay.problems { Output.error("tally costs: \(problem)\n") }
            // Rollups the server computed are used; this reader never writes them.
            let rollups = CostRollupStore(tenantDirectory: directory, calendar: calendar, options: CostOptions(), readOnly: true)
            let querier = SkippingQuerier(db)
            return (CostEngine(querier: querier, rollups: rollups), querier, first, last, format)
        }

        /// Prints what the answer left out, after the answer itself: series without a label they are
        /// joined on as warnings, unreadable data as a failure of the command.
        func finish(_ engine: CostEngine, _ querier: SkippingQuerier) throws {
            for warning in engine.leftOut.warnings { Output.error("tally costs: warning: \(warning)\n") }
            guard !querier.warnings.isEmpty else { return }
            for warning in querier.warnings { Output.error("tally costs: \(warning)\n") }
            throw CommandFailure("the answer above leaves out data that could not be read")
        }

        var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    }

    struct Daily: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One row per cluster and day: every category, total, covered minutes, completeness.")

        @OptionGroup var question: Question

        func run() throws {
            let (engine, querier, first, last, format) = try question.open()
            let rows: [DailyClusterCost]
            let meter = question.progress.meter("costs daily", total: Int(clamping: last.index - first.index + 1), unit: "days")
            do { rows = try engine.daily(from: first, to: last, cluster: question.cluster, now: question.now) { meter.advance() } } catch let error as CostQueryError {
                throw CommandFailure(error.description)
            }
            meter.finish()
            Output.write(CostReport.daily(rows, tenant: question.tenant, format: format))
            try question.finish(engine, querier)
        }
    }

    struct Allocation: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cost per namespace, pod or node and day, with each cluster's idle cost.")

        @OptionGroup var question: Question

        @Option(help: "namespace, pod or node.")
        var aggregate = "namespace"

        func validate() throws {
            guard AllocationAggregate(rawValue: aggregate) != nil else { throw ValidationError("--aggregate: expected namespace, pod or node") }
        }

        func run() throws {
            let aggregate = AllocationAggregate(rawValue: aggregate)!
            let (engine, querier, first, last, format) = try question.open()
            let rows: [AllocationRow]
            let meter = question.progress.meter("costs allocation", total: Int(clamping: last.index - first.index + 1), unit: "days")
            do {
                rows = try engine.allocation(from: first, to: last, aggregate: aggregate, cluster: question.cluster, now: question.now) { meter.advance() }
            } catch let error as CostQueryError {
                throw CommandFailure(error.description)
            }
            meter.finish()
            Output.write(CostReport.allocation(rows, tenant: question.tenant, aggregate: aggregate, format: format))
            try question.finish(engine, querier)
        }
    }
}
