import ArgumentParser
import TallyStorage

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write tenants' data as it is now into <storage>/<tenant>/snapshots/<name>/.",
        discussion: """
        Blocks are hard-linked and the head is written as blocks (unless --skip-head), so the directory is a \
        data directory that promtool and Prometheus read: copy it elsewhere for a backup, then remove it. \
        Tally never removes a snapshot. With a running server on the storage, that server (found through \
        <storage>/.server) is asked (POST /api/v1/admin/tsdb/snapshot).
        """)

    @OptionGroup var target: MaintenanceTarget

    @Flag(help: "Leave the head out: the blocks alone.")
    var skipHead = false

    /// `tally snapshot --json` and `POST /api/v1/admin/tsdb/snapshot` for one tenant: Prometheus'
    /// answer, which names the snapshot but not the tenant.
    struct Answer: MaintenanceAnswer {
        struct Snapshot: Decodable { var name: String }

        var data: Snapshot

        static let header = ["TENANT", "SNAPSHOT"]

        var rows: [[String]] { [["", data.name]] }

        func rows(tenant: String) -> [[String]] { [[tenant, data.name]] }
    }

    func run() throws {
        try target.run("snapshot", Answer.self, serverPath: { "/api/v1/admin/tsdb/snapshot?tenant=\($0)&skip_head=\(skipHead)" }) { db in
            // The name holds digits, letters and dashes only: nothing to escape.
            let name = TenantDatabase.snapshotName()
            try db.snapshot(name: name, includingHead: !skipHead)
            return #"{"status":"success","data":{"name":""# + name + #""}}"#
        }
    }
}
