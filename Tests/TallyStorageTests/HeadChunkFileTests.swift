import TallyTestSupport
import XCTest
@testable import TallyStorage

/// The head chunk files (`chunks_head/`): a restart takes closed chunks back from them instead of
/// appending their samples again, and answers exactly as a replay of the WAL alone. A read-only
/// open never reads the files, so it is that replay, the oracle here. The files are a shortcut:
/// stale, torn or corrupt ones cost time, never a sample.
final class HeadChunkFileTests: XCTestCase {
    private var directory = ""
    private static let minute: Int64 = 60_000

    override func setUpWithError() throws { directory = try temporaryDirectory() + "/tenant" }
    override func tearDown() { try? FileSystem.removeTree(directory) }

    private var chunkDirectory: String { directory + "/" + HeadChunkFormat.directoryName }

    /// The chunk files, none before the first chunk is written (which makes the directory).
    private func chunkFiles() throws -> [String] {
        guard FileSystem.isDirectory(chunkDirectory) else { return [] }
        return try FileSystem.listDirectory(chunkDirectory).filter { HeadChunkFormat.sequence(ofFileName: $0) != nil }.sorted()
    }

    /// Every sample of every series, late ones included, as name -> (time, value bits).
    private func contents(_ db: TenantDatabase) throws -> [String: [Sample]] {
        var out: [String: [Sample]] = [:]
        for s in try db.select([try LabelMatcher("__name__", .regex, ".+")]) { out[s.labels["__name__"]!] = s.samples }
        return out
    }

    /// Writes what the chunk writer gathered, once background cuts are done: after this, a test's
    /// "crash" (opening the directory again without closing) leaves these chunks on disk.
    private func flushChunks(_ db: TenantDatabase) {
        db.cutQueue.sync {}
        db.lock.withLock { _ in db.head.chunkWriter?.flush() }
    }

    /// Where each chunk of a head chunk file starts.
    private func chunkOffsets(_ bytes: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var p = HeadChunkFormat.headerSize
        while p + HeadChunkFormat.fixedChunkHeader < bytes.count {
            offsets.append(p)
            var cursor = p + HeadChunkFormat.fixedChunkHeader, length = 0, shift = 0
            while bytes[cursor] >= 0x80 {
                length |= Int(bytes[cursor] & 0x7f) << shift
                shift += 7
                cursor += 1
            }
            length |= Int(bytes[cursor]) << shift
            p = cursor + 1 + length + HeadChunkFormat.checksumSize
        }
        return offsets
    }

    /// What a replay of the WAL alone holds.
    private func walAlone() throws -> [String: [Sample]] {
        try contents(TenantDatabase.open(directory: directory, tenant: "t", readOnly: true))
    }

    /// `series` series of one-minute samples over [start, start + minutes), values with some noise.
    private func fill(_ db: TenantDatabase, series: Int, from start: Int64 = 0, minutes: Int) throws {
        for k in 0..<series {
            try appendSamples(db, "m\(k)", (0..<minutes).map { i in
                let t = start + Int64(i) * Self.minute
                return (t, Double(k * 1000 + Int(t / Self.minute) % 17).bitPattern)
            })
        }
    }

