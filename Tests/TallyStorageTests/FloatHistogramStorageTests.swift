import TallyTestSupport
import XCTest
@testable import TallyStorage

/// Float native histograms through the tenant database, beside integer ones: verdicts, WAL replay,
/// checkpoints, block cuts (encoding 3) and the dump text (compaction and deletion of both kinds:
/// `HistogramStorageTests`).
final class FloatHistogramStorageTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try temporaryDirectory() + "/tenant" }

    private func floatHistogram(_ n: Double) -> FloatHistogram { counterFloatHistogram(n) }

    private func integerHistogram(_ n: UInt64) -> IntegerHistogram {
        var h = IntegerHistogram()
        h.zeroThresholdBits = (0.001).bitPattern
        h.zeroCount = n
        h.count = 2 * n
        h.sumBits = Double(n).bitPattern
        h.positiveSpans = [HistogramSpan(offset: 0, length: 1)]
        h.positiveBuckets = [Int64(n)]
        return h
    }

    private func append(_ db: TenantDatabase, _ name: String, _ histograms: [(Int64, HistogramValue)]) throws -> [SampleVerdict] {
        try appendHistogramValues(db, name, histograms)
    }

    private func stored(_ db: TenantDatabase, _ name: String = "h") throws -> [HistogramSample] { try storedHistograms(db, name) }

    func testVerdictsFollowPrometheus() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        var other = floatHistogram(1)
        other.count += 0.5
        XCTAssertEqual(try append(db, "h", [(10, .float(floatHistogram(1))), (10, .float(floatHistogram(1))), (10, .float(other)),
                                            (5, .float(floatHistogram(1))), (20, .float(floatHistogram(2)))]),
                       [.accepted, .duplicate, .conflict, .outOfOrder, .accepted])
        // The other kind at a time held: a conflict; older than the newest: out of order.
        XCTAssertEqual(try append(db, "h", [(20, .integer(integerHistogram(1))), (15, .integer(integerHistogram(1))), (30, .integer(integerHistogram(1))),
                                            (30, .float(floatHistogram(1))), (40, .float(floatHistogram(3)))]),
                       [.conflict, .outOfOrder, .accepted, .conflict, .accepted])
        // Floats and float histograms keep apart as integer histograms do.
        XCTAssertEqual(try appendSamples(db, "h", [(40, 1), (35, 1), (50, 1)]), [.conflict, .accepted, .accepted])
        var stale = FloatHistogram()
        stale.sumBits = HistogramChunk.staleNaNBits
        XCTAssertEqual(try append(db, "h", [(60, .float(stale)), (61, .float(floatHistogram(4))), (60, .float(stale))]), [.accepted, .accepted, .duplicate])
        var malformed = floatHistogram(1)
        malformed.positiveBuckets.removeLast()
        XCTAssertEqual(try append(db, "h", [(70, .float(malformed))]), [.malformedHistogram])
        XCTAssertEqual(try stored(db).map(\.timestamp), [10, 20, 30, 40, 60, 61])
        XCTAssertEqual(try stored(db).map(\.histogram.isFloat), [true, true, false, true, true, true])
    }

    /// One request switches a series between the two kinds: a float histogram, a newer integer one,
    /// a newer float one. All three are acknowledged, so a restart must replay all three; with one
    /// WAL record a kind, the integer record replayed first and the older float histogram was lost.
    func testAKindSwitchInsideOneRequestReplaysEveryHistogram() throws {
        let writer = try TenantDatabase.open(directory: directory, tenant: "t")
        defer { try? writer.close() }
        XCTAssertEqual(try append(writer, "h", [(5, .float(floatHistogram(1))), (10, .integer(integerHistogram(2))), (15, .float(floatHistogram(3)))]),
                       [.accepted, .accepted, .accepted])
        let acknowledged = try stored(writer)
        XCTAssertEqual(acknowledged.map(\.timestamp), [5, 10, 15])
        let replayed = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        defer { try? replayed.close() }
        XCTAssertEqual(try stored(replayed).map(\.timestamp), [5, 10, 15])
        XCTAssertEqual(try stored(replayed).map(\.histogram), acknowledged.map(\.histogram))
    }

    func testReplayCheckpointBlockCutAndReadBackEqual() throws {
        let minute: Int64 = 60_000
        // Floats, a counter reset at 100 minutes, integer histograms from 150 to 160, a new layout at 200.
        var sent: [(Int64, HistogramValue)] = (0..<300).map { k in
            var h = floatHistogram(Double(k < 100 ? k + 1 : k - 99))
            if k >= 200 {
                h.positiveSpans = [HistogramSpan(offset: 0, length: 3)]
                h.positiveBuckets.append(0.25)
            }
            return (Int64(k) * minute, .float(h))
        }
        for k in 150..<160 { sent[k].1 = .integer(integerHistogram(UInt64(k))) }
        let writer = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(Set(try append(writer, "h", Array(sent[..<150]))), [.accepted])
        XCTAssertEqual(Set(try append(writer, "h", Array(sent[150...]))), [.accepted])
        let expected = sent.map { HistogramSample(timestamp: $0.0, histogram: $0.1) }
        func same(_ a: [HistogramSample]) -> Bool {
            a.elementsEqual(expected) { $0.timestamp == $1.timestamp && $0.histogram.isSameSample(as: $1.histogram) }
        }
        XCTAssertTrue(same(try stored(writer)))

        // Replay of the WAL alone, as after a crash (no close).
        var db = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertEqual(db.replay.histograms, 300)
        XCTAssertEqual(db.replay.problems, [])
        XCTAssertTrue(same(try stored(db)))

        // A block cut: the first 2 h go into a block as encoding-3 chunks (and 2 for the integer
        // ones), the rest into a checkpoint.
        try writer.cutBlock()
        let metas = writer.blockMetas
        XCTAssertEqual(metas.count, 1)
        XCTAssertEqual(metas[0].stats.numSamples, 120)
        let block = try BlockReader(directory: directory + "/" + metas[0].ulid)
        let encoded = try block.series(block.seriesRefs[0]).chunks.map { try block.chunk($0.ref) }
        XCTAssertEqual(encoded.map(\.encoding), [FloatHistogramChunk.encoding, FloatHistogramChunk.encoding])
        XCTAssertEqual(FloatHistogramIterator(encoded[1].bytes).header, .counterReset, "the chunk after the reset says so")
        XCTAssertTrue(same(try stored(writer)))
        try writer.close()

        db = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        XCTAssertTrue(FileSystem.isDirectory(directory + "/wal/checkpoint.00000000"))
        XCTAssertEqual(db.replay.problems, [])
        XCTAssertTrue(same(try stored(db)))
        // Another cut takes the rest: integer and float chunks follow each other, kind by kind.
        let all = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try appendSamples(all, "other", [(12 * 3600 * 1000, 1)]), [.accepted])
        try all.cutBlock()
        var kinds: [UInt8] = []
        for meta in all.blockMetas.sorted(by: { $0.minTime < $1.minTime }) {
            let reader = try BlockReader(directory: directory + "/" + meta.ulid)
            for ref in reader.seriesRefs where try reader.series(ref).labels.contains(where: { $0.1 == "h" }) {
                kinds += try reader.series(ref).chunks.map { try reader.chunk($0.ref).encoding }
            }
        }
        let float = FloatHistogramChunk.encoding, integer = HistogramChunk.encoding
        // 0-99 and 100-119 min; 120-149, 150-159 (integer), 160-199, 200-239; 240-299.
        XCTAssertEqual(kinds, [float, float, float, integer, float, float, float])
        let got = try stored(all)
        XCTAssertTrue(same(got), "\(got.count) \(zip(got, expected).first { $0.0 != $0.1 }.map { "\($0.0) vs \($0.1)" } ?? "")")
        try all.close()
    }

    func testHostileFloatHistogramsOnDiskAreSkippedOrNamed() throws {
        let db = try TenantDatabase.open(directory: directory, tenant: "t")
        XCTAssertEqual(try append(db, "h", [(1000, .float(floatHistogram(1)))]), [.accepted])
        try db.close()
        var wrong = floatHistogram(2)
        wrong.positiveBuckets = [1]
        var encoder = WALRecordEncoder()
        encoder.histogramSamples([(ref: UInt64(1), timestamp: Int64(2000), histogram: wrong), (1, 5000, floatHistogram(5))])
        let next = (try FileSystem.listDirectory(directory + "/wal").compactMap { Int($0) }.max() ?? -1) + 1
        let writer = WALWriter(directory: directory + "/wal", segmentIndex: next)
        _ = try writer.openSegment()
        _ = try writer.log([encoder.bytes, Array(encoder.bytes.dropLast(3))])
        try writer.finishSegment()
        let replayed = try TenantDatabase.open(directory: directory, tenant: "t", readOnly: true)
        // The cut-short copy: its malformed histogram skipped again, then a typed error for the rest.
        // Each names its segment and its record there.
        let segment = directory + "/wal/" + WALFormat.segmentName(next)
        XCTAssertEqual(replayed.replay.problems, ["\(segment): record 1: skipped 1 malformed WAL histograms or with timestamps beyond ±2^53 ms",
                                                  "\(segment): record 2: skipped 1 malformed WAL histograms or with timestamps beyond ±2^53 ms",
                                                  "\(segment): record 2: malformed WAL record: truncated u64"])
        XCTAssertEqual(try stored(replayed).map(\.timestamp), [1000, 5000])

        // A float-histogram chunk cut short in a block: `HistogramStorageTests`.
    }

    func testPromtoolText() {
        var h = FloatHistogram()
        h.zeroThresholdBits = (0.001).bitPattern
        h.zeroCount = 1.5
        h.count = 6.5
        h.sumBits = (4.25).bitPattern
        h.positiveSpans = [HistogramSpan(offset: 0, length: 2)]
        h.positiveBuckets = [1, 2.5]
        h.negativeSpans = [HistogramSpan(offset: 0, length: 1)]
        h.negativeBuckets = [1.5]
        XCTAssertEqual(HistogramValue.float(h).promtoolText, "{count:6.5, sum:4.25, [-1,-0.5):1.5, [-0.001,0.001]:1.5, (0.5,1]:1, (1,2]:2.5}")
        h.positiveBuckets = [0, 1e21]
        h.zeroCount = 0
        XCTAssertEqual(h.promtoolText, "{count:6.5, sum:4.25, [-1,-0.5):1.5, (1,2]:1e+21}")
    }
}
