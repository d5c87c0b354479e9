/// Prometheus' rules for a native histogram (`model/histogram` `Histogram.Validate` and
/// `FloatHistogram.Validate`, v2.49 and later, which tightened 2.42's `ValidateHistogram`), checked
/// on the wire form in place. A histogram that breaks one makes the whole request unreadable: 400,
/// nothing of it stored, as Prometheus rolls back the request's appender.
///
/// - schema: -4...8 (exponential buckets); -53 (custom buckets) is refused as not supported here.
/// - spans: every offset but the first is >= 0; the lengths add up to the number of buckets (deltas
///   for an integer histogram, counts for a float one).
/// - buckets: no absolute count below 0 (integer: the running sum of the deltas); a float NaN count
///   is not below 0 and passes, as in Prometheus. Float zero count and count are not below 0.
/// - integer count: the buckets plus the zero bucket add up to `count` exactly, or, when `sum` is
///   NaN (a NaN observation counts but lands in no bucket), to at most `count`.
/// - no `custom_values` with an exponential schema.
///
/// Every client value is added with overflow checks: a running bucket count past Int64 is refused,
/// and bucket totals past UInt64 exceed any count.
enum HistogramValidator {
    static let schemas: ClosedRange<Int32> = -4...8
    static let customBucketsSchema: Int32 = -53

    /// Checks every histogram of `view`; the error names the series and the histogram's timestamp.
    static func validate(_ view: WriteRequestView, _ bytes: UnsafeBufferPointer<UInt8>) throws(WireError) {
        for (index, series) in view.series.enumerated() where series.histogramCount > 0 {
            for histogram in view.histograms(of: series) {
                guard let problem = check(histogram, bytes) else { continue }
                let place = "series \(index) \(describeLabels(view, series, bytes)), histogram at \(histogram.timestamp)"
                if problem == .customBuckets {
                    throw .histogramCustomBuckets(place)
                }
                throw .invalidHistogram("\(place): \(problem.reason)")
            }
        }
    }

    enum Problem: Equatable {
        case customBuckets
        case invalid(String)

        var reason: String {
            switch self {
            case .customBuckets: "custom buckets not supported"
            case let .invalid(why): why
            }
        }
    }

    /// The first rule `h` breaks, in Prometheus' order, or nil.
    static func check(_ h: WireHistogram, _ bytes: UnsafeBufferPointer<UInt8>) -> Problem? {
        if h.schema == customBucketsSchema { return .customBuckets }
        guard schemas.contains(h.schema) else {
            return .invalid("histogram has an invalid schema, which must be between -4 and 8 for exponential buckets, got schema \(h.schema)")
        }
        if let problem = spans(h, .positive, bytes) { return .invalid("positive side: \(problem)") }
        if let problem = spans(h, .negative, bytes) { return .invalid("negative side: \(problem)") }
        let negative = buckets(h, .negative, bytes)
        if let problem = negative.problem { return .invalid("negative side: \(problem)") }
        if h.isFloat && h.zeroCountFloat < 0 {
            return .invalid("zero bucket has observation count of \(h.zeroCountFloat): \(negativeBucket)")
        }
        if h.customValueCount > 0 { return .invalid("histogram with exponential schema must not have custom bounds") }
        if h.isFloat && h.countFloat < 0 {
            return .invalid("observation count is \(h.countFloat): histogram's observation count is negative")
        }
        let positive = buckets(h, .positive, bytes)
        if let problem = positive.problem { return .invalid("positive side: \(problem)") }
        if h.isFloat { return nil }
        // Integer histogram: the observations in buckets against the count.
        let (sides, o1) = negative.total.addingReportingOverflow(positive.total)
        let (total, o2) = sides.addingReportingOverflow(h.zeroCountInt)
        let found = o1 || o2 || negative.overflow || positive.overflow ? "more than \(UInt64.max)" : "\(total)"
        let exceeds = o1 || o2 || negative.overflow || positive.overflow || total > h.countInt
        if h.sum.isNaN {
            if exceeds {
                return .invalid("\(found) observations found in buckets, but the Count field is \(h.countInt): histogram's observation count should be at least the number of observations found in the buckets")
            }
        } else if exceeds || total != h.countInt {
            return .invalid("\(found) observations found in buckets, but the Count field is \(h.countInt): histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)")
        }
        return nil
    }

    private static let negativeBucket = "histogram has a bucket whose observation count is negative"

    private static func spans(_ h: WireHistogram, _ side: WireHistogram.Side, _ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var number = 0, needed: UInt64 = 0, overflow = false
        var problem: String?
        WireHistogram.forEachSpan(side, in: bytes, h.message.range) { offset, length in
            guard problem == nil else { return }
            number += 1
            if number > 1 && offset < 0 {
                problem = "span number \(number) with offset \(offset): histogram has a span whose offset is negative"
            }
            let (sum, o) = needed.addingReportingOverflow(UInt64(length))
            needed = sum
            overflow = overflow || o
        }
        if let problem { return problem }
        let have = h.bucketCount(side)
        if overflow || needed != UInt64(have) {
            return "spans need \(overflow ? "more than \(UInt64.max)" : "\(needed)") buckets, have \(have) buckets: histogram spans specify different number of buckets than provided"
        }
        return nil
    }

    /// The absolute counts of `side` checked against 0; for an integer histogram also their total
    /// (`overflow` when it passes UInt64).
    private static func buckets(_ h: WireHistogram, _ side: WireHistogram.Side,
                                _ bytes: UnsafeBufferPointer<UInt8>) -> (problem: String?, total: UInt64, overflow: Bool) {
        var problem: String?
        var number = 0
        if h.isFloat {
            WireHistogram.forEach(WireHistogram.Field.counts(side), in: bytes, h.message.range) { bits in
                number += 1
                let count = Double(bitPattern: bits)
                if problem == nil && count < 0 { problem = "bucket number \(number) has observation count of \(count): \(negativeBucket)" }
            }
            return (problem, 0, false)
        }
        var last: Int64 = 0, total: UInt64 = 0, overflow = false
        WireHistogram.forEach(WireHistogram.Field.deltas(side), in: bytes, h.message.range) { raw in
            guard problem == nil else { return }
            number += 1
            let (count, o) = last.addingReportingOverflow(WireHistogram.unzigzag64(raw))
            if o {
                problem = "bucket number \(number): the running sum of the deltas overflows int64"
            } else if count < 0 {
                problem = "bucket number \(number) has observation count of \(count): \(negativeBucket)"
            }
            last = count
            let (sum, o2) = total.addingReportingOverflow(UInt64(clamping: count))
            total = sum
            overflow = overflow || o2
        }
        return (problem, total, overflow)
    }

    /// `{name="value", ...}` of a series as it arrived, for an error message (at most 256 bytes of it).
    private static func describeLabels(_ view: WriteRequestView, _ series: WireSeries, _ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var text = ""
        for label in view.labels(of: series) {
            if !text.isEmpty { text += ", " }
            text += String(decoding: bytes[label.name.range], as: UTF8.self) + "=\"" + String(decoding: bytes[label.value.range], as: UTF8.self) + "\""
            if text.utf8.count > 256 {
                text = String(decoding: text.utf8.prefix(256), as: UTF8.self) + "..."
                break
            }
        }
        return "{" + text + "}"
    }
}
