import XCTest
import RemoteWriteProtobufC
import TallyTestSupport
import TallyWire

/// A native histogram as a decoder read it, every field by value (doubles as bits, so NaN compares
/// equal to itself): what Tally's in-place reading and protobuf-c's struct must agree on.
struct DecodedHistogram: Equatable, CustomStringConvertible {
    struct Span: Equatable {
        var offset: Int32
        var length: UInt32
    }

    var isFloat = false
    var count: UInt64 = 0
    var sum: UInt64 = 0
    var schema: Int32 = 0
    var zeroThreshold: UInt64 = 0
    var zeroCountIsFloat = false
    var zeroCount: UInt64 = 0
    var resetHint: Int32 = 0
    var timestamp: Int64 = 0
    var negativeSpans: [Span] = []
    var negativeDeltas: [Int64] = []
    var negativeCounts: [UInt64] = []
    var positiveSpans: [Span] = []
    var positiveDeltas: [Int64] = []
    var positiveCounts: [UInt64] = []
    var customValues: [UInt64] = []

    var description: String {
        "h(\(isFloat ? "float" : "int") count \(count) schema \(schema) zero \(zeroCount) spans \(negativeSpans.map { "\($0.offset):\($0.length)" })/\(positiveSpans.map { "\($0.offset):\($0.length)" }) deltas \(negativeDeltas)/\(positiveDeltas) counts \(negativeCounts.count)/\(positiveCounts.count) custom \(customValues.count) t \(timestamp))"
    }

    /// Tally's reading, through the view's public accessors.
    init(_ view: WriteRequestView, _ h: WireHistogram) {
        isFloat = h.isFloat
        count = h.countBits
        sum = h.sumBits
        schema = h.schema
        zeroThreshold = h.zeroThresholdBits
        zeroCountIsFloat = h.zeroCountIsFloat
        zeroCount = h.zeroCountBits
        resetHint = h.resetHint
        timestamp = h.timestamp
        view.forEachSpan(of: h, .negative) { negativeSpans.append(Span(offset: $0, length: $1)) }
        view.forEachSpan(of: h, .positive) { positiveSpans.append(Span(offset: $0, length: $1)) }
        view.forEachDelta(of: h, .negative) { negativeDeltas.append($0) }
        view.forEachDelta(of: h, .positive) { positiveDeltas.append($0) }
        view.forEachCount(of: h, .negative) { negativeCounts.append($0.bitPattern) }
        view.forEachCount(of: h, .positive) { positiveCounts.append($0.bitPattern) }
        view.forEachCustomValue(of: h) { customValues.append($0.bitPattern) }
        // The counts the view keeps must match what it reads.
        precondition(h.negativeSpanCount == negativeSpans.count && h.positiveSpanCount == positiveSpans.count
            && h.negativeDeltaCount == negativeDeltas.count && h.positiveDeltaCount == positiveDeltas.count
            && h.negativeCountCount == negativeCounts.count && h.positiveCountCount == positiveCounts.count
            && h.customValueCount == customValues.count, "WireHistogram's counts differ from its buckets")
    }

    init() {}

    /// protobuf-c's reading of either version's message.
    init<C: ProtobufCHistogram>(protobufC h: C) {
        isFloat = h.countIsFloat
        count = h.countIsFloat ? h.count_float.bitPattern : h.count_int
        sum = h.sum.bitPattern
        schema = h.schema
        zeroThreshold = h.zero_threshold.bitPattern
        zeroCountIsFloat = h.zeroCountIsFloat
        zeroCount = h.zeroCountIsFloat ? h.zero_count_float.bitPattern : h.zero_count_int
        resetHint = h.resetHintNumber
        timestamp = h.timestamp
        func spans(_ n: Int, _ p: UnsafeMutablePointer<UnsafeMutablePointer<C.Span>?>?) -> [Span] {
            (0..<n).map { Span(offset: p![$0]!.pointee.offset, length: p![$0]!.pointee.length) }
        }
        func values<T>(_ n: Int, _ p: UnsafeMutablePointer<T>?) -> [T] { (0..<n).map { p![$0] } }
        negativeSpans = spans(h.n_negative_spans, h.negative_spans)
        positiveSpans = spans(h.n_positive_spans, h.positive_spans)
        negativeDeltas = values(h.n_negative_deltas, h.negative_deltas)
        positiveDeltas = values(h.n_positive_deltas, h.positive_deltas)
        negativeCounts = values(h.n_negative_counts, h.negative_counts).map(\.bitPattern)
        positiveCounts = values(h.n_positive_counts, h.positive_counts).map(\.bitPattern)
        customValues = values(h.n_custom_values, h.custom_values).map(\.bitPattern)
    }
}

