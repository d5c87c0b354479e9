import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Integer native histograms through the tenant database: verdicts, WAL replay, checkpoints,
/// block cuts (encoding 2), compaction, deletion and the dump text.
final class HistogramStorageTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try temporaryDirectory() + "/tenant" }

    /// A counter-like histogram: schema 0, two positive buckets, one negative, a zero bucket.
    private func histogram(_ n: UInt64) -> IntegerHistogram {
        var h = IntegerHistogram()
        h.schema = 0
        h.zeroThresholdBits = (0.001).bitPattern
        h.zeroCount = n
        h.count = 4 * n
        h.sumBits = Double(n * 3).bitPattern
        h.positiveSpans = [HistogramSpan(offset: 0, length: 2)]
        h.positiveBuckets = [Int64(n), 0]
        h.negativeSpans = [HistogramSpan(offset: 0, length: 1)]
        h.negativeBuckets = [Int64(n)]
        return h
    }

    private func appendHistograms(_ db: TenantDatabase, _ name: String, _ histograms: [(Int64, IntegerHistogram)]) throws -> [SampleVerdict] {
        try appendHistogramValues(db, name, histograms.map { ($0.0, .integer($0.1)) })
    }

    private func stored(_ db: TenantDatabase, _ name: String = "h") throws -> [HistogramSample] { try storedHistograms(db, name) }

    func testVerdictsFollowPrometheus() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        var other = histogram(1)
        other.count += 1
        XCTAssertEqual(try appendHistograms(db, "h", [(10, histogram(1)), (10, histogram(1)), (10, other), (5, histogram(1)), (20, histogram(2))]),
                       [.accepted, .duplicate, .conflict, .outOfOrder, .accepted])
        // A time the series holds as a histogram takes no float, and the reverse.
        XCTAssertEqual(try appendSamples(db, "h", [(20, 1), (15, 1), (30, 1)]), [.conflict, .accepted, .accepted])
        XCTAssertEqual(try appendHistograms(db, "h", [(30, histogram(3)), (25, histogram(3)), (40, histogram(3))]), [.conflict, .outOfOrder, .accepted])
        // A staleness marker, resent once it is no longer the newest: the same marker, whatever it carries.
        var stale = IntegerHistogram()
        stale.sumBits = HistogramChunk.staleNaNBits
        XCTAssertEqual(try appendHistograms(db, "h", [(45, stale), (46, histogram(4)), (45, stale), (45, histogram(4))]),
                       [.accepted, .accepted, .duplicate, .conflict])
        var malformed = histogram(1)
        malformed.positiveBuckets.removeLast()
        XCTAssertEqual(try appendHistograms(db, "h", [(50, malformed)]), [.malformedHistogram])
        XCTAssertEqual(try stored(db).map(\.timestamp), [10, 20, 40, 45, 46])
        XCTAssertEqual(try db.select([try LabelMatcher("__name__", .equal, "h")]).first?.samples.map(\.timestamp), [15, 30])
        try assertFloatReadersSee(db, [15, 30])
        // The same after a cut, from blocks: a histogram chunk is never read as floats.
        XCTAssertEqual(try appendSamples(db, "h", [(4 * 3600 * 1000, 1)]), [.accepted])
        try db.cutBlock()
        XCTAssertFalse(db.blockMetas.isEmpty)
        try assertFloatReadersSee(db, [15, 30, 4 * 3600 * 1000])
        XCTAssertEqual(try stored(db).map(\.timestamp), [10, 20, 40, 45, 46])
    }

    /// What the querier (PromQL's and the cost engine's read) gives for series `h`: floats only.
    private func assertFloatReadersSee(_ db: TenantDatabase, _ times: [Int64], file: StaticString = #filePath, line: UInt = #line) throws {
        let series = try db.querier(minTime: .min, maxTime: .max).select([try LabelMatcher("__name__", .equal, "h")], minTime: .min, maxTime: .max)
        var seen: [Int64] = []
        var it = try XCTUnwrap(series.first, file: file, line: line).makeIterator()
        while it.advance() { seen.append(it.timestamp) }
        XCTAssertEqual(seen, times, file: file, line: line)
    }

    func testReplayCheckpointBlockCutAndReadBackEqual() throws {
        let minute: Int64 = 60_000
        var sent: [(Int64, IntegerHistogram)] = (0..<300).map { (Int64($0) * minute, histogram(UInt64($0 + 1))) }
        // A counter reset at 100 minutes, and a new bucket layout at 200 minutes.
        for k in 100..<200 { sent[k].1 = histogram(UInt64(k - 99)) }
        for k in 200..<300 {
            sent[k].1.positiveSpans = [HistogramSpan(offset: 0, length: 3)]
            sent[k].1.positiveBuckets = [Int64(k), 0, 1]
            sent[k].1.count += 1
        }
        let writer = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(Set(try appendHistograms(writer, "h", sent)), [.accepted])
        let expected = sent.map { HistogramSample(timestamp: $0.0, histogram: $0.1) }
        XCTAssertTrue(try stored(writer).elementsEqual(expected) { $0.timestamp == $1.timestamp && $0.histogram.isSameSample(as: $1.histogram) })

        // Replay of the WAL alone, as after a crash (no close).
        var db = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(db.replay.histograms, 300)
        XCTAssertEqual(db.replay.problems, [])
        XCTAssertTrue(try stored(db).elementsEqual(expected) { $0.timestamp == $1.timestamp && $0.histogram.isSameSample(as: $1.histogram) })

        // A block cut: the first 2 h go into a block as encoding-2 chunks, the rest into a checkpoint.
        // (The append scheduled it in the background; `cutBlock` runs after it on the same queue.)
        try writer.cutBlock()
        let metas = writer.blockMetas
        XCTAssertEqual(metas.count, 1)
        XCTAssertEqual(metas[0].stats.numSamples, 120, "numSamples counts histograms, as Prometheus 2.42's")
        let block = try BlockReader(directory: directory + "/" + metas[0].ulid)
        let chunks = try block.series(block.seriesRefs[0]).chunks
        let encoded = try chunks.map { try block.chunk($0.ref) }
        XCTAssertEqual(Set(encoded.map(\.encoding)), [HistogramChunk.encoding])
        XCTAssertEqual(encoded.map { HistogramIterator($0.bytes).header }.dropFirst(1).first, .counterReset, "the chunk after the reset says so")
        XCTAssertTrue(try stored(writer).elementsEqual(expected) { $0.timestamp == $1.timestamp && $0.histogram.isSameSample(as: $1.histogram) })
        XCTAssertEqual(try writer.querier(minTime: .min, maxTime: .max).select([try LabelMatcher("__name__", .equal, "h")], minTime: .min, maxTime: .max).count, 0,
                       "float readers see no histogram series")
        try writer.close()

        db = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertTrue(FileSystem.isDirectory(directory + "/wal/checkpoint.00000000"))
        XCTAssertTrue(try stored(db).elementsEqual(expected) { $0.timestamp == $1.timestamp && $0.histogram.isSameSample(as: $1.histogram) })
    }

    /// Both kinds: overlapping blocks are merged, histograms re-encoded in chunks of their kind;
    /// blocks apart are copied chunk for chunk.
    func testCompactionCopiesOrMergesHistogramChunks() throws {
        for (kind, encoding) in [("integer", HistogramChunk.encoding), ("float", FloatHistogramChunk.encoding)] {
            let make: (Int) -> HistogramValue = { kind == "float" ? .float(counterFloatHistogram(Double($0))) : .integer(self.histogram(UInt64($0))) }
            let directory = directory + "-" + kind
            let a = (0..<50).map { HistogramSample(timestamp: Int64($0) * 1000, histogram: make($0 + 1)) }
            let b = (25..<80).map { HistogramSample(timestamp: Int64($0) * 1000, histogram: make($0 + 1)) }
            let c = (80..<90).map { HistogramSample(timestamp: Int64($0) * 1000, histogram: make($0 + 1)) }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            func write(_ samples: [HistogramSample]) throws -> BlockReader {
                let meta = try BlockWriter.write(series: [BlockSeries(labels: [("__name__", "h")], chunks: EncodedChunk.encodeHistograms(samples))],
                                                 minTime: samples.first!.timestamp, maxTime: samples.last!.timestamp + 1, into: directory, tenant: "t")
                return try BlockReader(directory: directory + "/" + meta.ulid)
            }
            func compact(_ parents: [BlockReader], _ maxTime: Int64) throws -> (BlockMeta, BlockReader) {
                let meta = try XCTUnwrap(BlockCompactor.compact(parents, minTime: 0, maxTime: maxTime, into: directory, tenant: "t",
                                                                compaction: BlockCompactor.childCompaction(parents.map(\.meta))))
                return (meta, try BlockReader(directory: directory + "/" + meta.ulid))
            }
            let h = [try LabelMatcher("__name__", .equal, "h")]
            let (meta, child) = try compact([try write(a), try write(b)], 80_000)
            let merged = try child.selectHistograms(h, minTime: .min, maxTime: .max)
            XCTAssertEqual(merged.first?.histograms.map(\.timestamp), (0..<80).map { Int64($0) * 1000 }, kind)
            XCTAssertEqual(merged.first?.histograms.last?.histogram, make(80), kind)
            XCTAssertEqual(meta.stats.numSamples, 80, kind)
            let first = try child.series(child.seriesRefs[0]).chunks.map { try child.chunk($0.ref) }
            XCTAssertEqual(first.map(\.encoding), [encoding], kind)
            // Not overlapping: copied byte for byte.
            let (_, last) = try compact([child, try write(c)], 90_000)
            let copied = try last.series(last.seriesRefs[0]).chunks.map { try last.chunk($0.ref) }
            XCTAssertEqual(copied.first.map { Array($0.bytes) }, first.first.map { Array($0.bytes) }, kind)
            XCTAssertEqual(try last.selectHistograms(h, minTime: .min, maxTime: .max).first?.histograms, a + b.suffix(30) + c, kind)
        }
    }

    func testDeletionRemovesHistogramsFromHeadAndBlocks() throws {
        for kind in ["integer", "float"] {
            let make: (Int) -> HistogramValue = { kind == "float" ? .float(counterFloatHistogram(Double($0))) : .integer(self.histogram(UInt64($0))) }
            let db = try TenantDatabase.open(directory: directory + "-" + kind, tenant: "t")
            XCTAssertEqual(Set(try appendHistogramValues(db, "h", (0..<10).map { (Int64($0) * 1000, make($0 + 1)) })), [.accepted])
            let matchers = [try LabelMatcher("__name__", .equal, "h")]
            var report = try db.deleteSeries([matchers], in: DeletedInterval(minTime: 2000, maxTime: 4000))
            XCTAssertEqual(report.parts.map(\.place), ["head"])
            XCTAssertEqual(report.parts.map(\.samples), [3])
            XCTAssertEqual(try stored(db).map(\.timestamp), [0, 1000, 5000, 6000, 7000, 8000, 9000])
            let reopened = try TenantDatabase.open(directory: directory + "-" + kind, tenant: "t", readOnly: true)
            XCTAssertEqual(try stored(reopened).map(\.timestamp), [0, 1000, 5000, 6000, 7000, 8000, 9000], "the Tombstones record replays")
            // In a block: tombstones hide them.
            let late: Int64 = 4 * 3600 * 1000
            XCTAssertEqual(try appendHistogramValues(db, "h", [(late, make(20))]), [.accepted])
            try db.cutBlock()
            XCTAssertEqual(db.blockMetas.count, 1)
            report = try db.deleteSeries([matchers], in: DeletedInterval(minTime: 8000, maxTime: 9000))
            XCTAssertEqual(report.parts.map(\.samples), [2])
            XCTAssertNotEqual(report.parts.first?.place, "head")
            XCTAssertEqual(try stored(db).map(\.timestamp), [0, 1000, 5000, 6000, 7000, late])
            XCTAssertEqual(try stored(db).last?.histogram, make(20))
        }
    }

    func testHostileHistogramsOnDiskAreSkippedOrNamedNeverTrusted() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try appendHistograms(db, "h", [(1000, histogram(1))]), [.accepted])
        try db.close()
        // A later segment with histograms no writer makes: buckets that do not match the spans, an
        // unknown schema, spans of 2^32-1 buckets.
        var wrong = histogram(2), schema = histogram(2), huge = histogram(2)
        wrong.positiveBuckets = [1]
        schema.schema = 99
        huge.positiveSpans = [HistogramSpan(offset: 0, length: .max)]
        var encoder = WALRecordEncoder()
        encoder.histogramSamples([(UInt64(1), Int64(2000), wrong), (1, 3000, schema), (1, 4000, huge), (1, 5000, histogram(5))])
        let next = (try FileSystem.listDirectory(directory + "/wal").compactMap { Int($0) }.max() ?? -1) + 1
        let writer = WALWriter(directory: directory + "/wal", segmentIndex: next)
        _ = try writer.openSegment()
        _ = try writer.log([encoder.bytes])
        try writer.finishSegment()
        let replayed = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        let segment = directory + "/wal/" + WALFormat.segmentName(next)
        XCTAssertEqual(replayed.replay.problems, ["\(segment): record 1: skipped 3 malformed WAL histograms or with timestamps beyond ±2^53 ms"])
        XCTAssertEqual(try stored(replayed).map(\.timestamp), [1000, 5000])

        // Blocks: a chunk of an encoding this reader does not know, and a histogram and a float-histogram chunk cut short,
        // are errors naming block and chunk file, and a dump reports them and goes on.
        var cut = HistogramChunk()
        cut.append(timestamp: 1, histogram(1))
        cut.append(timestamp: 2, histogram(2))
        var floatCut = FloatHistogramChunk()
        floatCut.append(timestamp: 1, counterFloatHistogram(1))
        floatCut.append(timestamp: 2, counterFloatHistogram(2))
        let series = [BlockSeries(labels: [("__name__", "a")], chunks: [EncodedChunk(minTime: 1, maxTime: 2, bytes: cut.bytes, encoding: 4)]),
                      BlockSeries(labels: [("__name__", "b")], chunks: [EncodedChunk(minTime: 1, maxTime: 2, bytes: Array(cut.bytes.prefix(8)),
                                                                                       encoding: HistogramChunk.encoding)]),
                      BlockSeries(labels: [("__name__", "c")], chunks: [EncodedChunk(minTime: 1, maxTime: 2, bytes: Array(floatCut.bytes.prefix(20)),
                                                                                       encoding: FloatHistogramChunk.encoding)])]
        let meta = try BlockWriter.write(series: series, minTime: 1, maxTime: 3, into: directory, tenant: "t")
        let block = try BlockReader(directory: directory + "/" + meta.ulid)
        var errors: [String] = []
        let read = try block.selectHistograms([try LabelMatcher("__name__", .regex, ".+")], minTime: .min, maxTime: .max) { errors.append("\($0)") }
        XCTAssertTrue(read.isEmpty)
        XCTAssertEqual(errors.count, 3, "\(errors)")
        XCTAssertTrue(errors[0].contains("block \(meta.ulid): chunks/000001: chunk encoding 4") && errors[0].contains("neither XOR (1), histogram (2) nor float histogram (3)"), errors[0])
        XCTAssertTrue(errors[1].contains("chunks/000001: undecodable chunk") && errors[1].contains("left out the histograms of {__name__=\"b\"}"), errors[1])
        XCTAssertTrue(errors[2].contains("chunks/000001: undecodable chunk") && errors[2].contains("left out the histograms of {__name__=\"c\"}"), errors[2])
        XCTAssertThrowsError(try block.select([try LabelMatcher("__name__", .equal, "a")], minTime: .min, maxTime: .max))
    }

    func testPromtoolText() {
        var h = IntegerHistogram()
        h.count = 8
        h.sumBits = (4.5).bitPattern
        h.zeroThresholdBits = (0.001).bitPattern
        h.zeroCount = 3
        h.positiveSpans = [HistogramSpan(offset: 0, length: 2)]
        h.positiveBuckets = [1, 1]
        h.negativeSpans = [HistogramSpan(offset: 0, length: 1)]
        h.negativeBuckets = [2]
        XCTAssertEqual(h.promtoolText, "{count:8, sum:4.5, [-1,-0.5):2, [-0.001,0.001]:3, (0.5,1]:1, (1,2]:2}")
        h.schema = 2
        h.positiveSpans = [HistogramSpan(offset: -1, length: 1), HistogramSpan(offset: 2, length: 1)]
        h.zeroCount = 0
        h.negativeBuckets = [0]
        XCTAssertEqual(h.promtoolText, "{count:8, sum:4.5, (0.7071067811865475,0.8408964152537144]:1, (1.189207115002721,1.414213562373095]:2}")
    }
}

