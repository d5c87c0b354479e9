import Foundation
import TallyStorage
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
    }
}