/// The C structs protoc-c generates for 1.0's and 2.0's `Histogram` and `BucketSpan`: the same
/// fields under two names.
protocol ProtobufCSpan {
    var offset: Int32 { get }
    var length: UInt32 { get }
}

protocol ProtobufCHistogram {
    associatedtype Span: ProtobufCSpan
    var sum: Double { get }
    var schema: Int32 { get }
    var zero_threshold: Double { get }
    var timestamp: Int64 { get }
    var count_int: UInt64 { get }
    var count_float: Double { get }
    var zero_count_int: UInt64 { get }
    var zero_count_float: Double { get }
    var n_negative_spans: Int { get }
    var negative_spans: UnsafeMutablePointer<UnsafeMutablePointer<Span>?>! { get }
    var n_positive_spans: Int { get }
    var positive_spans: UnsafeMutablePointer<UnsafeMutablePointer<Span>?>! { get }
    var n_negative_deltas: Int { get }
    var negative_deltas: UnsafeMutablePointer<Int64>! { get }
    var n_positive_deltas: Int { get }
    var positive_deltas: UnsafeMutablePointer<Int64>! { get }
    var n_negative_counts: Int { get }
    var negative_counts: UnsafeMutablePointer<Double>! { get }
    var n_positive_counts: Int { get }
    var positive_counts: UnsafeMutablePointer<Double>! { get }
    var n_custom_values: Int { get }
    var custom_values: UnsafeMutablePointer<Double>! { get }
    var countIsFloat: Bool { get }
    var zeroCountIsFloat: Bool { get }
    var resetHintNumber: Int32 { get }
}

extension Prometheus__BucketSpan: ProtobufCSpan {}
extension Io__Prometheus__Write__V2__BucketSpan: ProtobufCSpan {}

extension Prometheus__Histogram: ProtobufCHistogram {
    var countIsFloat: Bool { count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT }
    var zeroCountIsFloat: Bool { zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT }
    var resetHintNumber: Int32 { Int32(bitPattern: reset_hint.rawValue) }
}

extension Io__Prometheus__Write__V2__Histogram: ProtobufCHistogram {
    var countIsFloat: Bool { count_case == IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_FLOAT }
    var zeroCountIsFloat: Bool { zero_count_case == IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT }
    var resetHintNumber: Int32 { Int32(bitPattern: reset_hint.rawValue) }
}

/// Whether a request with this histogram is taken: the rules Prometheus applies
/// (`model/histogram` `Validate`), written out again here on plain arrays with 128-bit arithmetic,
/// to check `HistogramValidator`'s in-place, overflow-checked reading.
enum HistogramVerdict: Equatable {
    case valid, customBuckets, invalid

    init(_ h: DecodedHistogram) {
        if h.schema == -53 {
            self = .customBuckets
            return
        }
        self = Self.follows(h) ? .valid : .invalid
    }

    private static func follows(_ h: DecodedHistogram) -> Bool {
        guard (-4...8).contains(h.schema), h.customValues.isEmpty else { return false }
        func spansFit(_ spans: [DecodedHistogram.Span], _ buckets: Int) -> Bool {
            spans.dropFirst().allSatisfy { $0.offset >= 0 } && spans.reduce(Int128(0)) { $0 + Int128($1.length) } == Int128(buckets)
        }
        if h.isFloat {
            let zero = h.zeroCountIsFloat ? Double(bitPattern: h.zeroCount) : 0
            let counts = (h.negativeCounts + h.positiveCounts).map { Double(bitPattern: $0) }
            return spansFit(h.positiveSpans, h.positiveCounts.count) && spansFit(h.negativeSpans, h.negativeCounts.count)
                && !(zero < 0) && !(Double(bitPattern: h.count) < 0) && !counts.contains { $0 < 0 }
        }
        guard spansFit(h.positiveSpans, h.positiveDeltas.count), spansFit(h.negativeSpans, h.negativeDeltas.count) else { return false }
        var total = Int128(h.zeroCountIsFloat ? 0 : h.zeroCount)
        for deltas in [h.negativeDeltas, h.positiveDeltas] {
            var count = Int128(0)
            for delta in deltas {
                count += Int128(delta)
                guard count >= 0, count <= Int128(Int64.max) else { return false }
                total += count
            }
        }
        return Double(bitPattern: h.sum).isNaN ? total <= Int128(h.count) : total == Int128(h.count)
    }
}

