#if canImport(Glibc)
import Glibc
#endif

/// Label rules of Remote-Write 1.0 as Tally applies them (README.md, "What the receiver answers"):
/// empty names, duplicate names, invalid UTF-8, names outside Prometheus' character set, a missing
/// or malformed `__name__` and labels past `LabelLimits` reject the series; empty values are
/// dropped (Prometheus treats them as absent); unsorted labels are sorted.
enum LabelValidator {
    static let metricName = Array("__name__".utf8)

    static func validate(_ view: inout WriteRequestView, limits: LabelLimits, _ bytes: UnsafeBufferPointer<UInt8>) {
        for index in view.series.indices { validate(&view, seriesAt: index, limits: limits, bytes) }
    }

    static func validate(_ view: inout WriteRequestView, seriesAt index: Int, limits: LabelLimits, _ bytes: UnsafeBufferPointer<UInt8>) {
        var series = view.series[index]
        // A rule the decoder already applied (Remote-Write 2.0's sorted, non-empty labels) stands.
        series.rejection = series.rejection ?? normalize(&view.labels, &series, limits, bytes)
        view.series[index] = series
    }

    private static func normalize(_ labels: inout [WireLabel], _ series: inout WireSeries, _ limits: LabelLimits,
                                  _ bytes: UnsafeBufferPointer<UInt8>) -> SeriesRejection? {
        let start = Int(series.labelStart)
        var kept = start
        for i in start..<start + Int(series.labelCount) {
            let label = labels[i]
            if label.name.count == 0 { return .emptyLabelName }
            if Int(label.name.count) > limits.maxLabelNameLength { return .labelNameTooLong }
            if Int(label.value.count) > limits.maxLabelValueLength { return .labelValueTooLong }
            if !isValidUTF8(bytes, label.name.range) || !isValidUTF8(bytes, label.value.range) { return .invalidUTF8 }
            if !isLegacyName(bytes, label.name.range, colons: false) { return .invalidLabelName }
            if label.value.count == 0 { continue }
            labels[kept] = label
            kept += 1
        }
        if kept - start > limits.maxLabelNamesPerSeries { return .tooManyLabels }
        series.labelCount = Int32(kept - start)
        let slice = start..<kept
        if !isSorted(labels, slice, bytes) {
            labels[slice].sort { compare(bytes, $0.name, $1.name) < 0 }
        }
        var name: ByteSpan?
        for i in slice {
            if i > start && compare(bytes, labels[i - 1].name, labels[i].name) == 0 { return .duplicateLabelName }
            if equals(bytes, labels[i].name, metricName) { name = labels[i].value }
        }
        guard let name else { return .missingMetricName }
        return isLegacyName(bytes, name.range, colons: true) ? nil : .invalidMetricName
    }

    /// Prometheus' label name rule `[a-zA-Z_][a-zA-Z0-9_]*`, with `:` also allowed for metric names.
    /// Names outside it cannot be written in PromQL or in the text formats Tally prints.
    static func isLegacyName(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, colons: Bool) -> Bool {
        guard !range.isEmpty else { return false }
        for i in range {
            switch bytes[i] {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"): continue
            case UInt8(ascii: "0")...UInt8(ascii: "9") where i != range.lowerBound: continue
            case UInt8(ascii: ":") where colons: continue
            default: return false
            }
        }
        return true
    }

    private static func isSorted(_ labels: [WireLabel], _ range: Range<Int>, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = range.lowerBound + 1
        while i < range.upperBound {
            if compare(bytes, labels[i - 1].name, labels[i].name) > 0 { return false }
            i += 1
        }
        return true
    }

    /// Byte-wise comparison, the order Prometheus sorts label names in.
    @inline(__always)
    static func compare(_ bytes: UnsafeBufferPointer<UInt8>, _ a: ByteSpan, _ b: ByteSpan) -> Int {
        let n = Int(min(a.count, b.count))
        let base = bytes.baseAddress!
        let left = base + Int(a.start), right = base + Int(b.start)
        // Label names usually differ in their first bytes: a loop there saves memcmp's call.
        for i in 0..<min(n, 8) where left[i] != right[i] { return Int(left[i]) - Int(right[i]) }
        if n > 8 {
            let c = memcmp(left + 8, right + 8, n - 8)
            if c != 0 { return Int(c) }
        }
        return Int(a.count) - Int(b.count)
    }

    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ a: ByteSpan, _ literal: [UInt8]) -> Bool {
        guard Int(a.count) == literal.count else { return false }
        return literal.withUnsafeBufferPointer { memcmp(bytes.baseAddress! + Int(a.start), $0.baseAddress!, literal.count) == 0 }
    }
}

/// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), with an ASCII fast path.
func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
    var i = range.lowerBound
    let end = range.upperBound
    while i < end {
        // Eight ASCII bytes at a time: label names and most values are ASCII.
        if end - i >= 8, UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            i += 8
            continue
        }
        let b0 = bytes[i]
        if b0 < 0x80 { i += 1; continue }
        let need: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; upper = 0x9F
        case 0xF0: need = 3; lower = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; upper = 0x8F
        default: return false
        }
        guard end - i > need else { return false }
        let b1 = bytes[i + 1]
        if b1 < lower || b1 > upper { return false }
        for k in 2..<(need + 1) where bytes[i + k] & 0xC0 != 0x80 { return false }
        i += need + 1
    }
    return true
}
