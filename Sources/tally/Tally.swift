import ArgumentParser
import TallyServer

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Prometheus remote-write ingestion and query engine for Kubernetes cost metrics.",
        version: TallyVersion.version,
        subcommands: [Serve.self, Dump.self, Costs.self, Blocks.self, Compact.self, Retention.self, DeleteSeries.self, Analyze.self, Import.self])
}