/// Writes native histograms in the layouts protobuf allows (fields in any order, repeated scalars
/// packed, one a field or split over several fields, oneof members overridden, defaults written or
/// left out, unknown fields), most of them valid, the rest breaking one rule of `HistogramVerdict`.
enum HistogramWriter {
    /// Appends one histogram message as field `field` of `w`; returns what it holds.
    static func write(_ w: inout ProtobufWriter, field: UInt64, _ random: inout SeededGenerator) -> DecodedHistogram {
        func count(_ max: Int) -> Int { Int.random(in: 0...max, using: &random) }
        func chance(_ oneIn: Int) -> Bool { Int.random(in: 0..<oneIn, using: &random) == 0 }
        var h = DecodedHistogram()
        h.isFloat = chance(2)
        h.schema = chance(20) ? Int32(truncatingIfNeeded: random.next()) : chance(25) ? -53 : Int32(count(12)) - 4
        h.sum = chance(8) ? Double.nan.bitPattern : Double(count(1000)).bitPattern
        h.zeroThreshold = chance(2) ? 0 : (1e-128).bitPattern
        h.resetHint = chance(20) ? Int32(count(100)) : Int32(count(3))
        h.timestamp = chance(10) ? Int64(bitPattern: random.next()) : 1_700_000_000_000 + Int64(count(100_000))
        var total = Int128(0)
        for side in 0..<2 {
            var spans: [DecodedHistogram.Span] = []
            for k in 0..<count(3) {
                let offset = k == 0 ? Int32(count(10)) - 5 : (chance(30) ? -1 : Int32(count(3)))
                spans.append(.init(offset: offset, length: chance(40) ? UInt32.max : UInt32(count(4))))
            }
            var buckets = spans.reduce(0) { $0 + Int(min($1.length, 8)) }
            if chance(30) { buckets += chance(2) ? 1 : -min(buckets, 1) }
            var absolute = (0..<buckets).map { _ in Int64(count(20)) }
            if chance(30), !absolute.isEmpty { absolute[count(absolute.count - 1)] = -1 }
            if chance(40), !absolute.isEmpty { absolute[count(absolute.count - 1)] = Int64.max - Int64(count(2)) }
            total += absolute.reduce(Int128(0)) { $0 + Int128($1) }
            var deltas: [Int64] = [], counts: [UInt64] = []
            var previous: Int64 = 0
            for c in absolute {
                deltas.append(c &- previous)
                previous = c
                counts.append((chance(50) ? Double.nan : Double(c)).bitPattern)
            }
            if h.isFloat { counts = counts.map { chance(3) ? (Double(bitPattern: $0) + 0.5).bitPattern : $0 } }
            // The side a histogram's kind does not use may still be sent: it is read and ignored.
            if h.isFloat { deltas = chance(10) ? deltas : [] } else { counts = chance(10) ? counts : [] }
            if side == 0 {
                (h.negativeSpans, h.negativeDeltas, h.negativeCounts) = (spans, deltas, counts)
            } else {
                (h.positiveSpans, h.positiveDeltas, h.positiveCounts) = (spans, deltas, counts)
            }
        }
        let zero = Int64(count(5))
        total += Int128(zero)
        h.zeroCountIsFloat = h.isFloat != chance(15)
        h.zeroCount = h.zeroCountIsFloat ? (chance(30) ? -1.0 : Double(zero)).bitPattern : UInt64(zero)
        if !h.isFloat && h.zeroCountIsFloat { total -= Int128(zero) }
        if h.isFloat {
            h.count = (chance(30) ? -2.0 : Double(total)).bitPattern
        } else {
            let exact = UInt64(clamping: total)
            h.count = chance(30) ? exact &+ (chance(2) ? 1 : UInt64.max) : (Double(bitPattern: h.sum).isNaN ? exact &+ UInt64(count(2)) : exact)
        }
        if chance(30) { h.customValues = (0..<1 + count(3)).map { Double($0).bitPattern } }
        layOut(h, &w, field: field, &random)
        return h
    }

