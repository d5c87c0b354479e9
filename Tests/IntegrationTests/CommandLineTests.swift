import Foundation
import TallyLoad
import XCTest

/// Small promises of the command line: a version, Prometheus' duration units including `y`, and
/// `--listen :PORT` for every interface.
final class CommandLineTests: XCTestCase {
    func testVersionYearDurationsAndListenOnEveryInterface() throws {
        let version = try runCommand(Binaries.tally, ["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, version.stdout)

        let storage = try makeTemporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: storage) }
        try FileManager.default.createDirectory(atPath: storage + "/acme/wal", withIntermediateDirectories: true)
        let keep = try runCommand(Binaries.tally, ["retention", "--storage", storage, "--tenant", "acme", "--keep", "1y", "--dry-run"])
        XCTAssertEqual(keep.status, 0, keep.stderr)

        let server = try TallyServerProcess(storage: storage + "/served", extraArguments: ["--listen", ":0"])
        defer { server.stop(SIGTERM) }
        XCTAssertTrue(server.log.contains("address=0.0.0.0:\(server.port)"), server.log)
        let bound = server.port
        let metrics = try LoopbackHTTP(port: bound).request("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains("tally_build_info{version=\"\(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\"} 1"), metrics.body)
    }
}