    func testARestartTakesTheChunksBackAndAnswersAsTheWALAlone() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        // Chunks close at the 2-hour range end; the samples after it stay in open chunks.
        try fill(db, series: 40, minutes: 150)
        // Late samples stay out of the chunk files (a clean stop writes them into a block).
        try appendSamples(db, "m3", [(30 * Self.minute + 1, 7), (31 * Self.minute + 1, 8)])
        try db.close()
        let before = try walAlone()
        XCTAssertEqual(before["m3"]?.count, 152)

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertGreaterThan(reopened.replay.headChunks, 0)
        XCTAssertEqual(reopened.replay.problems, [])
        XCTAssertEqual(try contents(reopened), before)
        XCTAssertEqual(reopened.replay.headChunks, 40)
        XCTAssertEqual(reopened.replay.samples, 40 * 150, "samples taken from chunks are counted as replayed")
        // A series goes on where its chunks ended: a resent last sample is a duplicate, a changed
        // one a conflict, and a new one starts a chunk of its own.
        XCTAssertEqual(try appendSamples(reopened, "m5", [(149 * Self.minute, Double(5000 + 149 % 17).bitPattern), (149 * Self.minute, 1), (150 * Self.minute, 2)]),
                       [.duplicate, .conflict, .accepted])
        try reopened.close()
        XCTAssertEqual(try walAlone()["m5"]?.count, 151)
    }

    func testACrashKeepsWhatTheWALHasPastTheWrittenChunks() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try fill(db, series: 30, minutes: 130)
        flushChunks(db)
        // Past the written chunks: only the WAL has these (as after SIGKILL, the writer's buffer is lost).
        try fill(db, series: 30, from: 130 * Self.minute, minutes: 50)
        let expected = try contents(db)
        XCTAssertFalse(try chunkFiles().isEmpty)

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertGreaterThan(reopened.replay.headChunks, 0)
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(try walAlone(), expected)
    }

    func testDeletionsNeverComeBackFromTheChunkFiles() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        // Under 3 hours in all, so no block is cut and the WAL keeps every record.
        try fill(db, series: 6, minutes: 130)
        flushChunks(db)
        XCTAssertFalse(try chunkFiles().isEmpty)
        // Open-ended, middle and leading deletions, then more samples: in order ones inside the
        // open-ended interval (the series' newest time stays, so they are new) and a late one.
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m1")]], in: DeletedInterval(minTime: 100 * Self.minute, maxTime: .max))
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m2")]], in: DeletedInterval(minTime: 20 * Self.minute, maxTime: 70 * Self.minute))
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m3")]], in: DeletedInterval(minTime: 0, maxTime: 125 * Self.minute))
        XCTAssertEqual(try chunkFiles(), [], "a deletion removes the chunk files before it is logged")
        try fill(db, series: 6, from: 130 * Self.minute, minutes: 40)
        try appendSamples(db, "m2", [(30 * Self.minute + 5, 1)])
        flushChunks(db)
        let expected = try contents(db)
        XCTAssertEqual(expected["m1"]?.count, 100 + 40)
        XCTAssertEqual(expected["m2"]?.count, 130 - 51 + 40 + 1)
        XCTAssertEqual(expected["m3"]?.count, 130 - 126 + 40)

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(try walAlone(), expected)
    }

    /// A clean stop writes the late sample into a block and checkpoints the WAL, which drops the
    /// Tombstones record: the restart must find no chunk from before the deletion to take.
    func testADeletionStaysDeletedOnceTheWALForgetsIt() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try fill(db, series: 2, minutes: 130)
        flushChunks(db)
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m1")]], in: DeletedInterval(minTime: 20 * Self.minute, maxTime: 70 * Self.minute))
        try appendSamples(db, "m0", [(30 * Self.minute + 5, 1)])
        let expected = try contents(db)
        XCTAssertEqual(expected["m1"]?.count, 130 - 51)
        try db.close()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(reopened.replay.records, 2, "the checkpoint's Series and Samples records, no Tombstones")
        XCTAssertEqual(try contents(reopened)["m1"]?.count, 130 - 51)
        XCTAssertEqual(try contents(reopened), expected)
    }

    /// No run leaves a chunk that starts at a series' first sample and runs past a later deletion
    /// of it (a deletion removes the files first, and keeps the series' newest time). Should the
    /// files hold one anyway, the series drops what the WAL had not reached at the deletion.
    func testChunksAheadOfADeletionAreCutBackToWhatTheWALReached() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        func value(_ minute: Int) -> UInt64 { Double(2000 + minute % 17).bitPattern }
        try fill(db, series: 3, minutes: 100)
        _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m2")]], in: DeletedInterval(minTime: 20 * Self.minute, maxTime: 70 * Self.minute))
        let expected = try contents(db)
        XCTAssertEqual(expected["m2"]?.count, 100 - 51)
        // A chunk of m2 as it was before the deletion, over the first two hours.
        let ref = db.head.ref(try XCTUnwrap(db.head.select([try LabelMatcher("__name__", .equal, "m2")]).first))
        var chunk = XORChunk()
        for minute in 0..<120 { chunk.append(timestamp: Int64(minute) * Self.minute, valueBits: value(minute)) }
        let writer = HeadChunkWriter(directory: chunkDirectory, existing: [:])
        writer.append(ref: ref, minTime: 0, maxTime: 119 * Self.minute, chunk.bytes)
        writer.sync()

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(reopened.replay.headChunks, 1, "taken, then cut back at the deletion")
        XCTAssertEqual(try contents(reopened)["m2"]?.count, 100 - 51, "nothing the WAL had not reached at the deletion")
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(try walAlone(), expected)
    }

    /// A request's floats are logged before its histograms, and a checkpoint logs every float before
    /// any histogram: the WAL's order is not always the order the head applied samples in. A float
    /// that was late behind a histogram comes before it in the WAL, and must still be kept.
    func testSamplesLoggedInAnotherOrderThanAppliedAreKept() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        var h = IntegerHistogram()
        h.count = 1
        h.positiveSpans = [HistogramSpan(offset: 0, length: 1)]
        h.positiveBuckets = [1]
        let name = Array("__name__".utf8), value = Array("s".utf8)
        let (verdicts, commit) = try name.withUnsafeBytes { n in
            try value.withUnsafeBytes { v in
                try db.append { batch -> [SampleVerdict] in
                    let handle = [RawLabel(name: n, value: v)].withUnsafeBufferPointer { try! batch.series($0) }
                    return [batch.add(handle, timestamp: 1 * Self.minute, valueBits: 1),
                            batch.add(handle, timestamp: 2 * Self.minute, histogram: .integer(h)),
                            batch.add(handle, timestamp: 90_000, valueBits: 2)]
                }
            }
        }
        waitDurable(db, commit)
        XCTAssertEqual(verdicts, [.accepted, .accepted, .accepted], "the float at 1.5 min is late behind the histogram")
        // Floats after the histogram, past the 2-hour range end: their first chunk closes.
        try appendSamples(db, "s", (3..<130).map { (Int64($0) * Self.minute, UInt64($0)) })
        flushChunks(db)
        let expected = try contents(db)
        XCTAssertEqual(expected["s"]?.count, 2 + 127)
        let histograms = try storedHistograms(db, "s")
        XCTAssertEqual(histograms.count, 1)

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertGreaterThan(reopened.replay.headChunks, 0)
        XCTAssertEqual(try contents(reopened)["s"]?.count, 2 + 127)
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(try storedHistograms(reopened, "s"), histograms)
        XCTAssertEqual(try walAlone(), expected)
    }

    /// A chunk whose checksum holds but whose samples do not rise from its start to its end (a
    /// forged or misbehaving writer) is never taken: the head's appends and reads rely on rising times.
    func testAChunkWhoseTimesDoNotRiseIsNotTaken() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try fill(db, series: 1, minutes: 130)
        let expected = try contents(db)
        let ref = db.head.ref(try XCTUnwrap(db.head.select([try LabelMatcher("__name__", .equal, "m0")]).first))
        // The WAL's first sample, then 2 and 1 minutes: 120 samples ending at 119 minutes.
        var chunk = XORChunk()
        for minute in [0, 2, 1] + Array(3..<120) { chunk.append(timestamp: Int64(minute) * Self.minute, valueBits: Double(minute % 17).bitPattern) }
        let writer = HeadChunkWriter(directory: chunkDirectory, existing: [:])
        writer.append(ref: ref, minTime: 0, maxTime: 119 * Self.minute, chunk.bytes)
        writer.sync()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(reopened.replay.headChunks, 0)
        XCTAssertEqual(try contents(reopened), expected)
    }

    /// With more chunks than one core checks, every chunk's form is checked on every core at open:
    /// a malformed chunk is refused in any core's share (first, middle, last), the others taken.
    func testMalformedChunksAreRefusedInEveryShareOfTheFormChecks() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        let series = 2100
        try fill(db, series: series, minutes: 130)
        let expected = try contents(db)
        db.cutQueue.sync {}
        try FileSystem.removeTree(chunkDirectory)
        // Each series' first 120 samples as the WAL has them; the forged ones swap two times.
        let forged: Set = [0, series / 2, series - 1]
        let writer = HeadChunkWriter(directory: chunkDirectory, existing: [:])
        for k in 0..<series {
            let ref = db.head.ref(try XCTUnwrap(db.head.select([try LabelMatcher("__name__", .equal, "m\(k)")]).first))
            var chunk = XORChunk()
            for minute in forged.contains(k) ? [0, 2, 1] + Array(3..<120) : Array(0..<120) {
                chunk.append(timestamp: Int64(minute) * Self.minute, valueBits: Double(k * 1000 + minute % 17).bitPattern)
            }
            writer.append(ref: ref, minTime: 0, maxTime: 119 * Self.minute, chunk.bytes)
        }
        writer.sync()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(reopened.replay.headChunks, series - forged.count)
        let replayed = try contents(reopened)
        for k in forged { XCTAssertEqual(replayed["m\(k)"], expected["m\(k)"], "m\(k)") }
        // Not XCTAssertEqual: its message would print every series.
        XCTAssertTrue(replayed == expected, "the replayed head differs from what was appended")
    }

    /// Chunks written under a longer block range cross this one's range ends: a restart under a
    /// 2-hour range takes none of those, and replays their samples from the WAL.
    func testChunksWrittenUnderAnotherBlockRangeAreTakenOnlyWhereTheyFit() throws {
        let long = try TenantDatabase.open(directory: directory, tenant: "t", options: StorageOptions(blockRange: 30 * 86_400_000))
        // Started off the hour, so the 120-sample chunks straddle the 2-hour range ends.
        try fill(long, series: 8, from: 37 * Self.minute, minutes: 600)
        try long.close()
        let expected = try walAlone()
        XCTAssertEqual(expected["m0"]?.count, 600)
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened), expected)
        // Every chunk the head holds lies within one 2-hour range, as block cuts need.
        for index in 0..<Int32(reopened.head.seriesCount) {
            reopened.head.forEachChunk(index) { minTime, maxTime, _ in
                XCTAssertEqual(Head.rangeStart(minTime, 7_200_000), Head.rangeStart(maxTime, 7_200_000), "[\(minTime), \(maxTime)]")
            }
        }
        try reopened.close()
        XCTAssertEqual(try walAlone(), expected)
    }

    func testCorruptAndTornChunkFilesAreReportedCutAndRebuiltFromTheWAL() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try fill(db, series: 30, minutes: 150)
        try db.close()
        let expected = try walAlone()
        let file = chunkDirectory + "/" + (try chunkFiles()).last!
        let written = try FileSystem.readFile(file)
        XCTAssertEqual(Array(written[..<8]), [0x01, 0x30, 0xBC, 0x91, 1, 0, 0, 0], "Prometheus' head chunk file header")

        // A flipped data byte in a chunk in the middle: the chunks before it are kept.
        let offsets = chunkOffsets(written)
        XCTAssertGreaterThan(offsets.count, 20)
        let damaged = offsets[offsets.count / 2]
        var flipped = written
        flipped[damaged + HeadChunkFormat.fixedChunkHeader + 4] ^= 0x40
        try FileSystem.writeFile(file, flipped)
        // A later file, which must go with the damaged one.
        try FileSystem.writeFile(chunkDirectory + "/999999", HeadChunkFormat.fileHeader())
        var reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(reopened.replay.headChunkCorruptions.count, 1)
        let corruption = try XCTUnwrap(reopened.replay.headChunkCorruptions.first)
        XCTAssertEqual(corruption.file, file)
        XCTAssertEqual(corruption.section, .checksum)
        XCTAssertEqual(corruption.offset, damaged)
        XCTAssertTrue(reopened.replay.problems.contains { $0.contains(file) && $0.contains("chunk checksum") }, "\(reopened.replay.problems)")
        XCTAssertGreaterThan(reopened.replay.headChunks, 0, "the chunks before the damage are taken")
        XCTAssertEqual(FileSystem.fileSize(file), corruption.offset, "cut where the damage starts")
        XCTAssertFalse(FileSystem.exists(chunkDirectory + "/999999"))
        try reopened.close()

        // Torn inside a chunk's data, and a file whose header is not Prometheus'.
        let last = chunkDirectory + "/" + (try chunkFiles()).last!
        let bytes = try FileSystem.readFile(last)
        try FileSystem.writeFile(last, Array(bytes[..<(bytes.count - 3)]))
        reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(reopened.replay.headChunkCorruptions.map(\.section), [.chunkData])
        try reopened.close()
        let first = chunkDirectory + "/" + (try chunkFiles()).first!
        try FileSystem.writeFile(first, [0xde, 0xad, 0xbe, 0xef, 1, 0, 0, 0] + (try FileSystem.readFile(first)).dropFirst(8))
        reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(reopened.replay.headChunkCorruptions.map(\.section), [.fileHeader])
        XCTAssertEqual(reopened.replay.headChunks, 0)
        XCTAssertFalse(FileSystem.exists(first), "a file with a foreign header is removed")
    }

    func testBlockCutsDropTheFilesTheHeadNoLongerNeeds() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        // Four hours: the cut takes the first two into a block.
        // The chunks of the first two hours close at the range's end.
        try fill(db, series: 10, minutes: 130)
        flushChunks(db)
        let before = try chunkFiles()
        XCTAssertEqual(before.count, 1)
        try fill(db, series: 10, from: 130 * Self.minute, minutes: 110)
        _ = try db.cutBlock()
        XCTAssertFalse(db.blockMetas.isEmpty)
        try fill(db, series: 10, from: 240 * Self.minute, minutes: 300)
        _ = try db.cutBlock()
        // The head keeps [8h, 650 min): the chunks up to 10h close.
        try fill(db, series: 10, from: 540 * Self.minute, minutes: 110)
        flushChunks(db)
        XCTAssertFalse(try chunkFiles().contains(before[0]), "every chunk in it ended before the head's oldest sample")
        let expected = try contents(db)

        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(reopened.replay.headChunks, 10)
        XCTAssertEqual(try contents(reopened), expected)
        XCTAssertEqual(try walAlone(), expected)
    }

    func testNewSeriesNeverTakeARefTheChunkFilesStillName() throws {
        try FileSystem.makeDirectory(directory)
        try FileSystem.makeDirectory(chunkDirectory)
        var chunk = XORChunk()
        chunk.append(timestamp: 0, valueBits: 1)
        let writer = HeadChunkWriter(directory: chunkDirectory, existing: [:])
        writer.append(ref: 1000, minTime: 0, maxTime: 0, chunk.bytes)
        writer.sync()
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        try appendSamples(db, "fresh", [(0, 1)])
        let index = try XCTUnwrap(db.head.select([try LabelMatcher("__name__", .equal, "fresh")]).first)
        XCTAssertGreaterThan(db.head.ref(index), 1000)
        try db.close()
        let reopened = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try contents(reopened)["fresh"], [Sample(timestamp: 0, valueBits: 1)])
    }

    func testAWrittenChunkIsLaidOutAsPrometheusReadsIt() throws {
        try FileSystem.makeDirectory(directory)
        var chunk = XORChunk()
        chunk.append(timestamp: 1000, valueBits: Double(1.5).bitPattern)
        chunk.append(timestamp: 2000, valueBits: Double(2.5).bitPattern)
        let writer = HeadChunkWriter(directory: directory, existing: [3: 10])
        writer.append(ref: 0x0102, minTime: 1000, maxTime: 2000, chunk.bytes)
        writer.sync()
        let bytes = try FileSystem.readFile(directory + "/000004")
        var expected: [UInt8] = [0x01, 0x30, 0xBC, 0x91, 0x01, 0, 0, 0]
        let start = expected.count
        expected += [0, 0, 0, 0, 0, 0, 0x01, 0x02]
        expected += [0, 0, 0, 0, 0, 0, 0x03, 0xE8]
        expected += [0, 0, 0, 0, 0, 0, 0x07, 0xD0]
        expected += [XORChunk.encoding, UInt8(chunk.bytes.count)] + chunk.bytes
        expected.appendBigEndian(CRC32C.checksum(Array(expected[start...])))
        XCTAssertEqual(bytes, expected)

        let read = try MappedHeadChunks(directory: directory)
        XCTAssertEqual(read.chunkCount, 1)
        XCTAssertEqual(read.maxRef, 0x0102)
        XCTAssertEqual(read.fileMaxTimes, [4: 2000])
        XCTAssertEqual(read.chunks(of: 0x0102, from: 1000, valueBits: Double(1.5).bitPattern, chunkRange: 7_200_000)?.chunks.map(\.bytes), [chunk.bytes])
        XCTAssertNil(read.chunks(of: 0x0102, from: 1000, valueBits: Double(9).bitPattern, chunkRange: 7_200_000), "another first value")
        XCTAssertNil(read.chunks(of: 0x0102, from: 2000, valueBits: Double(2.5).bitPattern, chunkRange: 7_200_000), "no chunk starts there")

        // Chunks the head could not hold are never taken: past the storable times, or across a range.
        let far = StorableTime.range.upperBound + 1
        var beyond = XORChunk()
        beyond.append(timestamp: far, valueBits: 1)
        var across = XORChunk()
        across.append(timestamp: 7_199_000, valueBits: 1)
        across.append(timestamp: 7_201_000, valueBits: 2)
        let more = HeadChunkWriter(directory: directory, existing: [4: 2000])
        more.append(ref: 9, minTime: far, maxTime: far, beyond.bytes)
        more.append(ref: 10, minTime: 7_199_000, maxTime: 7_201_000, across.bytes)
        more.sync()
        let reread = try MappedHeadChunks(directory: directory)
        XCTAssertEqual(reread.chunkCount, 3)
        XCTAssertNil(reread.chunks(of: 9, from: far, valueBits: 1, chunkRange: 7_200_000))
        XCTAssertNil(reread.chunks(of: 10, from: 7_199_000, valueBits: 1, chunkRange: 7_200_000))
    }

    /// Random appends (in order and late), deletions, block cuts, clean stops and crashes: after
    /// every restart the tenant holds what it held before, and what the WAL alone gives.
    func testRandomHistoriesRestartToTheSameSamples() throws {
        var random = SeededGenerator(test: "HeadChunkFileTests")
        var db = try TenantDatabase.open(directory: directory, tenant: "t")
        var next = [Int64](repeating: 0, count: 8)
        var taken = 0
        for round in 0..<12 {
            for _ in 0..<6 {
                let k = Int.random(in: 0..<8, using: &random)
                switch Int.random(in: 0..<10, using: &random) {
                case 0:
                    let from = Int64.random(in: 0...max(0, next[k]), using: &random)
                    _ = try db.deleteSeries([[try LabelMatcher("__name__", .equal, "m\(k)")]],
                                            in: DeletedInterval(minTime: from, maxTime: Bool.random(using: &random) ? .max : from + 40 * Self.minute))
                case 1 where next[k] > 0:
                    try appendSamples(db, "m\(k)", [(Int64.random(in: 0..<next[k], using: &random) | 1, UInt64.random(in: 0..<9, using: &random))])
                case 2:
                    _ = try db.cutBlock()
                default:
                    let n = Int.random(in: 1...200, using: &random)
                    try appendSamples(db, "m\(k)", (0..<n).map { i in
                        (next[k] + Int64(i) * Self.minute, Double(Int.random(in: 0..<5, using: &random)).bitPattern)
                    })
                    next[k] += Int64(n) * Self.minute
                }
            }
            if Bool.random(using: &random) { flushChunks(db) }
            db.cutQueue.sync {}
            let expected = try contents(db)
            if round % 3 == 0 { try db.close() }
            db = try TenantDatabase.open(directory: directory, tenant: "t")
            taken += db.replay.headChunks
            XCTAssertEqual(try contents(db), expected, "round \(round)")
            XCTAssertEqual(try walAlone(), expected, "round \(round), WAL alone")
        }
        try db.close()
        XCTAssertGreaterThan(taken, 0, "restarts took chunks from the files")
    }
}
