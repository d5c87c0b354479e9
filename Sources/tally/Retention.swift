import ArgumentParser
import Foundation
import TallyStorage

struct Retention: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop whole blocks that end --keep or more before the tenant's newest block ends.",
        discussion: """
        The horizon is measured from the newest block, as Prometheus' --storage.tsdb.retention.time is, so \
        old imported history is not dropped just for being old. Data in the head is never dropped. With a \
        running server on the storage, that server (found through <storage>/.server) is asked \
        (POST /api/v1/admin/retention).
        """)

    @OptionGroup var target: MaintenanceTarget

    @Option(help: "How much to keep, e.g. 400d, 8w.")
    var keep: String

    @Flag(help: "List the blocks that would be dropped and change nothing.")
    var dryRun = false

    /// `tally retention --json` and `POST /api/v1/admin/retention`, one tenant.
    struct Answer: MaintenanceAnswer {
        struct Range: Decodable {
            var ulid: String
            var minTime: Int64
            var maxTime: Int64
        }

        var tenant: String
        var ranges: [Range]

        static let header = ["TENANT", "DROPPED", "ULID", "MIN TIME", "MAX TIME"]

        var rows: [[String]] {
            [[tenant, String(ranges.count), "", "", ""]] + ranges.map { ["", "", $0.ulid, Blocks.List.utc($0.minTime), Blocks.List.utc($0.maxTime)] }
        }
    }

    func validate() throws {
        guard let ms = Serve.milliseconds(keep), ms > 0 else { throw ValidationError("--keep must be a positive duration like 400d") }
    }

    func run() throws {
        let keep = Serve.milliseconds(self.keep)!
        if dryRun {
            var rows = [["TENANT", "ULID", "MIN TIME", "MAX TIME"]]
            for name in try target.tenants() {
                let metas = try BlockCatalog.list(tenantDirectory: target.storage + "/" + name).map(\.meta)
                for meta in RetentionPolicy.expired(metas, keep: keep) {
                    rows.append([name, meta.ulid, Blocks.List.utc(meta.minTime), Blocks.List.utc(meta.maxTime)])
                }
            }
            return Output.write("would drop \(rows.count - 1) blocks\n" + Table.render(rows))
        }
        try target.run("apply retention", Answer.self, serverPath: { "/api/v1/admin/retention?tenant=\($0)&keep=\(self.keep)" }) { db in
            RetentionPolicy.json(try db.applyRetention(keep: keep), tenant: db.tenant, by: "this process")
        }
    }
}
