import ArgumentParser
import Foundation
import TallyStorage

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add existing data to a tenant.",
        subcommands: [ImportBlocks.self])

    struct ImportBlocks: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "blocks",
            abstract: "Verify Prometheus blocks (e.g. from `promtool tsdb create-blocks-from openmetrics`) and add them to a tenant.",
            discussion: """
            SRC_DIR is a block directory or a directory of blocks. Each block is read in full (checksums, \
            series order, chunk ranges) before anything is written; it is copied under <ulid>.tmp, synced and \
            renamed, so it is safe while a server runs on the storage (the server loads it within 5 s). \
            A block whose ULID the tenant already has is skipped.
            """)

        @Argument(help: "A block directory, or a directory holding blocks.")
        var source: String

        @Option(help: "Storage root (it must exist).")
        var storage = "storage"

        @Option(help: "Tenant to add the blocks to (created if new).")
        var tenant: String

        @OptionGroup var progress: ProgressOption

        func validate() throws {
            guard TenantID.isValid(tenant) else { throw ValidationError(TenantError.invalidName(tenant).description) }
        }

        func run() throws {
            let root = try StoreLocation.root(storage)
            let blocks = try BlockImporter.blocks(in: source)
            guard !blocks.isEmpty else { throw CommandFailure("no blocks in \(source)") }
            var failures = 0
            let meter = progress.meter("import", total: blocks.count, unit: "blocks")
            defer { meter.finish() }
            for (i, block) in blocks.enumerated() {
                defer { meter.advance(block) }
                let prefix = "[\(i + 1)/\(blocks.count)] \(block): "
                do {
                    switch try BlockImporter.importBlock(block, tenantDirectory: root + "/" + tenant, tenant: tenant) {
                    case let .imported(ulid, series, samples):
                        meter.write(prefix + "imported as \(ulid) (\(series) series, \(samples) samples)\n")
                    case let .alreadyPresent(ulid):
                        meter.write(prefix + "skipped, tenant \(tenant) already has block \(ulid)\n")
                    }
                } catch {
                    failures += 1
                    meter.write(prefix + "refused: \(error)\n", to: STDERR_FILENO)
                }
            }
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
