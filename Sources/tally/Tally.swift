import ArgumentParser
import Foundation
import TallyServer

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Prometheus remote-write ingestion and query engine for Kubernetes cost metrics.",
        version: TallyVersion.version,
        subcommands: [Serve.self, Dump.self, Query.self, Costs.self, Blocks.self, Compact.self, Retention.self, DeleteSeries.self, Snapshot.self, Analyze.self, Import.self])

    /// ArgumentParser's own main, except for a bad argument found by `run` (after the parser has
    /// reported its own errors, such as a misspelled option): it is printed with the usage of the
    /// command that found it rather than the top-level one, and exits 64 as the parser's do.
    static func main() async {
        let command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch let error as ValidationError {
            Output.error("Error: \(error.message)\nUsage: \(usageString(for: type(of: command)))\n")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}
