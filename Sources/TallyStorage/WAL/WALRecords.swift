/// Record payloads of the Prometheus WAL (`tsdb/record`): Series (type 1), Samples (type 2),
/// Tombstones (type 3), HistogramSamples (type 7, integer native histograms) and
/// FloatHistogramSamples (type 8, float native histograms). Integers are big-endian; deltas are zigzag varints.
enum WALRecordType: UInt8 {
    case series = 1
    case samples = 2
    case tombstones = 3
    case histogramSamples = 7
    case floatHistogramSamples = 8
}

struct WALRecordEncoder {
    private(set) var bytes: [UInt8] = []

    mutating func beginSeries() { bytes = [WALRecordType.series.rawValue] }

    mutating func addSeries(ref: UInt64, labels: [(String, String)]) {
        appendBigEndian(ref)
        appendUvarint(UInt64(labels.count))
        for (name, value) in labels {
            appendString(name)
            appendString(value)
        }
    }

    /// Starts a Samples record; its base is the first sample's ref and timestamp.
    mutating func beginSamples(baseRef: UInt64, baseTimestamp: Int64) {
        bytes = [WALRecordType.samples.rawValue]
        appendBigEndian(baseRef)
        appendBigEndian(UInt64(bitPattern: baseTimestamp))
        base = (baseRef, baseTimestamp)
    }

    mutating func addSample(ref: UInt64, timestamp: Int64, valueBits: UInt64) {
        appendVarint(Int64(bitPattern: ref &- base.ref))
        appendVarint(timestamp &- base.timestamp)
        appendBigEndian(valueBits)
    }

    /// Histograms of both kinds as records in their order: one HistogramSamples or
    /// FloatHistogramSamples record per run of one kind. Replay applies the records in order, so it
    /// meets each series' histograms in the order they were appended, whichever kinds it switches
    /// between (one record per kind would replay a float histogram after a newer integer one of the
    /// same series, and refuse it).
    static func histogramRecords<Histograms: Collection>(_ histograms: Histograms) -> [[UInt8]]
    where Histograms.Element == (ref: UInt64, timestamp: Int64, value: HistogramValue) {
        var records: [[UInt8]] = []
        var encoder = WALRecordEncoder()
        var start = histograms.startIndex
        while start != histograms.endIndex {
            let isFloat = histograms[start].value.isFloat
            let end = histograms[start...].firstIndex { $0.value.isFloat != isFloat } ?? histograms.endIndex
            if isFloat { encoder.histogramSamples(histograms[start..<end], FloatHistogram.self) } else { encoder.histogramSamples(histograms[start..<end], IntegerHistogram.self) }
            records.append(encoder.bytes)
            start = end
        }
        return records
    }

    /// The histograms of kind `H` of `run` (all of them, in a run of one kind) as one record.
    private mutating func histogramSamples<Run: Collection, H: StoredHistogram>(_ run: Run, _: H.Type)
    where Run.Element == (ref: UInt64, timestamp: Int64, value: HistogramValue) {
        histogramSamples(run.compactMap { s in H(s.value).map { (ref: s.ref, timestamp: s.timestamp, histogram: $0) } })
    }

