import ArgumentParser
import Foundation
import TallyStorage

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a tenant's samples in the text form of `promtool tsdb dump`, sorted by series then time.",
        discussion: "Reads the store without changing it, so it works whether or not a server is running on it. A block, series, chunk or WAL record that cannot be read is named on stderr and left out; the rest is printed, and the exit status is 1.")

    @Option(help: "Storage root.")
    var storage = "storage"

    @Option(help: "Tenant whose data to print.")
    var tenant: String

    @Option(help: "Series selector, e.g. '{__name__=\"up\", job=~\"a.*\"}'.")
    var match = "{__name__=~\".+\"}"

    @Option(help: "Earliest timestamp to print, in milliseconds since the epoch (inclusive).")
    var minTime = Int64.min

    @Option(help: "Latest timestamp to print, in milliseconds since the epoch (inclusive).")
    var maxTime = Int64.max

    func validate() throws {
        guard TenantID.isValid(tenant) else { throw ValidationError(TenantError.invalidName(tenant).description) }
        do { _ = try SelectorParser.parse(match) } catch { throw ValidationError("--match: \(error)") }
        guard minTime <= maxTime else { throw ValidationError("--min-time \(minTime) is after --max-time \(maxTime)") }
    }

    func run() throws {
        let matchers = try SelectorParser.parse(match)
        let directory = try StoreLocation.tenantDirectory(storage: storage, tenant: tenant)
        let db = try TenantDatabase.open(directory: directory, tenant: tenant, readOnly: true)
        for problem in db.replay.problems { Output.error("tally dump: \(problem)\n") }
        // Everything readable is printed; what is not is named on stderr and fails the command.
        var unreadable = db.replay.unloadedBlocks.count + db.replay.leftOut + (db.replay.orphanSamples > 0 ? 1 : 0)
        let skip = { (error: BlockError) in
            Output.error("tally dump: skipped \(error)\n")
            unreadable += 1
        }
        let series = try db.select(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable: skip)
        let histograms = try db.selectHistograms(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable: skip)
        var out = ""
        DumpFormat.write(series, histograms: histograms) { line in
            out += line
            if out.utf8.count > 1 << 16 {
                Output.write(out)
                out = ""
            }
        }
        Output.write(out)
        if unreadable > 0 {
            Output.error("tally dump: \(unreadable) unreadable block(s) or part(s) left out\n")
            throw ExitCode.failure
        }
    }
}
