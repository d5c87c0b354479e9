import Foundation
import XCTest

/// docs/deploy/tally.service: systemd accepts it, and it starts `tally serve` with flags the binary has.
final class DeployUnitTests: XCTestCase {
    private static let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/deploy/tally.service").standardized.path
    private static let installedBinary = "/usr/local/bin/tally"

    /// `systemd-analyze verify` also requires ExecStart's binary to exist, so it checks a copy that
    /// starts the binary under test instead of the installed path; the rest is verified as shipped.
    func testUnitVerifiesAndNamesOnlyFlagsTallyServeHas() throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyze) else {
            throw TestEnvironmentFailure(description: "\(analyze) is missing: `make deps` installs Debian's systemd")
        }
        let shipped = try String(contentsOfFile: Self.unit, encoding: .utf8)
        XCTAssertTrue(shipped.contains("ExecStart=\(Self.installedBinary) serve"), shipped)
        let directory = try makeTemporaryDirectory("deploy")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let copy = directory + "/tally.service"
        try shipped.replacingOccurrences(of: "ExecStart=\(Self.installedBinary) ", with: "ExecStart=\(Binaries.tally) ")
            .write(toFile: copy, atomically: true, encoding: .utf8)
        let verify = try runCommand(analyze, ["verify", copy])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertEqual(verify.stdout + verify.stderr, "", "systemd-analyze verify has remarks")

        let help = try runCommand(Binaries.tally, ["serve", "--help"])
        XCTAssertEqual(help.status, 0, help.stderr)
        // ExecStart= with its continuation lines (ending in a backslash).
        let lines = shipped.split(separator: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("ExecStart=") })
        let end = try XCTUnwrap(lines[start...].firstIndex { !$0.hasSuffix("\\") })
        let flags = lines[start...end].joined(separator: " ").split(whereSeparator: \.isWhitespace).filter { $0.hasPrefix("--") }
        for flag in ["--listen", "--storage", "--auth.config-file", "--tls.cert-file", "--tls.key-file"] {
            XCTAssertTrue(flags.contains(Substring(flag)), "\(flag) in the unit")
        }
        for flag in flags { XCTAssertTrue(help.stdout.contains(flag + " "), "tally serve --help has no \(flag)") }
    }
}