    /// A HistogramSamples or FloatHistogramSamples record (Prometheus 2.42's
    /// `Encoder.HistogramSamples` and `FloatHistogramSamples`): the first sample's ref and time as
    /// the base, then per sample the deltas to them, the reset hint, schema, zero threshold, zero
    /// count and count, sum, the positive then negative spans, the positive then negative buckets.
    /// Integer counts are uvarints and bucket deltas varints; float ones are big-endian float bits.
    mutating func histogramSamples<H: StoredHistogram>(_ samples: [(ref: UInt64, timestamp: Int64, histogram: H)]) {
        bytes = [H.walRecordType.rawValue]
        guard let first = samples.first else { return }
        appendBigEndian(first.ref)
        appendBigEndian(UInt64(bitPattern: first.timestamp))
        for (ref, timestamp, h) in samples {
            appendVarint(Int64(bitPattern: ref &- first.ref))
            appendVarint(timestamp &- first.timestamp)
            bytes.append(h.counterResetHint)
            appendVarint(Int64(h.schema))
            appendBigEndian(h.zeroThresholdBits)
            let counts = h.countWords
            for word in [counts.zero, counts.count] {
                if H.wordsAreFloatBits { appendBigEndian(word) } else { appendUvarint(word) }
            }
            appendBigEndian(h.sumBits)
            for spans in [h.positiveSpans, h.negativeSpans] {
                appendUvarint(UInt64(spans.count))
                for span in spans {
                    appendVarint(Int64(span.offset))
                    appendUvarint(UInt64(span.length))
                }
            }
            let words = h.bucketWords
            for buckets in [words.positive, words.negative] {
                appendUvarint(UInt64(buckets.count))
                for word in buckets {
                    if H.wordsAreFloatBits { appendBigEndian(word) } else { appendVarint(Int64(bitPattern: word)) }
                }
            }
        }
    }

    /// A Tombstones record: (`ref:u64`, `mint:varint`, `maxt:varint`) per deleted interval.
    mutating func tombstones(_ deleted: [(ref: UInt64, interval: DeletedInterval)]) {
        bytes = [WALRecordType.tombstones.rawValue]
        for (ref, interval) in deleted {
            appendBigEndian(ref)
            appendVarint(interval.minTime)
            appendVarint(interval.maxTime)
        }
    }

    private var base: (ref: UInt64, timestamp: Int64) = (0, 0)

    private mutating func appendString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            bytes.appendUvarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    private mutating func appendBigEndian(_ v: UInt64) { bytes.appendBigEndian(v) }
    private mutating func appendUvarint(_ value: UInt64) { bytes.appendUvarint(value) }
    private mutating func appendVarint(_ v: Int64) { bytes.appendVarint(v) }
}

enum WALRecordError: Error, CustomStringConvertible, Sendable {
    case malformed(String)
    case unsupported(UInt8)

    var description: String {
        switch self {
        case let .malformed(what): "malformed WAL record: \(what)"
        case let .unsupported(type): "WAL record type \(type) is not supported"
        }
    }
}

/// Decodes record payloads; callbacks receive borrowed label bytes to avoid strings on replay of
/// series that already exist.
struct WALRecordDecoder {
    private let bytes: UnsafeRawBufferPointer
    private var position = 1

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var type: UInt8 { bytes.isEmpty ? 0 : bytes[0] }

    /// Each series' ref and labels, the labels borrowing the record's bytes for the call.
    mutating func forEachSeries(_ body: (UInt64, UnsafeBufferPointer<RawLabel>) -> Void) throws(WALRecordError) {
        var labels: [RawLabel] = []
        while position < bytes.count {
            let ref = try readBigEndian()
            let count = try readUvarint()
            guard count <= UInt64(bytes.count) else { throw .malformed("label count \(count)") }
            labels.removeAll(keepingCapacity: true)
            for _ in 0..<count { labels.append(RawLabel(name: try readBytes(), value: try readBytes())) }
            labels.withUnsafeBufferPointer { body(ref, $0) }
        }
    }

    mutating func forEachSample(_ body: (UInt64, Int64, UInt64) -> Void) throws(WALRecordError) {
        guard let base = try readBase() else { return }
        while position < bytes.count {
            let (ref, timestamp) = try readEntryKey(base)
            body(ref, timestamp, try readBigEndian())
        }
    }

    /// The base ref and time of a Samples or HistogramSamples record; nil for an empty record.
    private mutating func readBase() throws(WALRecordError) -> (ref: UInt64, timestamp: Int64)? {
        guard position < bytes.count else { return nil }
        return (try readBigEndian(), Int64(bitPattern: try readBigEndian()))
    }

    /// An entry's ref and time, deltas from the record's base.
    private mutating func readEntryKey(_ base: (ref: UInt64, timestamp: Int64)) throws(WALRecordError) -> (UInt64, Int64) {
        let dref = try readVarint()
        let dt = try readVarint()
        return (base.ref &+ UInt64(bitPattern: dref), base.timestamp &+ dt)
    }