/// Appends histograms of either kind to series `name`, waiting until they are durable.
func appendHistogramValues(_ db: TenantDatabase, _ name: String, _ histograms: [(Int64, HistogramValue)]) throws -> [SampleVerdict] {
    let nameBytes = Array("__name__".utf8), valueBytes = Array(name.utf8)
    let (verdicts, commit) = try nameBytes.withUnsafeBytes { n in
        try valueBytes.withUnsafeBytes { v in
            try db.append { batch -> [SampleVerdict] in
                let handle = [RawLabel(name: n, value: v)].withUnsafeBufferPointer { try! batch.series($0) }
                return histograms.map { batch.add(handle, timestamp: $0.0, histogram: $0.1) }
            }
        }
    }
    waitDurable(db, commit)
    return verdicts
}

/// The histograms of series `name`, from blocks and head.
func storedHistograms(_ db: TenantDatabase, _ name: String) throws -> [HistogramSample] {
    try db.selectHistograms([try LabelMatcher("__name__", .equal, name)], minTime: .min, maxTime: .max, skipUnreadable: nil)
        .first?.histograms ?? []
}

/// A counter-like float histogram: schema 0, two positive buckets, one negative, a zero bucket.
func counterFloatHistogram(_ n: Double) -> FloatHistogram {
    var h = FloatHistogram()
    h.zeroThresholdBits = (0.001).bitPattern
    h.zeroCount = n / 2
    h.count = 4.5 * n
    h.sumBits = (n * 3.25).bitPattern
    h.positiveSpans = [HistogramSpan(offset: 0, length: 2)]
    h.positiveBuckets = [n, n * 1.5]
    h.negativeSpans = [HistogramSpan(offset: 0, length: 1)]
    h.negativeBuckets = [n * 1.5]
    return h
}
