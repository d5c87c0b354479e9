import Foundation
import TallyLoad
import TallyWire
import XCTest

/// Small promises of the command line: a version, Prometheus' duration units including `y`,
/// `--listen :PORT` for every interface, and each rough edge an operator met, with the message
/// they need.
final class CommandLineTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("cli-edges")
        try FileManager.default.createDirectory(atPath: root + "/storage/acme/wal", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func tally(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Binaries.tally, arguments)
    }

    /// Exit 64 (bad arguments) with exactly this reason and the usage of the command itself.
    private func assertRefused(_ arguments: [String], saying reason: String, usage: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try tally(arguments)
        XCTAssertEqual(r.status, 64, r.stdout + r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("Error: " + reason + "\n"), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains("Usage: tally " + usage + " "), r.stderr, file: file, line: line)
    }

    func testAMisspelledOptionIsNamedWithTheOneMeant() throws {
        for command in [["compact"], ["blocks", "ls"], ["blocks", "verify"], ["analyze"], ["retention", "--keep", "1d"], ["delete-series", "--match", "m"]] {
            try assertRefused(command + ["--storage", root + "/storage", "--tennant", "acme"],
                              saying: "Unknown option '--tennant'. Did you mean '--tenant'?", usage: command.prefix { !$0.hasPrefix("-") }.joined(separator: " "))
        }
        try assertRefused(["compact", "--storage", root + "/storage"], saying: "name the tenant to work on with --tenant T, or --all-tenants", usage: "compact")
    }

    func testReversedDatesNameBothDates() throws {
        let storage = ["--storage", root + "/storage", "--tenant", "acme"]
        try assertRefused(["costs", "daily", "--from", "2026-11-30", "--to", "2026-11-01"] + storage,
                          saying: "--from 2026-11-30 is after --to 2026-11-01", usage: "costs daily")
        try assertRefused(["costs", "allocation", "--from", "2026-11-30", "--to", "2026-11-01"] + storage,
                          saying: "--from 2026-11-30 is after --to 2026-11-01", usage: "costs allocation")
        try assertRefused(["delete-series", "--match", "m", "--start", "2026-12-02", "--end", "2026-12-01"] + storage,
                          saying: "--start 2026-12-02 is after --end 2026-12-01", usage: "delete-series")
        try assertRefused(["delete-series", "--match", "m", "--start", "yesterday"] + storage,
                          saying: "--start yesterday: expected YYYY-MM-DD, RFC 3339 or Unix seconds", usage: "delete-series")
    }

    func testEveryTimeTakesADayRFC3339OrUnixSeconds() throws {
        let storage = ["--storage", root + "/storage", "--tenant", "acme"]
        for (start, end) in [("2026-12-01", "2026-12-01"), ("2026-12-01T00:00:00Z", "2026-12-01T23:59:59.999Z"), ("1796083200", "1796169599.999")] {
            let r = try tally(["delete-series", "--match", "{__name__=\"m\"}", "--start", start, "--end", end, "--dry-run"] + storage)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("(dry run) total"), r.stdout)
            let costs = try tally(["costs", "daily", "--from", start, "--to", end, "--format", "json"] + storage)
            XCTAssertEqual(costs.status, 0, costs.stderr)
        }
        // Values that start with a minus sign are values, not options: a west offset, times before 1970.
        let west = try tally(["costs", "daily", "--from", "2026-12-01", "--to", "2026-12-01", "--tz", "-08:00", "--format", "json"] + storage)
        XCTAssertEqual(west.status, 0, west.stderr)
        let early = try tally(["delete-series", "--match", "{__name__=\"m\"}", "--start", "-86400", "--end", "-1", "--dry-run"] + storage)
        XCTAssertEqual(early.status, 0, early.stderr)
        let before1970 = try tally(["query", "time()", "--time", "-1.5"] + storage)
        XCTAssertEqual(before1970.status, 0, before1970.stderr)
        XCTAssertTrue(before1970.stdout.contains("-1.5"), before1970.stdout)
        for keep in ["1y", "8w", "400d", "36h", "90m", "1d12h", "1h30m"] {
            let r = try tally(["retention", "--keep", keep, "--dry-run"] + storage)
            XCTAssertEqual(r.status, 0, "\(keep): \(r.stderr)")
        }
        try assertRefused(["retention", "--keep", "1mo"] + storage, saying: "--keep must be a positive duration like 400d", usage: "retention")
    }

    /// Numbers past what they can mean are refused up front: each of these crashed the command, or
    /// the server at its first write.
    func testNumbersPastTheirRangeAreRefusedUpFront() throws {
        let serve = ["serve", "--storage", root + "/new", "--listen", "127.0.0.1:0"]
        try assertRefused(serve + ["--wal-sync", "interval", "--wal-sync-interval-ms=9223372036854775807"],
                          saying: "--wal-sync-interval-ms must be from 1 to 86400000 (a day)", usage: "serve")
        try assertRefused(serve + ["--block-range=99999999999d"], saying: "--block-range must be a whole number of minutes from 1m to 31d (e.g. 2h)", usage: "serve")
        for bytes in ["0", "-1", "9223372036854775807"] {
            try assertRefused(serve + ["--wal-segment-bytes=" + bytes], saying: "--wal-segment-bytes must be from 65536 (64 KiB) to 1073741824 (1 GiB)", usage: "serve")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/new"), "nothing created")
        try assertRefused(["analyze", "--storage", root + "/storage", "--tenant", "acme", "--limit=-1"], saying: "--limit must be 0 or more", usage: "analyze")
        for url in ["http://127.0.0.1:65536", "http://127.0.0.1:", "http://127.0.0.1:99999999999999999999", "http://127.0.0.1:0"] {
            try assertRefused(["query", "1", "--server", url, "--tenant", "acme"], saying: "--server \(url): the port must be 1-65535", usage: "query")
        }
    }

    /// A tenant directory that is a symbolic link is never written through: named, it is refused;
    /// among all tenants, it is not one.
    func testATenantThatIsASymbolicLinkIsNeverWrittenThrough() throws {
        let outside = root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/storage/linked", withDestinationPath: outside)
        for command in [["compact"], ["retention", "--keep", "1d"], ["delete-series", "--match", "{__name__=\"m\"}"], ["snapshot"]] {
            let r = try tally(command + ["--storage", root + "/storage", "--tenant", "linked"])
            XCTAssertEqual(r.status, 1, "\(command): \(r.stdout)\(r.stderr)")
            XCTAssertTrue(r.stderr.contains("linked is a symbolic link: a tenant's directory must be in the storage itself"), r.stderr)
        }
        // A tenant whose wal/ is a link (to a faster disk) is a tenant.
        try FileManager.default.createDirectory(atPath: root + "/storage/fastwal", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/wal-disk", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/storage/fastwal/wal", withDestinationPath: root + "/wal-disk")
        let fast = try tally(["compact", "--storage", root + "/storage", "--tenant", "fastwal"])
        XCTAssertEqual(fast.status, 0, fast.stderr)
        let all = try tally(["compact", "--storage", root + "/storage", "--all-tenants", "--dry-run"])
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertTrue(all.stdout.contains("fastwal") && !all.stdout.contains("linked"), all.stdout)
        // But never into the storage beside it: two tenants would share one WAL and read each other's.
        try FileManager.default.createDirectory(atPath: root + "/storage/plain/wal", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/storage/borrower", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/storage/borrower/wal", withDestinationPath: root + "/storage/plain/wal")
        for command in [["dump"], ["compact"]] {
            let borrowed = try tally(command + ["--storage", root + "/storage", "--tenant", "borrower"])
            XCTAssertEqual(borrowed.status, 1, "\(command): \(borrowed.stdout)")
            XCTAssertTrue(borrowed.stderr.contains("borrower/wal: a symbolic link, which is not followed inside the storage"), "\(command): \(borrowed.stderr)")
        }
        try FileManager.default.removeItem(atPath: root + "/storage/borrower")
        try FileManager.default.removeItem(atPath: root + "/storage/plain")
        let server = try TallyServerProcess(storage: root + "/storage")
        try server.waitReady()
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: 1_796_083_200_000, valueBits: 1.0.bitPattern)])
        let write = try server.client.request("POST", "/api/v1/write", headers: [("THANOS-TENANT", "linked"), ("Content-Encoding", "snappy"),
                                                                                 ("Content-Type", "application/x-protobuf")], body: encoder.compressed())
        XCTAssertEqual(write.status, 400, write.body)
        XCTAssertTrue(write.body.contains("names something in the storage root that is not a tenant"), write.body)
        server.stop(SIGTERM)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), [], "nothing written outside the storage")
    }

    /// A root given by mistake (a home directory, `/`) has no tenants: only directories with a
    /// `wal/` are tenants, so nothing is written into the others.
    func testOnlyDirectoriesWithAWALAreTenants() throws {
        let mistaken = root + "/home"
        for directory in ["etc/ssh", "user/.config"] {
            try FileManager.default.createDirectory(atPath: mistaken + "/" + directory, withIntermediateDirectories: true)
        }
        let all = try tally(["compact", "--storage", mistaken, "--all-tenants"])
        XCTAssertEqual(all.status, 0, all.stderr)
        let named = try tally(["compact", "--storage", mistaken, "--tenant", "etc"])
        XCTAssertEqual(named.status, 1, named.stdout)
        XCTAssertTrue(named.stderr.contains("\(mistaken)/etc holds no wal/ and no block: not a tenant's directory"), named.stderr)
        for directory in ["etc", "etc/ssh", "user", "user/.config"] {
            let made = try FileManager.default.contentsOfDirectory(atPath: mistaken + "/" + directory).filter { $0 != "ssh" && $0 != ".config" }
            XCTAssertEqual(made, [], "nothing written into \(directory)")
        }
    }

    /// A file the server cannot load is named with its flag; a bad tenant in the limits file is quoted.
    func testFilesThatDoNotLoadAreNamed() throws {
        let serve = ["serve", "--storage", root + "/storage", "--listen", "127.0.0.1:0"]
        let tls = try tally(serve + ["--tls.cert-file", root + "/missing.pem", "--tls.key-file", root + "/missing.key"])
        XCTAssertNotEqual(tls.status, 0)
        XCTAssertTrue(tls.stderr.contains("--tls.cert-file \(root)/missing.pem: not a PEM file this server can load"), tls.stderr)
        try "tenants:\n  \"../x\":\n    ingestion_rate: 5\n".write(toFile: root + "/limits.yml", atomically: true, encoding: .utf8)
        let limits = try tally(serve + ["--limits.config-file", root + "/limits.yml"])
        XCTAssertNotEqual(limits.status, 0)
        XCTAssertTrue(limits.stderr.contains("tenants: \"../x\" is not a valid tenant id"), limits.stderr)
    }

    func testListenAddressesAreCheckedBeforeAnythingIsCreated() throws {
        for listen in ["no-such-host.invalid:9201", "127.0.0.1:65536", "127.0.0.1", ":x"] {
            let storage = root + "/never"
            let r = try tally(["serve", "--listen", listen, "--storage", storage])
            XCTAssertEqual(r.status, 64, "\(listen): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("Error: --listen \(listen): "), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: storage), "\(listen) created the storage")
        }
        // An address another server holds: refused before the storage is created.
        let holder = try TallyServerProcess(storage: root + "/holder")
        defer { holder.stop(SIGTERM) }
        let taken = try tally(["serve", "--listen", "127.0.0.1:\(holder.port)", "--storage", root + "/never"])
        XCTAssertNotEqual(taken.status, 0, taken.stderr)
        XCTAssertTrue((taken.stdout + taken.stderr).contains("in use"), taken.stdout + taken.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/never"), "a taken address created the storage")
    }

    /// A store whose tenant `acme` holds one node priced and sized from 2026-11-13 00:00 until a
    /// staleness marker at 00:10:30 (10.5 covered minutes), 24 samples of 2 series, all in the head.
    private func storeWithOneNode() throws -> String {
        let storage = root + "/costs"
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s"])
        try server.waitReady()
        let start: Int64 = 1_794_528_000_000  // 2026-11-13T00:00:00Z
        var encoder = WriteRequestEncoder()
        let node = [("cluster_id", "c1"), ("instance", "n1"), ("node", "n1")]
        for (name, value) in [("node_cpu_hourly_cost", 0.04), ("kube_node_status_capacity_cpu_cores", 4.0)] {
            let samples = (0...10).map { WireSample(timestamp: start + Int64($0) * 60_000, valueBits: value.bitPattern) }
                + [WireSample(timestamp: start + 630_000, valueBits: 0x7ff0_0000_0000_0002)]
            encoder.addSeries(labels: [("__name__", name)] + node, samples: samples)
        }
        try push([encoder.compressed()], to: server.client, headers: [("THANOS-TENANT", "acme")])
        server.stop(SIGTERM)
        return storage
    }

    func testBlocksLsCountsWhatIsInTheHeadAndTheWAL() throws {
        let storage = try storeWithOneNode()
        let r = try tally(["blocks", "ls", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\n0 blocks, 0 samples, 0.0KiB\nhead: 2 series; WAL: 24 samples in 1 segment(s), "), r.stdout)
    }

    func testCoveredMinutesPrintWithTheirFraction() throws {
        let storage = try storeWithOneNode()
        let r = try tally(["costs", "daily", "--storage", storage, "--tenant", "acme", "--from", "2026-11-13", "--to", "2026-11-13"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let row = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("c1 ") }, r.stdout)
        XCTAssertEqual(row.split(separator: " ").dropLast().last, "10.5", String(row))
    }

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
