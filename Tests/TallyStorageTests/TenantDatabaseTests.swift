import TallyTestSupport
import Synchronization
import XCTest
@testable import TallyStorage

final class TenantDatabaseTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try temporaryDirectory() + "/tenant" }

    private func contents(_ db: TenantDatabase) throws -> [String: [UInt64]] {
        var out: [String: [UInt64]] = [:]
        for s in try db.select([try LabelMatcher("__name__", .regex, ".+")]) {
            out[s.labels["__name__"]!] = s.samples.map { UInt64($0.timestamp) << 32 ^ $0.valueBits }
        }
        return out
    }

    func testVerdictsAndReplayAfterCleanClose() throws {
        var db = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try appendSamples(db, "a", [(10, 1), (20, 2), (20, 2), (20, 3), (15, 1), (10, 1), (15, 1), (15, 2), (30, 0x7ff0_0000_0000_0002)]),
                       [.accepted, .accepted, .duplicate, .conflict, .accepted, .duplicate, .duplicate, .conflict, .accepted])
        try appendSamples(db, "b", (0..<500).map { (Int64($0) * 15_000, UInt64($0)) })
        let before = try contents(db)
        XCTAssertEqual(before["a"]?.count, 4, "the late sample at 15 is stored in order of time")
        try db.close()
        db = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(db.replay.problems, [])
        XCTAssertEqual(try contents(db), before)
        // After a restart, a new sample goes on where the replayed series ended.
        XCTAssertEqual(try appendSamples(db, "a", [(30, 0x7ff0_0000_0000_0002), (40, 4)]), [.duplicate, .accepted])
        try db.close()
        // The first close wrote the late sample as an out-of-order block; the second then had to
        // write the in-order data below that block's end, so Prometheus readers see all of it.
        let final = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(final.blockMetas.map { $0.compaction.hints ?? [] }, [[], ["from-out-of-order"]])
        XCTAssertEqual(try contents(final)["a"]?.count, 5)
    }

    func testTornTailIsCutQuarantinedAndPadded() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try appendSamples(db, "a", [(1, 1), (2, 2)])
        try appendSamples(db, "a", [(3, 3), (4, 4)])
        let complete = try contents(db)
        try appendSamples(db, "a", [(5, 5)])
        // Simulate a crash: the last record is cut short and followed by garbage.
        let segment = directory + "/wal/00000000"
        var bytes = try FileSystem.readFile(segment)
        let end = bytes.lastIndex { $0 != 0 }! + 1
        bytes = Array(bytes[..<(end - 3)]) + [0xde, 0xad]
        try FileSystem.writeFile(segment, bytes)

        let readOnly = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(try contents(readOnly), complete)
        XCTAssertEqual(try FileSystem.readFile(segment), bytes, "a read-only open changes nothing")

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened), complete)
        XCTAssertEqual(reopened.replay.problems.count, 1)
        XCTAssertTrue(reopened.replay.problems[0].contains("00000000"), reopened.replay.problems[0])
        let repaired = try FileSystem.readFile(segment)
        XCTAssertEqual(repaired.count, WALFormat.pageSize, "cut, then padded to a whole page")
        let quarantined = try FileSystem.listDirectory(directory + "/wal-quarantine")
        XCTAssertEqual(quarantined.count, 1)
        let cut = try FileSystem.readFile(directory + "/wal-quarantine/" + quarantined[0])
        XCTAssertEqual(Array(repaired.prefix { _ in true }[..<(bytes.count - cut.count)]), Array(bytes[..<(bytes.count - cut.count)]))
        XCTAssertEqual(cut.suffix(2), [0xde, 0xad], "the cut bytes are kept, not deleted")
        try appendSamples(reopened, "a", [(5, 5)])
        try reopened.close()
        XCTAssertEqual(try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true).replay.problems, [])
    }

    func testCorruptionInAnEarlierSegmentIsReportedAndLeftAlone() throws {
        var db = try TenantDatabase.open(directory: directory, tenant: "t")
        try appendSamples(db, "a", [(1, 1)])
        try appendSamples(db, "a", [(2, 2)])
        try db.close()
        db = try TenantDatabase.open(directory: directory, tenant: "t")
        try appendSamples(db, "b", [(1, 1)])
        try db.close()
        let first = directory + "/wal/00000000"
        var bytes = try FileSystem.readFile(first)
        bytes[bytes.lastIndex { $0 != 0 }!] ^= 0xff     // a bit flip in the last record of segment 0
        try FileSystem.writeFile(first, bytes)
        db = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(db.replay.problems.count, 1)
        XCTAssertTrue(db.replay.problems[0].contains("checksum"), db.replay.problems[0])
        XCTAssertEqual(try FileSystem.readFile(first), bytes, "never rewritten")
        let stored = try contents(db)
        XCTAssertEqual(stored["a"]?.count, 1, "read up to the fault")
        XCTAssertEqual(stored["b"]?.count, 1, "later segments still read")
    }

    /// Acknowledged records lost from a segment before the last are named as lost: a segment missing
    /// between others, and one cut short after it was finished (only the last can be torn by a crash).
    func testALostOrCutEarlierSegmentIsNamedAsLoss() throws {
        for damage in ["missing", "cut"] {
            try? FileManager.default.removeItem(atPath: directory)
            var db = try TenantDatabase.open(directory: directory, tenant: "t")
            for name in ["a", "b", "c"] {
                try appendSamples(db, name, [(1, 1), (2, 2)])
                try db.close()
                db = try TenantDatabase.open(directory: directory, tenant: "t")
            }
            try db.close()
            let middle = directory + "/wal/00000001"
            if damage == "missing" {
                try FileManager.default.removeItem(atPath: middle)
            } else {
                let bytes = try FileSystem.readFile(middle)
                try FileSystem.writeFile(middle, Array(bytes[..<(bytes.lastIndex { $0 != 0 }! - 3)]))
            }
            db = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
            let expected = damage == "missing" ? "segment 00000001 missing before 00000002; its records are lost" : "of a segment that was finished; the rest are lost"
            XCTAssertTrue(db.replay.problems.contains { $0.contains(expected) }, "\(damage): \(db.replay.problems)")
            XCTAssertGreaterThan(db.replay.leftOut, 0, damage)
            XCTAssertEqual(try contents(db)["c"]?.count, 2, "\(damage): later segments still read")
        }
    }

    func testFailedWALWriteLeavesNothingBehind() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try appendSamples(db, "a", [(1, 1)])
        let segment = directory + "/wal/00000000"
        let size = try FileSystem.readFile(segment).count
        // The process may grow no file past its current size: the next WAL write fails with EFBIG.
        signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &old)
        var limit = rlimit(rlim_cur: rlim_t(size + 10), rlim_max: old.rlim_max)
        setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit)
        XCTAssertThrowsError(try appendSamples(db, "a", (2..<200).map { (Int64($0), UInt64($0)) }))
        setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &old)
        XCTAssertEqual(try FileSystem.readFile(segment).count, size, "truncated back")
        XCTAssertEqual(try contents(db)["a"]?.count, 1, "nothing of the failed batch is visible")
        XCTAssertEqual(try appendSamples(db, "a", [(2, 2)]), [.accepted], "the failed samples were never taken")
        try db.close()
        let replayed = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(replayed.replay.problems, [])
        XCTAssertEqual(try contents(replayed)["a"]?.count, 2)
    }

    /// Requests that write while a sync runs share the next one: the first sync is held until seven
    /// more requests have written and wait; then one further sync answers all seven.
    func testGroupCommitSharesSyncs() throws {
        let syncs = Atomic<Int>(0)
        let firstSyncRunning = DispatchSemaphore(value: 0), releaseFirstSync = DispatchSemaphore(value: 0)
        // The observer runs after each fdatasync, before the requests it covers are answered.
        let db = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(observeSync: { _ in
            guard syncs.add(1, ordering: .relaxed).newValue == 1 else { return }
            firstSyncRunning.signal()
            _ = releaseFirstSync.wait(timeout: .now() + 30)
        }))
        let answered = DispatchGroup()
        func request(_ name: String) throws {
            let (_, commit) = try appendSamplesNotWaiting(db, name, [(1, 1)])
            answered.enter()
            db.whenDurable(commit.position) { error in
                XCTAssertNil(error)
                answered.leave()
            }
        }
        try request("first")
        XCTAssertEqual(firstSyncRunning.wait(timeout: .now() + 10), .success, "the first request starts a sync")
        for k in 0..<7 { try request("w\(k)") }
        releaseFirstSync.signal()
        XCTAssertEqual(answered.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(syncs.load(ordering: .relaxed), 2, "one sync for the first request, one shared by the seven written during it")
        XCTAssertEqual(try contents(db).count, 8)
    }

    func testLateSamplesInsideTheWindowAreKeptAndOlderOnesRefused() throws {
        let hour: Int64 = 3_600_000
        var db = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(outOfOrderWindow: 2 * hour))
        try appendSamples(db, "a", [(10 * hour, 1)])
        // Late, in any order, within 2h of the newest sample; one beyond it.
        XCTAssertEqual(try appendSamples(db, "a", [(9 * hour, 2), (8 * hour + 1, 3), (9 * hour + 5, 4), (8 * hour - 1, 5)]),
                       [.accepted, .accepted, .accepted, .tooOld])
        // A new series may start anywhere: it has no newest sample to be late against.
        XCTAssertEqual(try appendSamples(db, "b", [(1, 6)]), [.accepted])
        let expected = try contents(db)
        let a = try db.select([try LabelMatcher("__name__", .equal, "a")]).first
        XCTAssertEqual(a?.samples.map(\.timestamp), [8 * hour + 1, 9 * hour, 9 * hour + 5, 10 * hour])
        try db.close()
        db = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(outOfOrderWindow: 2 * hour))
        XCTAssertEqual(try contents(db), expected, "replay routes late samples as they were routed")
        XCTAssertEqual(try appendSamples(db, "a", [(9 * hour, 2), (9 * hour, 7)]), [.duplicate, .conflict])
        try db.close()

        let strict = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(outOfOrderWindow: 0))
        XCTAssertEqual(try appendSamples(strict, "a", [(9 * hour + 7, 8)]), [.outOfOrder])
    }

    func testLateSampleMemoryIsBoundedByFlushingBlocks() throws {
        let hour: Int64 = 3_600_000
        let bound = 16 * 1024
        let db = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(outOfOrderMaxBytes: bound))
        for s in 0..<50 { try appendSamples(db, "s\(s)", [(20 * hour, 1)]) }
        var peak = 0
        // 50 series x 400 late samples, in batches of 500; past the bound, a background flush writes
        // them to a block. Each batch waits for the flush it made due, so each starts under the bound.
        for batch in 0..<40 {
            for s in 0..<50 {
                try appendSamples(db, "s\(s)", (0..<10).map { i in (19 * hour - Int64(batch * 10 + i) * 1000, UInt64(batch * 10 + i)) })
            }
            peak = max(peak, db.outOfOrderBytes)
            let deadline = Date().addingTimeInterval(30)
            while db.outOfOrderBytes > bound && Date() < deadline { usleep(1_000) }
            XCTAssertLessThanOrEqual(db.outOfOrderBytes, bound, "batch \(batch): a flush brings late-sample memory back under its bound")
        }
        try db.close()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        let lateBlocks = reopened.blockMetas.filter { $0.compaction.hints == ["from-out-of-order"] }
        XCTAssertGreaterThan(lateBlocks.count, 2, "flushed more than once")
        XCTAssertEqual(try contents(reopened).values.map(\.count).reduce(0, +), 50 * 401)
        // A batch of 500 late samples takes less than the bound, and each starts under it.
        XCTAssertLessThan(peak, 2 * bound, "late-sample memory passes its bound by at most one batch")
        print("late samples: peak \(peak) bytes for a bound of \(bound), \(lateBlocks.count) flushes")
    }

    /// `seriesLabels` reads only chunk metas, and gives exactly the label sets `select` gives: over
    /// blocks and the head, with tombstones that cover whole chunks or parts, a block without any
    /// (whose metas a window covering it need not walk), late samples, and windows that start and
    /// end anywhere. Several matcher sets give the union of what each gives.
    func testSeriesLabelsAgreeWithSelect() throws {
        let hour: Int64 = 3_600_000
        let parent = String(directory.dropLast("/tenant".count))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A block of three series over [0, 2h), chunks of 40 minutes, and one of two of them and a
        // third series over [2h, 3h), chunks of 20 minutes.
        func series(_ k: Int, _ name: String = "b", from start: Int, minutes: Int = 40) -> BlockSeries {
            BlockSeries(labels: [("__name__", name), ("k", String(k))], chunks: (0..<3).map { c in
                var chunk = XORChunk()
                let times = (0..<minutes).map { Int64(start + c * minutes + $0) * 60_000 }
                for t in times { chunk.append(timestamp: t, valueBits: Double(t).bitPattern) }
                return EncodedChunk(minTime: times[0], maxTime: times[times.count - 1], bytes: chunk.bytes)
            })
        }
        _ = try BlockWriter.write(series: (0..<3).map { series($0, from: 0) }, minTime: 0, maxTime: 2 * hour, into: directory, tenant: "t")
        let later = [series(1, from: 120, minutes: 20), series(2, from: 120, minutes: 20), series(3, "c", from: 120, minutes: 20)].sorted { Labels($0.labels.map { Label($0.0, $0.1) }) < Labels($1.labels.map { Label($0.0, $0.1) }) }
        _ = try BlockWriter.write(series: later, minTime: 2 * hour, maxTime: 3 * hour, into: directory, tenant: "t")
        let db = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(outOfOrderWindow: 2 * hour))
        defer {
            try? db.close()
            try? FileSystem.removeTree(parent)
        }
        try appendSamples(db, "h", (0..<200).map { (3 * hour + Int64($0) * 60_000, UInt64($0)) })
        try appendSamples(db, "late", [(5 * hour, 1)])
        try appendSamples(db, "late", [(4 * hour, 2)])
        // Whole chunks of b{k="0"}, part of one of b{k="1"}, and a stretch of the head's h.
        let deletions: [(String, Int64, Int64)] = [("0", 0, 80 * 60_000 - 1), ("1", 50 * 60_000, 60 * 60_000)]
        for (k, lo, hi) in deletions {
            _ = try db.deleteSeries([[try LabelMatcher("k", .equal, k)]], in: DeletedInterval(minTime: lo, maxTime: hi))
        }
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "h")]], in: DeletedInterval(minTime: 3 * hour, maxTime: 4 * hour))
        let querier = db.querier(minTime: .min, maxTime: .max)
        let matchers = [[try LabelMatcher("__name__", .regex, ".+")], [try LabelMatcher("k", .notEqual, "2")], [try LabelMatcher("__name__", .equal, "late")]]
        let edges: [Int64] = [-1, 0, 39 * 60_000, 40 * 60_000, 79 * 60_000, 80 * 60_000, 2 * hour, 3 * hour - 1, 3 * hour, 4 * hour - 1, 4 * hour, 5 * hour, 7 * hour, .max]
        for lo in edges {
            for hi in edges where hi >= lo {
                var union = Set<Labels>()
                for m in matchers {
                    let selected = try querier.select(m, minTime: lo, maxTime: hi).map(\.labels)
                    XCTAssertEqual(try querier.seriesLabels(m, minTime: lo, maxTime: hi), selected, "\(m) [\(lo), \(hi)]")
                    union.formUnion(selected)
                }
                XCTAssertEqual(try querier.seriesLabels(matchers, minTime: lo, maxTime: hi), union.sorted(), "all sets [\(lo), \(hi)]")
            }
        }
    }

    func testChunksAreCutLikePrometheus() {
        let head = Head()
        let labels = [("__name__", "m")]
        head.restore(ref: 1, labels: labels)
        // 15 s scrapes over 4 h from an aligned start: 480 samples per 2 h range, cut into 4 x 120.
        for i in 0..<960 { head.append(0, timestamp: Int64(i) * 15_000, valueBits: UInt64(i)) }
        var chunks: [(Int64, Int64, Int)] = []
        head.forEachChunk(0) { min, max, bytes in chunks.append((min, max, Int(bytes[0]) << 8 | Int(bytes[1]))) }
        XCTAssertEqual(chunks.map(\.2), [120, 120, 120, 120, 120, 120, 120, 120])
        XCTAssertTrue(chunks.allSatisfy { $0.0 / 7_200_000 == $0.1 / 7_200_000 }, "no chunk crosses a 2 h boundary")
        XCTAssertEqual(head.valueBits(0, at: 15_000 * 500), 500)
        XCTAssertNil(head.valueBits(0, at: 15_000 * 500 + 1))
    }

    /// The map of known encoded label sets finds what was remembered and stays bounded however many
    /// encodings one series arrives in (a sender that orders labels differently each time).
    func testKnownEncodedLabelSetsAreFoundAndBounded() {
        let head = Head(chunkRange: 7_200_000)
        head.restore(ref: 1, labels: [("__name__", "up"), ("job", "a")])
        func bytes(_ i: Int) -> [UInt8] { Array("encoding-\(i)".utf8) }
        for i in 0..<5000 {
            bytes(i).withUnsafeBytes { head.remember(encodedLabels: $0, hash: Head.hash(encodedLabels: $0), series: 0) }
        }
        XCTAssertLessThanOrEqual(head.encodedLabelEntries.count, 1024)
        bytes(4999).withUnsafeBytes { XCTAssertEqual(head.series(encodedLabels: $0, hash: Head.hash(encodedLabels: $0)), 0) }
        bytes(5000).withUnsafeBytes { XCTAssertNil(head.series(encodedLabels: $0, hash: Head.hash(encodedLabels: $0))) }
    }

    /// A series is found by its labels' symbol ids, resolved from raw bytes, only with exactly its
    /// ids in its order, and still after a rebuild drops other series and moves it.
    func testSeriesAreFoundByTheirLabelSymbolIds() {
        let head = Head(chunkRange: 7_200_000)
        head.restore(ref: 1, labels: [("__name__", "up"), ("job", "a")])
        head.restore(ref: 2, labels: [("__name__", "up"), ("job", "b")])
        head.restore(ref: 3, labels: [("__name__", "up"), ("job", "b"), ("zone", "z")])
        func id(_ string: String) -> UInt32? { Array(string.utf8).withUnsafeBytes { head.symbolId(of: $0) } }
        func find(_ labels: [(String, String)]) -> Int32? {
            let ids = labels.flatMap { [id($0.0)!, id($0.1)!] }
            return ids.withUnsafeBufferPointer { head.series(labelIds: $0, hash: Head.hash(labelIds: $0)) }
        }
        XCTAssertNil(id("absent"))
        XCTAssertNil(id("u"), "a prefix of a symbol is not the symbol")
        XCTAssertEqual(find([("__name__", "up"), ("job", "b")]), 1)
        XCTAssertEqual(find([("__name__", "up"), ("job", "b"), ("zone", "z")]), 2)
        XCTAssertNil(find([("job", "b"), ("__name__", "up")]), "the same labels in another order")
        XCTAssertNil(find([("__name__", "up"), ("job", "zone")]), "symbols the head holds, a label set it does not")
        XCTAssertNil(find([("__name__", "up")]))
        head.rebuild { $0 != 0 }
        XCTAssertEqual(find([("__name__", "up"), ("job", "b")]), 0)
        XCTAssertEqual(find([("__name__", "up"), ("job", "b"), ("zone", "z")]), 1)
        XCTAssertNil(find([("__name__", "up"), ("job", "a")]), "dropped by the rebuild")
    }

    /// Remembered encodings are found again by their exact bytes only, never for another series,
    /// across the cache's pages; one longer than a page is not remembered.
    func testEncodedLabelsAreFoundByTheirExactBytesOnly() {
        let head = Head(chunkRange: 7_200_000)
        head.restore(ref: 1, labels: [("__name__", "up"), ("job", "a")])
        head.restore(ref: 2, labels: [("__name__", "up"), ("job", "b")])
        func encoded(_ labels: [(String, String)]) -> [UInt8] {
            labels.flatMap { name, value -> [UInt8] in
                let label = [0x0a, UInt8(name.utf8.count)] + Array(name.utf8) + [0x12, UInt8(value.utf8.count)] + Array(value.utf8)
                return [0x0a, UInt8(label.count)] + label
            }
        }
        func remember(_ bytes: [UInt8], _ index: Int32) {
            bytes.withUnsafeBytes { head.remember(encodedLabels: $0, hash: Head.hash(encodedLabels: $0), series: index) }
        }
        func find(_ bytes: [UInt8]) -> Int32? { bytes.withUnsafeBytes { head.series(encodedLabels: $0, hash: Head.hash(encodedLabels: $0)) } }
        let a = encoded([("__name__", "up"), ("job", "a")]), b = encoded([("__name__", "up"), ("job", "b")])
        remember(a, 0)
        XCTAssertEqual(find(a), 0)
        XCTAssertNil(find(b), "never remembered")
        // Series 1's bytes under series 0's key (a hash collision) are compared and refused.
        a.withUnsafeBytes { key in
            b.withUnsafeBytes { XCTAssertNil(head.series(encodedLabels: $0, hash: Head.hash(encodedLabels: key))) }
        }
        remember(b, 1)
        XCTAssertEqual(find(b), 1)
        let truncated = Array(a.dropLast())
        XCTAssertNil(find(truncated), "a prefix of a remembered encoding")
        remember(truncated, 0)
        XCTAssertEqual(find(truncated), 0)
        XCTAssertEqual(find(a), 0)
        // Enough encodings to fill several pages: each is still found, those at page ends too.
        let long = (0..<900).map { i in Array("encoding \(i) ".utf8) + [UInt8](repeating: 0x78, count: 400) }
        for encoding in long { remember(encoding, 1) }
        XCTAssertGreaterThan(head.encodedLabelPages.count, 1)
        XCTAssertTrue(head.encodedLabelPages.allSatisfy { $0.count <= Head.encodedLabelPageBytes })
        XCTAssertEqual(long.filter { find($0) != 1 }.count, 0)
        let overPage = [UInt8](repeating: 0x0a, count: Head.encodedLabelPageBytes + 1)
        remember(overPage, 1)
        XCTAssertNil(find(overPage), "longer than a page: not remembered")
        XCTAssertEqual(head.labelStore.names.count, 3, "one name set: its count and two names")
        XCTAssertEqual(head.labelPairs(1).map(\.1), ["up", "b"])
    }

    /// Series are found by their encoded labels in any order a request brings them: in the order
    /// they were made (each found from the last), shuffled, with new ones between, and never as
    /// another series whose encoding has the same length or sits where the next one is expected.
    func testKnownSeriesAreFoundByTheirEncodingsInAnyOrder() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? db.close() }
        func encoded(_ job: String) -> [UInt8] {
            [("__name__", "up"), ("job", job)].flatMap { name, value -> [UInt8] in
                let label = [0x0a, UInt8(name.utf8.count)] + Array(name.utf8) + [0x12, UInt8(value.utf8.count)] + Array(value.utf8)
                return [0x0a, UInt8(label.count)] + label
            }
        }
        /// Each job's series index, made or found in one batch in the order given; nil for a job
        /// the head does not know.
        func lookUp(_ jobs: [String], creating: Bool = false) throws -> [Int32?] {
            try db.append { batch -> [Int32?] in
                jobs.map { job in
                    let bytes = encoded(job), name = Array("__name__".utf8), up = Array("up".utf8), jobName = Array("job".utf8), value = Array(job.utf8)
                    return bytes.withUnsafeBytes { bytes -> Int32? in
                        switch batch.knownSeries(encodedLabels: bytes) {
                        case let .known(handle): return handle.index
                        case let .unknown(key):
                            guard creating else { return nil }
                            return name.withUnsafeBytes { n in up.withUnsafeBytes { u in jobName.withUnsafeBytes { j in value.withUnsafeBytes { v in
                                [RawLabel(name: n, value: u), RawLabel(name: j, value: v)].withUnsafeBufferPointer {
                                    try! batch.series($0, encodedLabels: bytes, key: key).index
                                }
                            } } } }
                        }
                    }
                }
            }.0
        }
        let jobs = (0..<8).map { "job-\($0)" }
        let made = try lookUp(jobs, creating: true)
        XCTAssertEqual(made, (0..<8).map { Int32($0) })
        XCTAssertEqual(try lookUp(jobs), made, "in the order they were made")
        XCTAssertEqual(try lookUp(jobs.reversed()), made.reversed(), "in the opposite order")
        let shuffled = [3, 4, 0, 7, 1, 2, 6, 5]
        XCTAssertEqual(try lookUp(shuffled.map { jobs[$0] }), shuffled.map { made[$0] })
        // job-x has job-1's length and comes where job-1 is expected (after job-0): unknown, not job-1.
        XCTAssertEqual(try lookUp(["job-0", "job-x", "job-1", "job-2"]), [0, nil, 1, 2])
        XCTAssertEqual(try lookUp(["job-0", "job-x", "job-1", "job-2"], creating: true), [0, 8, 1, 2])
        XCTAssertEqual(try lookUp(["job-x", "job-0", "job-1", "job-2", "job-x"]), [8, 0, 1, 2, 8])
        XCTAssertEqual(try lookUp(["job-7", "job-0"]), [7, 0], "after the last entry but one")
        XCTAssertEqual(try lookUp(["job-x", "job-x"]), [8, 8], "after the last entry")
    }
}

private extension Head {
    /// `restore(ref:labels:)` from strings, as a WAL Series record would give them.
    func restore(ref: UInt64, labels pairs: [(String, String)]) {
        let strings = pairs.flatMap { [Array($0.0.utf8), Array($0.1.utf8)] }
        let bytes = strings.flatMap { $0 }
        bytes.withUnsafeBytes { all in
            var offset = 0
            let slices = strings.map { string in
                defer { offset += string.count }
                return UnsafeRawBufferPointer(rebasing: all[offset..<offset + string.count])
            }
            let labels = stride(from: 0, to: slices.count, by: 2).map { RawLabel(name: slices[$0], value: slices[$0 + 1]) }
            labels.withUnsafeBufferPointer { restore(ref: ref, labels: $0) }
        }
    }
}