    /// Each sample of a HistogramSamples (`H` integer) or FloatHistogramSamples (`H` float)
    /// record. Counts of spans and buckets are checked against the bytes left (each takes at
    /// least one) before anything is reserved; a span offset or length outside 32 bits is
    /// malformed (Go would cut it).
    mutating func forEachHistogramSample<H: StoredHistogram>(_ body: (UInt64, Int64, H) -> Void) throws(WALRecordError) {
        guard let base = try readBase() else { return }
        while position < bytes.count {
            let (ref, timestamp) = try readEntryKey(base)
            var h = H()
            guard position < bytes.count else { throw .malformed("truncated histogram") }
            h.counterResetHint = bytes[position]
            position += 1
            let schema = try readVarint()
            guard let schema32 = Int32(exactly: schema) else { throw .malformed("histogram schema \(schema)") }
            h.schema = schema32
            h.zeroThresholdBits = try readBigEndian()
            let zero = try readWord(H.self), count = try readWord(H.self)
            h.countWords = (zero, count)
            h.sumBits = try readBigEndian()
            h.positiveSpans = try readSpans()
            h.negativeSpans = try readSpans()
            let positive = try readBuckets(H.self), negative = try readBuckets(H.self)
            h.bucketWords = (positive, negative)
            body(ref, timestamp, h)
        }
    }

    private mutating func readCount(_ what: StaticString) throws(WALRecordError) -> Int {
        let n = try readUvarint()
        guard n <= UInt64(bytes.count - position) else { throw .malformed("\(what) count \(n) past the record") }
        return Int(n)
    }

    private mutating func readSpans() throws(WALRecordError) -> [HistogramSpan] {
        let n = try readCount("span")
        var spans: [HistogramSpan] = []
        spans.reserveCapacity(n)
        for _ in 0..<n {
            let offset = try readVarint(), length = try readUvarint()
            guard let offset32 = Int32(exactly: offset), let length32 = UInt32(exactly: length) else {
                throw .malformed("histogram span \(offset):\(length)")
            }
            spans.append(HistogramSpan(offset: offset32, length: length32))
        }
        return spans
    }

    /// A count: a float's big-endian bits, or an integer's uvarint.
    private mutating func readWord<H: StoredHistogram>(_: H.Type) throws(WALRecordError) -> UInt64 {
        H.wordsAreFloatBits ? try readBigEndian() : try readUvarint()
    }

    /// A side's buckets: floats' big-endian bits, or integer deltas as varints.
    private mutating func readBuckets<H: StoredHistogram>(_: H.Type) throws(WALRecordError) -> [UInt64] {
        let n = try readCount("bucket")
        var words: [UInt64] = []
        words.reserveCapacity(n)
        for _ in 0..<n { words.append(H.wordsAreFloatBits ? try readBigEndian() : UInt64(bitPattern: try readVarint())) }
        return words
    }

    mutating func forEachTombstone(_ body: (UInt64, DeletedInterval) -> Void) throws(WALRecordError) {
        while position < bytes.count {
            let ref = try readBigEndian()
            let minTime = try readVarint(), maxTime = try readVarint()
            body(ref, DeletedInterval(minTime: minTime, maxTime: maxTime))
        }
    }

    private mutating func readBigEndian() throws(WALRecordError) -> UInt64 {
        guard bytes.count - position >= 8 else { throw .malformed("truncated u64") }
        let v = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        position += 8
        return v
    }

    private mutating func readUvarint() throws(WALRecordError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count && shift < 64 {
            let b = bytes[position]
            position += 1
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        throw .malformed("truncated varint")
    }

    private mutating func readVarint() throws(WALRecordError) -> Int64 {
        let u = try readUvarint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    /// A length-prefixed string's bytes, borrowed from the record.
    private mutating func readBytes() throws(WALRecordError) -> UnsafeRawBufferPointer {
        let n = try readUvarint()
        guard n <= UInt64(bytes.count - position) else { throw .malformed("string overruns record") }
        let s = UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(n)])
        position += Int(n)
        return s
    }
}