    private static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    private static func zigzag32(_ v: Int32) -> UInt64 { UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))) }

    private static func layOut(_ h: DecodedHistogram, _ w: inout ProtobufWriter, field: UInt64, _ random: inout SeededGenerator) {
        func chance(_ oneIn: Int) -> Bool { Int.random(in: 0..<oneIn, using: &random) == 0 }
        typealias Write = (inout ProtobufWriter) -> Void
        var fields: [Write] = []
        func scalar(_ number: UInt64, _ value: UInt64, fixed: Bool, isDefault: Bool) {
            if isDefault && chance(2) { return }
            fields.append { fixed ? $0.fixed64Field(number, value) : $0.varintField(number, value) }
        }
        // A oneof: sometimes the other member first, which the later one replaces.
        func oneof(_ intNumber: UInt64, _ isFloat: Bool, _ bits: UInt64) {
            var writes: [Write] = []
            if chance(8) { writes.append { isFloat ? $0.varintField(intNumber, 7) : $0.fixed64Field(intNumber + 1, 7) } }
            writes.append { isFloat ? $0.fixed64Field(intNumber + 1, bits) : $0.varintField(intNumber, bits) }
            fields.append { w in for write in writes { write(&w) } }
        }
        oneof(1, h.isFloat, h.count)
        oneof(6, h.zeroCountIsFloat, h.zeroCount)
        scalar(3, h.sum, fixed: true, isDefault: h.sum == 0)
        scalar(4, zigzag32(h.schema), fixed: false, isDefault: h.schema == 0)
        scalar(5, h.zeroThreshold, fixed: true, isDefault: h.zeroThreshold == 0)
        scalar(14, UInt64(bitPattern: Int64(h.resetHint)), fixed: false, isDefault: h.resetHint == 0)
        scalar(15, UInt64(bitPattern: h.timestamp), fixed: false, isDefault: h.timestamp == 0)
        // Repeated fields (spans, then scalars): runs in order. A scalar run is packed or one a
        // field; the parts of a run may be split by other fields, since only their order within
        // the field matters.
        var runs: [[Write]] = []
        for (number, spans) in [(UInt64(8), h.negativeSpans), (11, h.positiveSpans)] {
            var run: [Write] = []
            for span in spans {
                let offset = zigzag32(span.offset), length = UInt64(span.length), unknown = chance(10)
                run.append { w in
                    w.messageField(number) { s in
                        if span.offset != 0 || unknown { s.varintField(1, offset) }
                        if unknown { s.fixed64Field(9, 1) }
                        if span.length != 0 || unknown { s.varintField(2, length) }
                    }
                }
            }
            runs.append(run)
        }
        for (number, values, fixed) in [(UInt64(9), h.negativeDeltas.map(zigzag), false), (12, h.positiveDeltas.map(zigzag), false),
                                        (10, h.negativeCounts, true), (13, h.positiveCounts, true), (16, h.customValues, true)] {
            var run: [Write] = []
            var rest = values[...]
            while !rest.isEmpty {
                let take = Int.random(in: 1...rest.count, using: &random)
                let chunk = Array(rest.prefix(take))
                rest = rest.dropFirst(take)
                if chance(2) {
                    var packed = ProtobufWriter()
                    for v in chunk {
                        if fixed { packed.bytes += (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } } else { packed.varint(v) }
                    }
                    run.append { $0.bytesField(number, packed.bytes) }
                } else {
                    run.append { w in for v in chunk { fixed ? w.fixed64Field(number, v) : w.varintField(number, v) } }
                }
            }
            if values.isEmpty && chance(10) { run.append { $0.bytesField(number, []) } }
            runs.append(run)
        }
        fields.shuffle(using: &random)
        // Each run's parts go in order, at random places among the other fields.
        for run in runs {
            var at = 0
            for part in run {
                at = Int.random(in: at...fields.count, using: &random)
                fields.insert(part, at: at)
                at += 1
            }
        }
        if chance(8) { fields.insert({ $0.bytesField(40, Array("unknown".utf8)) }, at: Int.random(in: 0...fields.count, using: &random)) }
        w.messageField(field) { m in for write in fields { write(&m) } }
    }
}

/// What a whole request comes to once its histograms are checked: the first histogram (series by
/// series, in order) that breaks a rule decides.
enum HistogramRequestVerdict: Hashable {
    case accepted, customBuckets, invalidHistogram, unreadable

    /// The oracle's verdict on histograms read by protobuf-c or written by the generator.
    init(_ histogramsBySeries: [[DecodedHistogram]]) {
        self = .accepted
        for histogram in histogramsBySeries.joined() {
            switch HistogramVerdict(histogram) {
            case .valid: continue
            case .customBuckets: self = .customBuckets
            case .invalid: self = .invalidHistogram
            }
            return
        }
    }

    /// Tally's verdict: how `decode` ends.
    init(tally decode: () throws(WireError) -> Void) {
        do throws(WireError) {
            try decode()
            self = .accepted
        } catch {
            switch error {
            case .histogramCustomBuckets: self = .customBuckets
            case .invalidHistogram: self = .invalidHistogram
            default: self = .unreadable
            }
        }
    }

    /// Enough generated requests with histograms of each verdict to compare.
    static func assertExercised(_ counts: [Self: Int], file: StaticString = #filePath, line: UInt = #line) {
        for verdict: Self in [.accepted, .customBuckets, .invalidHistogram] {
            XCTAssertGreaterThan(counts[verdict] ?? 0, 20, "requests with histograms that come to \(verdict)", file: file, line: line)
        }
    }
}
