/// The timestamps the storage keeps: milliseconds since the epoch of magnitude at most 2^53, about
/// 285,000 years either side of 1970. Inside this range the difference of two timestamps, a
/// timestamp plus a block range and the aligned range around a timestamp all fit in Int64, so head,
/// block and compaction arithmetic cannot overflow; and every timestamp is exact as a Float64, the
/// form PromQL and JSON give it. Appends outside it are refused; replay skips such records.
public enum StorableTime {
    public static let range: ClosedRange<Int64> = -(Int64(1) << 53) ... (Int64(1) << 53)
    /// What a block's `meta.json` may say: its range rounds its samples' times out to whole block
    /// ranges, far less than the width of `range` past them.
    public static let blockRange: ClosedRange<Int64> = range.lowerBound * 2 ... range.upperBound * 2

    /// `t - duration`, or the oldest Int64 when that would overflow (a window larger than all time).
    public static func subtracting(_ duration: Int64, from t: Int64) -> Int64 {
        let (value, overflow) = t.subtractingReportingOverflow(duration)
        return overflow ? (duration > 0 ? .min : .max) : value
    }

    /// `t + duration`, or the newest Int64 when that would overflow.
    public static func adding(_ duration: Int64, to t: Int64) -> Int64 {
        let (value, overflow) = t.addingReportingOverflow(duration)
        return overflow ? (duration > 0 ? .max : .min) : value
    }
}
