import Foundation
import TallyLoad
import XCTest

/// What the operator commands print: the same table and JSON whether this process or the storage's
/// server did the work, a progress bar on a terminal, plain progress lines when asked, and nothing
/// but the output on stdout.
final class CommandOutputTests: XCTestCase {
    let stores = StoreFixture()

    /// The JSON lines with what legitimately differs between two runs removed: who did the work
    /// and the ULIDs of newly written blocks.
    private func figures(_ json: String, newBlocks: Set<String>) -> String {
        var text = json.replacingOccurrences(of: "\"by\":\"the server\"", with: "\"by\":\"*\"")
            .replacingOccurrences(of: "\"by\":\"this process\"", with: "\"by\":\"*\"")
        for ulid in newBlocks { text = text.replacingOccurrences(of: ulid, with: "NEW") }
        return text
    }

    private func tally(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Binaries.tally, arguments, timeout: 300)
    }

    func testTheServerAndThisProcessPrintTheSameTableAndJSON() throws {
        let root = try makeTemporaryDirectory("output")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let up = try stores.makeStore(root)
        let down = root + "/copy"
        try FileManager.default.copyItem(atPath: up, toPath: down)
        let original = Set(try stores.blocks(up).compactMap { $0["ulid"] as? String })
        let server = try TallyServerProcess(storage: up, extraArguments: ["--compaction-interval", "0s"])
        try server.waitReady()
        let day = utcDate(stores.dataset.start + 86_400_000)
        let runs: [[String]] = [
            ["delete-series", "--tenant", "acme", "--match", "{__name__=\"node_gpu_count\"}", "--start", day, "--end", day, "--dry-run"],
            ["delete-series", "--tenant", "acme", "--match", "{__name__=\"node_gpu_count\"}", "--start", day, "--end", day],
            ["retention", "--tenant", "acme", "--keep", "1d"],
            ["compact", "--tenant", "acme"],
        ]
        for (k, run) in runs.enumerated() {
            // The dry run is asked for as a table and as JSON; the others change data, so once.
            let formats = k == 0 ? [[], ["--json"]] : [["--json"]]
            for format in formats {
                let byServer = try tally(run + format + ["--storage", up])
                let byThisProcess = try tally(run + format + ["--storage", down])
                XCTAssertEqual(byServer.status, 0, byServer.stderr)
                XCTAssertEqual(byThisProcess.status, 0, byThisProcess.stderr)
                let newBlocks = Set(try stores.blocks(up).compactMap { $0["ulid"] as? String } + stores.blocks(down).compactMap { $0["ulid"] as? String })
                    .subtracting(original)
                if format.isEmpty {
                    XCTAssertTrue(byServer.stdout.hasPrefix("\(up) is held by a running server"), byServer.stdout)
                    XCTAssertTrue(byThisProcess.stdout.hasPrefix("No server holds \(down)"), byThisProcess.stdout)
                    XCTAssertEqual(byServer.stdout.split(separator: "\n").dropFirst(), byThisProcess.stdout.split(separator: "\n").dropFirst())
                    XCTAssertTrue(byServer.stdout.contains("(dry run) total"), byServer.stdout)
                } else {
                    XCTAssertTrue(byServer.stdout.hasPrefix("{\"tenant\":\"acme\",\"by\":\"the server\""), byServer.stdout)
                    XCTAssertEqual(figures(byServer.stdout, newBlocks: newBlocks), figures(byThisProcess.stdout, newBlocks: newBlocks), "\(run)")
                }
            }
        }
        server.stop(SIGTERM)
    }

    func testLongCommandsShowProgressOnATerminalAndAsPlainLines() throws {
        let root = try makeTemporaryDirectory("progress")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let source = root + "/import"
        let block = try XCTUnwrap(stores.blocks(storage).first?["ulid"] as? String)
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: storage + "/acme/" + block, toPath: source + "/" + block)
        let selected = ["--storage", storage, "--tenant", "acme"]
        let commands: [(title: String, arguments: [String])] = [
            ("verify", ["blocks", "verify"] + selected),
            ("analyze", ["analyze"] + selected),
            ("count what delete-series would delete", ["delete-series"] + selected + ["--match", "{__name__=\"node_gpu_count\"}", "--dry-run"]),
            ("apply retention", ["retention"] + selected + ["--keep", "2d"]),
            ("compact", ["compact"] + selected),
            ("import", ["import", "blocks", source, "--storage", storage, "--tenant", "restored"]),
            ("costs daily", ["costs", "daily"] + selected + ["--from", utcDate(stores.dataset.start), "--to", utcDate(stores.dataset.start + 2 * 86_400_000)]),
            ("costs allocation", ["costs", "allocation"] + selected + ["--from", utcDate(stores.dataset.start), "--to", utcDate(stores.dataset.start + 2 * 86_400_000)]),
        ]
        for (title, arguments) in commands {
            // On a terminal (util-linux `script` runs the command on a pty): a bar redrawn in place.
            let line = ([Binaries.tally] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            let onTerminal = try runCommand("/usr/bin/script", ["-qec", line, "/dev/null"], timeout: 300)
            XCTAssertEqual(onTerminal.status, 0, onTerminal.stdout)
            XCTAssertTrue(onTerminal.stdout.contains("\r\(title) [") && onTerminal.stdout.contains("#"), "\(title): \(onTerminal.stdout)")
            let quiet = try runCommand("/usr/bin/script", ["-qec", line + " --progress=none", "/dev/null"], timeout: 300)
            XCTAssertFalse(quiet.stdout.contains("\r\(title) ["), "\(title): \(quiet.stdout)")

            // In a pipe: nothing on stderr by default, one line per step with --progress=plain.
            let piped = try tally(arguments)
            XCTAssertEqual(piped.status, 0, piped.stderr)
            XCTAssertEqual(piped.stderr, "", title)
            let plain = try tally(arguments + ["--progress=plain"])
            XCTAssertEqual(plain.status, 0, plain.stderr)
            XCTAssertTrue(plain.stderr.contains("\(title): 1/"), "\(title): \(plain.stderr)")
            XCTAssertEqual(plain.stdout.components(separatedBy: "\n").count, piped.stdout.components(separatedBy: "\n").count, "stdout keeps only the output")
        }
    }
}
