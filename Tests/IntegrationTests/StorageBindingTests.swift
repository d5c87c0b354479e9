import Foundation
import TallyLoad
import XCTest

/// Two servers on one host, each with its own storage: every command run against one storage acts
/// on that storage only, whether it does the work itself or asks the storage's server, and a
/// mistyped storage fails and creates nothing.
final class StorageBindingTests: XCTestCase {
    let stores = StoreFixture()

    /// Every file under `root` with its bytes.
    private func contents(_ root: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for path in filesUnder(root) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[path] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + path))
            }
        }
        return files
    }

    private func assertUntouched(_ root: String, _ before: [String: Data], _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let after = try contents(root)
        XCTAssertEqual(Set(after.keys), Set(before.keys), "\(context): files of \(root) added or removed", file: file, line: line)
        for (path, bytes) in before where after[path] != bytes {
            XCTFail("\(context): \(root)/\(path) changed", file: file, line: line)
        }
    }

    private func tally(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Binaries.tally, arguments, timeout: 300)
    }

    func testEveryCommandActsOnTheStorageItNamesOnly() throws {
        let root = try makeTemporaryDirectory("binding")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/b", withIntermediateDirectories: true)
        let storages = [try stores.makeStore(root + "/a"), try stores.makeStore(root + "/b")]
        let servers = try storages.map { try TallyServerProcess(storage: $0, extraArguments: ["--compaction-interval", "0s"]) }
        for server in servers { try server.waitReady() }
        let day = utcDate(stores.dataset.start + 86_400_000)

        for (i, storage) in storages.enumerated() {
            let other = storages[1 - i]
            let otherBefore = try contents(other)
            XCTAssertTrue(otherBefore.keys.contains { $0.hasSuffix("/meta.json") } && otherBefore.keys.contains { $0.hasPrefix("acme/wal/") },
                          "the other store's blocks and WAL are compared: \(otherBefore.keys.sorted())")
            let announced = try String(contentsOfFile: storage + "/.server", encoding: .utf8)
            XCTAssertTrue(announced.contains("\"port\":\(servers[i].port)") && announced.contains("\"pid\":\(servers[i].process.processIdentifier)"), announced)
            let source = root + "/import-\(i)"
            let block = try XCTUnwrap(stores.blocks(storage).first?["ulid"] as? String)
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: storage + "/acme/" + block, toPath: source + "/" + block)
            let blocksBefore = try stores.blocks(storage).count
            let selected = ["--storage", storage, "--tenant", "acme"]
            let commands: [[String]] = [
                ["blocks", "ls"] + selected, ["blocks", "verify"] + selected, ["analyze"] + selected,
                ["dump"] + selected + ["--match", "{__name__=\"node_cpu_hourly_cost\"}"],
                ["costs", "daily"] + selected + ["--from", day, "--to", day],
                ["delete-series"] + selected + ["--match", "{__name__=\"node_gpu_count\"}", "--dry-run"],
                ["delete-series"] + selected + ["--match", "{__name__=\"node_gpu_count\"}", "--start", day, "--end", day],
                ["compact"] + selected, ["retention"] + selected + ["--keep", "1d"],
                ["import", "blocks", source, "--storage", storage, "--tenant", "restored"],
            ]
            for command in commands {
                let r = try tally(command)
                XCTAssertEqual(r.status, 0, "\(command): \(r.stdout) \(r.stderr)")
                if ["compact", "retention", "delete-series"].contains(command[0]) {
                    XCTAssertTrue(r.stdout.contains("held by a running server (pid \(servers[i].process.processIdentifier), 127.0.0.1:\(servers[i].port))"),
                                  "\(command): \(r.stdout)")
                }
                try assertUntouched(other, otherBefore, "\(command.joined(separator: " "))")
            }
            // The server picks up the imported tenant on its next scan (it opens it, making its
            // read lease): waited for, so the next round compares a store at rest.
            XCTAssertTrue(waitUntil(seconds: 30) { servers[i].log.contains("opened tenant restored") }, servers[i].log)
            // The commands did act on their own storage.
            XCTAssertLessThan(try stores.blocks(storage).count, blocksBefore)
            XCTAssertTrue(FileManager.default.fileExists(atPath: storage + "/restored/" + block))
            XCTAssertFalse(try tallyDump(storage: storage, tenant: "acme", match: "{__name__=\"node_gpu_count\"}").isEmpty, "other days are kept")
            let dayStart = stores.dataset.start + 86_400_000
            let deletedDay = try tally(["dump"] + selected + ["--match", "{__name__=\"node_gpu_count\"}",
                                                              "--min-time", String(dayStart), "--max-time", String(dayStart + 86_400_000 - 1)])
            XCTAssertEqual(deletedDay.status, 0, deletedDay.stderr)
            XCTAssertEqual(deletedDay.stdout, "", "delete-series --start \(day) --end \(day) deleted that whole day")

            // A port is never enough: naming the other server's port is refused before anything is done.
            let wrongPort = try tally(["compact", "--storage", storage, "--tenant", "acme", "--server-port", String(servers[1 - i].port)])
            XCTAssertEqual(wrongPort.status, 1, wrongPort.stdout)
            XCTAssertTrue(wrongPort.stderr.contains("does not serve"), wrongPort.stderr)
            try assertUntouched(other, otherBefore, "--server-port of the other server")
        }

        // A mistyped storage: exit 1 with the reason, and nothing is created.
        let typo = root + "/storag"
        let everywhere: [[String]] = [
            ["blocks", "ls"], ["blocks", "verify"], ["analyze"], ["compact"], ["compact", "--dry-run"], ["retention", "--keep", "1d"],
            ["retention", "--keep", "1d", "--dry-run"], ["delete-series", "--match", "{job=\"x\"}"], ["delete-series", "--match", "{job=\"x\"}", "--dry-run"],
            ["dump"], ["costs", "daily", "--from", day, "--to", day], ["costs", "allocation", "--from", day, "--to", day],
            ["import", "blocks", root + "/import-0"],
        ]
        for command in everywhere {
            let r = try tally(command + ["--storage", typo, "--tenant", "acme"])
            XCTAssertEqual(r.status, 1, "\(command): \(r.stdout) \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("no storage at \(typo)"), "\(command): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: typo), "\(command) created \(typo)")
        }
        // A missing tenant is an error for every command too.
        for command in everywhere {
            let r = try tally(command + ["--storage", storages[0], "--tenant", "nobody"])
            XCTAssertEqual(r.status, command[0] == "import" ? 0 : 1, "\(command): \(r.stdout) \(r.stderr)")
        }

        // A clean stop withdraws the announcement; a killed server leaves it, and the next command
        // finds the lock free and does the work itself.
        servers[0].stop(SIGTERM)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storages[0] + "/.server"))
        kill(servers[1].process.processIdentifier, SIGKILL)
        servers[1].process.waitUntilExit()
        XCTAssertTrue(FileManager.default.fileExists(atPath: storages[1] + "/.server"))
        let afterKill = try tally(["compact", "--storage", storages[1], "--tenant", "acme"])
        XCTAssertEqual(afterKill.status, 0, afterKill.stderr)
        XCTAssertTrue(afterKill.stdout.hasPrefix("No server holds \(storages[1]); this process did the work."), afterKill.stdout)
    }
}
