import ArgumentParser
import Foundation
import TallyCost
import TallyStorage

struct Blocks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect a tenant's blocks.",
        subcommands: [List.self, Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every block of a tenant: checksums, index invariants, chunks, meta.json against the contents.",
            discussion: "Reports problems with the block and the section; never repairs or deletes. Exits 1 if any block fails.")

        @OptionGroup var selection: TenantSelection

        @OptionGroup var progress: ProgressOption

        func run() throws {
            var rows = [["TENANT", "ULID", "RESULT"]]
            var lines = ""
            var failures = 0
            let blocks = try selection.tenants().flatMap { name in
                try BlockCatalog.names(tenantDirectory: selection.storage + "/" + name).map { (name, $0) }
            }
            let meter = progress.meter("verify", total: blocks.count, unit: "blocks")
            for (name, ulid) in blocks {
                let directory = selection.storage + "/" + name + "/" + ulid
                var result = "ok"
                do { try BlockVerifier.verify(directory: directory) } catch {
                    // A compaction on a live server may remove a block while it is read.
                    if FileManager.default.fileExists(atPath: directory) {
                        failures += 1
                        result = "FAILED \(error)"
                    } else {
                        result = "removed while verifying (compacted or dropped)"
                    }
                }
                rows.append([name, ulid, result])
                lines += "{\"tenant\":\"\(name)\",\"ulid\":\"\(ulid)\",\"ok\":\(result == "ok" || !result.hasPrefix("FAILED")),\"result\":\(Self.quoted(result))}\n"
                meter.advance("\(name)/\(ulid)")
            }
            meter.finish()
            Output.write(selection.json ? lines : Table.render(rows) + "\(rows.count - 1) blocks, \(failures) failed\n")
            if failures > 0 { throw ExitCode.failure }
        }

        static func quoted(_ s: String) -> String {
            String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "List tenants' blocks: ULID, time range, compaction level, series, samples, chunks, size.")

        @OptionGroup var selection: TenantSelection

        func run() throws {
            let tenants = try selection.tenants()
            if selection.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                struct Row: Encodable { let tenant: String; let meta: BlockMeta; let bytes: Int }
                let rows = try tenants.flatMap { tenant in
                    try BlockCatalog.list(tenantDirectory: selection.storage + "/" + tenant).map { Row(tenant: tenant, meta: $0.meta, bytes: $0.bytes) }
                }
                Output.write(String(decoding: try encoder.encode(rows), as: UTF8.self) + "\n")
                return
            }
            for tenant in tenants {
                let blocks = try BlockCatalog.list(tenantDirectory: selection.storage + "/" + tenant)
                if tenants.count > 1 { Output.write("Tenant \(tenant):\n") }
                var rows = [["ULID", "MIN TIME", "MAX TIME", "DURATION", "LEVEL", "SERIES", "SAMPLES", "CHUNKS", "SIZE"]]
                for b in blocks {
                    let m = b.meta
                    rows.append([m.ulid, Self.utc(m.minTime), Self.utc(m.maxTime), Self.duration(m.maxTime - m.minTime),
                                 String(m.compaction.level), String(m.stats.numSeries), String(m.stats.numSamples),
                                 String(m.stats.numChunks), Self.bytes(b.bytes)])
                }
                Output.write(Table.render(rows))
                // meta.json's counts are whatever the file says: a total past 2^64 is shown as such, not trapped on.
                let samples = blocks.reduce(into: (total: UInt64(0), over: false)) { sum, block in
                    let (total, overflow) = sum.total.addingReportingOverflow(block.meta.stats.numSamples)
                    sum = overflow ? (.max, true) : (total, sum.over)
                }
                Output.write("\(blocks.count) blocks, \(samples.over ? "over \(UInt64.max)" : String(samples.total)) samples, \(Self.bytes(blocks.reduce(0) { $0 + $1.bytes }))\n")
                Output.write(try Self.headAndWAL(selection.storage + "/" + tenant, tenant: tenant) + "\n")
            }
        }

        /// What is not in blocks yet: the head's series and the WAL's samples, segments and size,
        /// so a young tenant with no block does not read as empty.
        static func headAndWAL(_ directory: String, tenant: String) throws -> String {
            let db = try TenantDatabase.open(directory: directory, tenant: tenant, readOnly: true)
            let replay = db.replay
            var walBytes = 0
            let wal = directory + "/wal"
            for file in FileManager.default.enumerator(atPath: wal)?.allObjects as? [String] ?? [] {
                // Segments and checkpoint segments; a directory's own size is not data.
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: wal + "/" + file),
                      attributes[.type] as? FileAttributeType == .typeRegular, let size = attributes[.size] as? Int else { continue }
                walBytes += size
            }
            return "head: \(replay.series) series; WAL: \(replay.samples) samples in \(replay.segments) segment(s), \(bytes(walBytes))"
        }

        /// RFC 3339 in UTC with milliseconds; a year before 1 keeps its sign.
        static func utc(_ ms: Int64) -> String { CostReport.timestamp(ms, 0, milliseconds: true) }

        static func duration(_ ms: Int64) -> String {
            let seconds = ms / 1000
            return "\(seconds / 3600)h\(twoDigits(seconds / 60 % 60))m\(twoDigits(seconds % 60))s"
        }

        static func bytes(_ n: Int) -> String {
            n < 1 << 20 ? String(format: "%.1fKiB", Double(n) / 1024) : String(format: "%.1fMiB", Double(n) / 1048576)
        }
    }
}

/// Left-aligned text columns separated by two spaces.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let width = rows.first?.count else { return "" }
        let widths = (0..<width).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            // Only trailing blanks go: continuation rows start with empty cells that keep the columns.
            String(row.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").reversed().drop { $0 == " " }.reversed())
        }.joined(separator: "\n") + "\n"
    }
}
