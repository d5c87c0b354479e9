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
        let deadline = Date().addingTimeInterval(30)
        var port: Int?
        while port == nil && Date() < deadline {
            port = server.log.range(of: #"address=0\.0\.0\.0:(\d+)"#, options: .regularExpression)
                .flatMap { Int(server.log[$0].split(separator: ":").last ?? "") }
            if port == nil { usleep(20_000) }
        }
        let bound = try XCTUnwrap(port, "the server logs the address it listens on: \(server.log)")
        let metrics = try LoopbackHTTP(port: bound).request("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains("tally_build_info{version=\"\(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\"} 1"), metrics.body)
    }
}
