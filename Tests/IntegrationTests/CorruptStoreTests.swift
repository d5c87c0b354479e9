import Foundation
import TallyStorage
import TallyWire
import XCTest

/// The commands over a store with corrupt block bytes: they name the block and the section, read
/// everything else, exit 1, and never crash.
final class CorruptStoreTests: XCTestCase {
    let stores = StoreFixture()

    func testDumpSkipsACorruptChunkPrintsTheRestAndFails() throws {
        let root = try makeTemporaryDirectory("corrupt-chunk")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let before = try tallyDump(storage: storage, tenant: "acme").split(separator: "\n").map(String.init)

        let block = try XCTUnwrap(try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted().dropFirst().first)
        let reader = try BlockReader(directory: storage + "/acme/" + block)
        let (pairs, chunks) = try reader.series(reader.seriesRefs[0])
        let chunk = try XCTUnwrap(chunks.first)
        XCTAssertEqual(chunk.ref >> 32, 0)
        let path = storage + "/acme/" + block + "/chunks/000001"
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        // A byte of the chunk's data (past its length varint and encoding byte).
        bytes[Int(chunk.ref & 0xffff_ffff) + 4] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))

        let r = try runCommand(Binaries.tally, ["dump", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("block \(block): chunks/000001:"), r.stderr)
        let series = Labels(pairs.map { Label($0.0, $0.1) }).description + " "
        let lost = before.filter { line in
            guard line.hasPrefix(series), let t = line.split(separator: " ").last.flatMap({ Int64($0) }) else { return false }
            return chunk.minTime <= t && t <= chunk.maxTime
        }
        XCTAssertFalse(lost.isEmpty)
        // Every other sample, the rest of that series' included, is printed.
        XCTAssertEqual(r.stdout.split(separator: "\n").map(String.init), before.filter { !lost.contains($0) })
    }

    /// A corrupt chunk of a price series: the cost API and `tally costs` still answer, say what they
    /// left out (JSON `warnings`, `Tally-Warning` headers; stderr and exit 1), and keep no rollup of
    /// the day, so the numbers come back whole once the block is replaced.
    func testCostsLeaveOutACorruptChunkFlagTheAnswerAndStoreNoRollup() throws {
        let root = try makeTemporaryDirectory("corrupt-costs")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let block = try XCTUnwrap(try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted().dropFirst(2).first)
        let reader = try BlockReader(directory: storage + "/acme/" + block)
        var target: ChunkMeta?
        for ref in reader.seriesRefs {
            let (pairs, chunks) = try reader.series(ref)
            if pairs.contains(where: { $0 == ("__name__", "node_ram_hourly_cost") }) { target = chunks.first; break }
        }
        let chunk = try XCTUnwrap(target)
        let day = utcDate(chunk.minTime)
        let path = storage + "/acme/" + block + "/chunks/000001"
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        bytes[Int(chunk.ref & 0xffff_ffff) + 4] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))

        let cli = try runCommand(Binaries.tally, ["costs", "daily", "--storage", storage, "--tenant", "acme", "--from", day, "--to", day, "--format", "json"])
        XCTAssertEqual(cli.status, 1, cli.stderr)
        XCTAssertTrue(cli.stderr.contains("left out unreadable data") && cli.stderr.contains(block), cli.stderr)
        XCTAssertTrue(cli.stdout.contains("\"rows\":[{"), "the rest of the day is still answered: \(cli.stdout)")

        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s"])
        defer { server.stop(SIGTERM) }
        try server.waitReady()
        let answer = try server.client.request("GET", "/api/v1/costs/daily?start=\(day)&end=\(day)", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(answer.status, 200, answer.body)
        XCTAssertTrue(answer.body.hasPrefix("{\"warnings\":[\"left out unreadable data"), answer.body)
        XCTAssertNotNil(answer.headers["tally-warning"], "\(answer.headers)")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.bytes)) as? [String: Any])
        XCTAssertEqual((json["rows"] as? [Any])?.isEmpty, false)
        let file = FileManager.default.contents(atPath: storage + "/acme/rollups/daily+00:00.json") ?? Data("{}".utf8)
        let kept = ((try JSONSerialization.jsonObject(with: file) as? [String: Any])?["days"] as? [String: Any])?.keys.map { $0 } ?? []
        XCTAssertFalse(kept.contains(String(chunk.minTime / 86_400_000)), "no rollup of a day read with data left out: \(kept)")
    }

    func testVerifyAndDumpNameABlockWithACorruptTOCWithoutCrashing() throws {
        let root = try makeTemporaryDirectory("corrupt-toc")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let block = try XCTUnwrap(try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted().first)
        let path = storage + "/acme/" + block + "/index"
        let pristine = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let tocStart = pristine.count - 52

        for fixChecksum in [false, true] {
            var bytes = pristine
            // The top byte of the symbols offset: past any file, and past Int.max.
            bytes[tocStart] = 0xFF
            if fixChecksum {
                let checksum = CRC32C.checksum(Array(bytes[tocStart..<bytes.count - 4]))
                for k in 0..<4 { bytes[bytes.count - 4 + k] = UInt8(truncatingIfNeeded: checksum >> (24 - 8 * k)) }
            }
            try bytes.write(to: URL(fileURLWithPath: path))

            let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
            XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
            let line = try XCTUnwrap(verify.stdout.split(separator: "\n").first { $0.contains(block) }, verify.stdout)
            XCTAssertTrue(line.contains("FAILED") && line.contains("index TOC"), String(line))
            XCTAssertTrue(verify.stdout.contains(", 1 failed"), verify.stdout)

            let dump = try runCommand(Binaries.tally, ["dump", "--storage", storage, "--tenant", "acme"])
            XCTAssertEqual(dump.status, 1, dump.stderr)
            XCTAssertTrue(dump.stderr.contains("block \(block) not loaded") && dump.stderr.contains("index TOC"), dump.stderr)
            XCTAssertFalse(dump.stdout.isEmpty)

            try FileManager.default.createDirectory(atPath: root + "/other", withIntermediateDirectories: true)
            let imported = try runCommand(Binaries.tally, ["import", "blocks", storage + "/acme/" + block, "--storage", root + "/other", "--tenant", "acme"])
            XCTAssertEqual(imported.status, 1, imported.stdout + imported.stderr)
            XCTAssertTrue((imported.stdout + imported.stderr).contains("index TOC"), imported.stdout + imported.stderr)
        }

        // A meta.json that does not parse fails its own row; every other block is still verified.
        let other = try XCTUnwrap(try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted().last)
        try Data("{\"ulid\": ".utf8).write(to: URL(fileURLWithPath: storage + "/acme/" + other + "/meta.json"))
        let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        let line = try XCTUnwrap(verify.stdout.split(separator: "\n").first { $0.contains(other) }, verify.stdout)
        XCTAssertTrue(line.contains("FAILED") && line.contains("meta.json"), String(line))
        XCTAssertTrue(verify.stdout.contains(", 2 failed"), verify.stdout)

        // A block that does not load is in no compaction plan: a child could be written over it.
        // When its meta.json cannot say its time (`other`), nothing is merged; the run names it and fails.
        let directories = { try FileManager.default.contentsOfDirectory(atPath: storage + "/acme").sorted() }
        let before = try directories()
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(compact.status, 1, compact.stdout + compact.stderr)
        XCTAssertTrue(compact.stderr.contains("not loaded") && compact.stderr.contains(other) && compact.stderr.contains("time range is unknown"),
                      compact.stderr)
        XCTAssertEqual(try directories(), before)
    }

    /// A compaction level no compactor writes (the next compaction adds one to it) is corruption:
    /// verify and import refuse it, and compaction leaves the block alone instead of trapping.
    /// Sets `meta.json`'s `section.key` in block directory `block`.
    private func setMeta(_ block: String, _ section: String, _ key: String, to value: Any) throws {
        let path = block + "/meta.json"
        var meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var inner = try XCTUnwrap(meta[section] as? [String: Any])
        inner[key] = value
        meta[section] = inner
        try JSONSerialization.data(withJSONObject: meta).write(to: URL(fileURLWithPath: path))
    }

    func testAnImpossibleCompactionLevelIsRefusedNotOverflowed() throws {
        let root = try makeTemporaryDirectory("corrupt-level")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let block = try XCTUnwrap(try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted().first)
        try setMeta(storage + "/acme/" + block, "compaction", "level", to: Int.max)

        let verify = try runCommand(Binaries.tally, ["blocks", "verify", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        let line = try XCTUnwrap(verify.stdout.split(separator: "\n").first { $0.contains(block) }, verify.stdout)
        XCTAssertTrue(line.contains("compaction level"), String(line))
        let compact = try runCommand(Binaries.tally, ["compact", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(compact.status, 1, compact.stdout + compact.stderr)
        XCTAssertTrue(compact.stderr.contains(block), compact.stderr)
        try FileManager.default.createDirectory(atPath: root + "/other", withIntermediateDirectories: true)
        let imported = try runCommand(Binaries.tally, ["import", "blocks", storage + "/acme/" + block, "--storage", root + "/other", "--tenant", "acme"])
        XCTAssertEqual(imported.status, 1, imported.stdout + imported.stderr)
        XCTAssertTrue((imported.stdout + imported.stderr).contains("compaction level"), imported.stdout + imported.stderr)
    }
    /// Numbers on disk past what arithmetic holds are refused or shown, never trapped on: sample
    /// counts in `meta.json` that sum past 2^64 (`blocks ls`), and a WAL segment numbered 2^63-1
    /// (every command that reads the WAL, and the server).
    func testHugeNumbersOnDiskAreNamedNotTrappedOn() throws {
        let root = try makeTemporaryDirectory("corrupt-numbers")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let blocks = try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted()
        for block in blocks.prefix(2) { try setMeta(storage + "/acme/" + block, "stats", "numSamples", to: UInt64.max) }
        let ls = try runCommand(Binaries.tally, ["blocks", "ls", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(ls.status, 0, ls.stdout + ls.stderr)
        XCTAssertTrue(ls.stdout.contains("over \(UInt64.max) samples"), ls.stdout)

        let wal = storage + "/acme/wal"
        let last = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: wal).filter { $0.allSatisfy(\.isNumber) }.sorted().last)
        try FileManager.default.copyItem(atPath: wal + "/" + last, toPath: wal + "/9223372036854775807")
        for command in [["dump"], ["blocks", "ls"], ["query", "up"]] {
            let r = try runCommand(Binaries.tally, command + ["--storage", storage, "--tenant", "acme"])
            XCTAssertEqual(r.status, 1, "\(command): \(r.stdout) \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("WAL segment number past 2147483647: \(wal)/9223372036854775807"), "\(command): \(r.stderr)")
        }
        let server = try TallyServerProcess(storage: storage)
        defer { server.stop(SIGKILL) }
        XCTAssertTrue(waitUntil(seconds: 30) { !server.process.isRunning || server.log.contains("9223372036854775807") }, server.log)
        XCTAssertFalse(server.log.contains("Fatal error"), server.log)
    }

    /// A FIFO put where a file of the storage belongs is refused, naming it, not waited on: opening
    /// one for reading blocks until a writer comes, which would hang every command and the server.
    func testAFIFOInPlaceOfAFileIsRefusedNotWaitedOn() throws {
        let root = try makeTemporaryDirectory("corrupt-fifo")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let block = try XCTUnwrap(try stores.blocks(storage).compactMap { $0["ulid"] as? String }.sorted().first)
        let meta = storage + "/acme/" + block + "/meta.json"
        try FileManager.default.removeItem(atPath: meta)
        XCTAssertEqual(mkfifo(meta, 0o644), 0)
        for command in [["blocks", "verify"], ["blocks", "ls"], ["dump"]] {
            let started = Date()
            let r = try runCommand(Binaries.tally, command + ["--storage", storage, "--tenant", "acme"], timeout: 60)
            XCTAssertLessThan(Date().timeIntervalSince(started), 30, "\(command) waited on the FIFO")
            XCTAssertEqual(r.status, 1, "\(command): \(r.stdout) \(r.stderr)")
            XCTAssertTrue((r.stdout + r.stderr).contains("\(block)/meta.json: not a regular file"), "\(command): \(r.stdout) \(r.stderr)")
        }
    }

    /// A block directory that does not load is data the answers lack: every answer that could have
    /// held its samples says so (PromQL, series, labels, costs, the CLI), answers elsewhere in time
    /// do not, and once the block loads (mended, at the next block scan) the warning goes.
    func testAnswersOverABlockThatDidNotLoadSayItsSamplesAreLeftOut() throws {
        let root = try makeTemporaryDirectory("unloaded-answers")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try stores.makeStore(root)
        let metas = try stores.blocks(storage).sorted { ($0["minTime"] as? Int64 ?? 0) < ($1["minTime"] as? Int64 ?? 0) }
        XCTAssertGreaterThan(metas.count, 3)
        let broken = metas[metas.count / 2], earlier = metas[0]
        let block = try XCTUnwrap(broken["ulid"] as? String)
        let (minTime, maxTime) = (try XCTUnwrap(broken["minTime"] as? Int64), try XCTUnwrap(broken["maxTime"] as? Int64))
        let earlierEnd = try XCTUnwrap(earlier["maxTime"] as? Int64)
        XCTAssertLessThanOrEqual(earlierEnd, minTime)
        let path = storage + "/acme/" + block + "/index"
        let pristine = try XCTUnwrap(FileManager.default.contents(atPath: path))
        var bytes = pristine
        bytes[bytes.count - 52] = 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))

        let span = { (lo: Int64, hi: Int64) in "start=\(lo / 1000)&end=\((hi - 1) / 1000)" }
        let range = "/api/v1/query_range?query=count(%7B__name__%3D~%22.%2B%22%7D)&step=600&"
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--compaction-interval", "0s"])
        defer { server.stop(SIGTERM) }
        try server.waitReady()
        func warnings(_ path: String) throws -> [String] {
            let answer = try server.client.request("GET", path, headers: [("THANOS-TENANT", "acme")])
            XCTAssertEqual(answer.status, 200, "\(path): \(answer.body)")
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.bytes)) as? [String: Any], answer.body)
            return json["warnings"] as? [String] ?? []
        }
        let over = span(minTime, maxTime)
        for path in [range + over, "/api/v1/series?match[]=%7Bjob%3D~%22.%2B%22%7D&" + over, "/api/v1/labels?" + over,
                     "/api/v1/label/__name__/values?" + over, "/api/v1/costs/daily?start=\(utcDate(minTime))&end=\(utcDate(minTime))"] {
            let said = try warnings(path)
            XCTAssertTrue(said.contains { $0.contains("block \(block), for [\(minTime), \(maxTime)) ms,") && $0.contains("left out") && $0.contains("index TOC") },
                          "\(path): \(said)")
        }
        XCTAssertEqual(try warnings(range + span(earlier["minTime"] as? Int64 ?? 0, earlierEnd)), [], "an answer before the block lacks nothing")

        let cli = try runCommand(Binaries.tally, ["query", "range", "count({__name__=~\".+\"})", "--storage", storage, "--tenant", "acme",
                                                  "--start", "\(minTime / 1000)", "--end", "\((maxTime - 1) / 1000)", "--step", "600"])
        XCTAssertTrue(cli.stderr.contains("tally query: warning: block \(block)"), cli.stderr)

        // Mended, the block loads at the next scan (every 5 s) and the answers are whole again.
        try pristine.write(to: URL(fileURLWithPath: path))
        var said = try warnings(range + over)
        for _ in 0..<60 where !said.isEmpty {
            Thread.sleep(forTimeInterval: 0.25)
            said = try warnings(range + over)
        }
        XCTAssertEqual(said, [], "no warning once the block is loaded")
    }
    /// WAL records that cannot be read leave their samples out of the head: `tally dump` prints the
    /// rest, names the segment and exits 1. The same store read before the damage exits 0.
    func testDumpFailsWhenWALRecordsAreLeftOut() throws {
        let root = try makeTemporaryDirectory("corrupt-wal-dump")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        let server = try TallyServerProcess(storage: storage)
        try server.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for name in ["first", "second", "third", "fourth"] {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", name)], samples: (0..<20).map { WireSample(timestamp: now - Int64(20 - $0) * 1000, valueBits: Double($0).bitPattern) })
            try push([encoder.compressed()], to: server.client, headers: [("THANOS-TENANT", "acme")])
        }
        server.stop(SIGKILL)
        let dumpArguments = ["dump", "--storage", storage, "--tenant", "acme"]
        let whole = try runCommand(Binaries.tally, dumpArguments)
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertTrue(whole.stdout.contains("fourth"), whole.stdout)

        let wal = storage + "/acme/wal"
        let segment = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: wal).sorted().last)
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: wal + "/" + segment))
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: wal + "/" + segment))
        let damaged = try runCommand(Binaries.tally, dumpArguments)
        XCTAssertEqual(damaged.status, 1, damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains("wal/" + segment), damaged.stderr)
        XCTAssertTrue(damaged.stdout.contains("first") && !damaged.stdout.contains("fourth"), damaged.stdout)
    }

    /// Samples whose Series records were in a WAL file now gone are left out, and the WAL is named
    /// as the reason: not a bare count.
    func testSamplesWhoseSeriesRecordsAreLostAreNamed() throws {
        let root = try makeTemporaryDirectory("orphan-samples")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = root + "/storage"
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--wal-segment-bytes", "65536"])
        try server.waitReady()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var generator = SystemRandomNumberGenerator()
        func request(_ name: String, _ count: Int, from start: Int64) -> [UInt8] {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", name)],
                              samples: (0..<count).map { WireSample(timestamp: start + Int64($0), valueBits: generator.next() >> 2) })
            return encoder.compressed()
        }
        try push([request("orphaned", 5, from: now - 60_000), request("filler", 20_000, from: now - 50_000),
                  request("orphaned", 5, from: now - 10_000)], to: server.client, headers: [("THANOS-TENANT", "acme")])
        server.stop(SIGKILL)
        let wal = storage + "/acme/wal"
        let segments = try FileManager.default.contentsOfDirectory(atPath: wal).filter { $0.allSatisfy(\.isNumber) }.sorted()
        XCTAssertGreaterThan(segments.count, 1, "the filler fills a segment")
        try FileManager.default.removeItem(atPath: wal + "/" + segments[0])
        let dump = try runCommand(Binaries.tally, ["dump", "--storage", storage, "--tenant", "acme"])
        XCTAssertEqual(dump.status, 1, dump.stderr)
        XCTAssertTrue(dump.stderr.contains("samples name series that no Series record defines, left out: a segment before them lost or damaged"),
                      dump.stderr)
    }
}
