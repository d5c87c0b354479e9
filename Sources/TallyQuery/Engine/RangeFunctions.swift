import Foundation

/// What a range-vector function sees besides the window's samples.
struct RangeContext {
    let ts: Int64
    let range: Int64
    let offset: Int64
    /// The scalar arguments' values at this step, by argument position.
    let scalars: [Int: Double]
}

/// The functions over a range vector, as Prometheus 2.42 computes them: each takes one series'
/// samples in the window (never empty) and gives the step's value, or nil for none.
enum RangeFunctions {
    /// A window's samples, read in place.
    typealias Window = UnsafeBufferPointer<Point>
    typealias Function = (Window, RangeContext) throws(EvalFailure) -> Double?

    static func function(_ name: String) throws(EvalFailure) -> Function {
        switch name {
        case "avg_over_time": return { p, _ in average(p) }
        case "count_over_time": return { p, _ in Double(p.count) }
        case "last_over_time": return { p, _ in p[p.count - 1].value }
        case "max_over_time":
            return { p, _ in p.reduce(p[0].value) { m, x in x.value > m || m.isNaN ? x.value : m } }
        case "min_over_time":
            return { p, _ in p.reduce(p[0].value) { m, x in x.value < m || m.isNaN ? x.value : m } }
        case "sum_over_time":
            return { p, _ in
                var sum = KahanSum()
                sum.add(p[...])
                return sum.value
            }
        case "quantile_over_time": return { p, c in quantile(c.scalars[0] ?? .nan, p.map(\.value)) }
        case "stddev_over_time": return { p, _ in variance(p).squareRoot() }
        case "stdvar_over_time": return { p, _ in variance(p) }
        case "present_over_time", "absent_over_time": return { _, _ in 1 }
        case "changes":
            return { p, _ in
                var changes = 0
                for i in 1..<max(1, p.count) where p[i].value != p[i - 1].value && !(p[i].value.isNaN && p[i - 1].value.isNaN) { changes += 1 }
                return Double(changes)
            }
        case "resets":
            return { p, _ in
                var resets = 0
                for i in 1..<max(1, p.count) where p[i].value < p[i - 1].value { resets += 1 }
                return Double(resets)
            }
        case "delta": return { p, c in extrapolatedRate(p, c, isCounter: false, isRate: false) }
        case "rate": return { p, c in extrapolatedRate(p, c, isCounter: true, isRate: true) }
        case "increase": return { p, c in extrapolatedRate(p, c, isCounter: true, isRate: false) }
        case "irate": return { p, _ in instantValue(p, isRate: true) }
        case "idelta": return { p, _ in instantValue(p, isRate: false) }
        case "deriv":
            return { p, _ in p.count < 2 ? nil : linearRegression(p, interceptTime: p[0].timestamp).slope }
        case "predict_linear":
            return { p, c in
                guard p.count >= 2 else { return nil }
                let (slope, intercept) = linearRegression(p, interceptTime: c.ts)
                return slope * (c.scalars[1] ?? .nan) + intercept
            }
        case "holt_winters": return holtWinters
        default: throw EvalFailure.execution("function \(name) does not take a range vector")
        }
    }

    /// Neumaier's compensated sum, as Prometheus' `kahanSumInc`.
    struct KahanSum {
        var sum = 0.0
        var compensation = 0.0

        /// Neumaier's step: the part of the smaller addend that `sum + increment` lost is
        /// `(larger - t) + smaller`. Chosen by selects, not a branch: with values of both
        /// magnitudes the branch was mispredicted often enough to be most of the loop's time.
        mutating func add(_ increment: Double) {
            let t = sum + increment
            let sumIsLarger = abs(sum) >= abs(increment)
            let larger = sumIsLarger ? sum : increment, smaller = sumIsLarger ? increment : sum
            compensation += (larger - t) + smaller
            sum = t
        }

        mutating func add(_ p: Slice<Window>) {
            for x in p { add(x.value) }
        }

        var value: Double { sum.isInfinite ? sum : sum + compensation }
    }

    /// Prometheus 2.42's running mean, compensated (`funcAvgOverTime`): a divide or two a sample, and
    /// the answer 2.42 gives bit for bit. The sum divided once (what later releases compute, and
    /// faster) differs from it in the last digits and, where the values cancel, in sign or by far:
    /// 2.42 answers -5.55e-16 where the sum gives 0 for 59 minutes of `minute() - 29.5`.
    private static func average(_ p: Window) -> Double {
        var mean = RunningMean()
        mean.add(p[...])
        return mean.value
    }

    /// `average` part way through a window.
    struct RunningMean {
        var mean = KahanSum()
        var count = 0.0

        mutating func add(_ p: Slice<Window>) {
            for x in p {
                count += 1
                if mean.sum.isInfinite {
                    if x.value.isInfinite && (mean.sum > 0) == (x.value > 0) { continue }
                    if !x.value.isInfinite && !x.value.isNaN { continue }
                }
                mean.add(x.value / count - mean.sum / count)
            }
        }

        var value: Double { mean.value }
    }

    private static func variance(_ p: Window) -> Double {
        var variance = RunningVariance()
        variance.add(p[...])
        return variance.value
    }

    /// `variance` part way through a window: Welford's running mean and sum of squared
    /// differences, both compensated, as Prometheus 2.42's `funcStdvarOverTime`.
    struct RunningVariance {
        var mean = KahanSum()
        var aux = KahanSum()
        var count = 0.0

        mutating func add(_ p: Slice<Window>) {
            for x in p {
                count += 1
                let delta = x.value - (mean.sum + mean.compensation)
                mean.add(delta / count)
                aux.add(delta * (x.value - (mean.sum + mean.compensation)))
            }
        }

        var value: Double { (aux.sum + aux.compensation) / count }
    }

    /// `rate`, `increase` and `delta`: the change over the window (with counter resets added back
    /// for counters), extrapolated to the window's edges when the first and last samples lie near
    /// them, but never below zero for a counter.
    private static func extrapolatedRate(_ p: Window, _ c: RangeContext, isCounter: Bool, isRate: Bool) -> Double? {
        guard p.count >= 2 else { return nil }
        let rangeStart = c.ts.subtractingSaturated(c.range.addingSaturated(c.offset))
        let rangeEnd = c.ts.subtractingSaturated(c.offset)
        var result = p[p.count - 1].value - p[0].value
        if isCounter {
            var previous = p[0].value
            for x in p.dropFirst() {
                if x.value < previous { result += previous }
                previous = x.value
            }
        }
        var durationToStart = Double(p[0].timestamp &- rangeStart) / 1000
        let durationToEnd = Double(rangeEnd &- p[p.count - 1].timestamp) / 1000
        let sampledInterval = Double(p[p.count - 1].timestamp &- p[0].timestamp) / 1000
        let averageInterval = sampledInterval / Double(p.count - 1)
        if isCounter && result > 0 && p[0].value >= 0 {
            let durationToZero = sampledInterval * (p[0].value / result)
            if durationToZero < durationToStart { durationToStart = durationToZero }
        }
        let threshold = averageInterval * 1.1
        var extrapolateTo = sampledInterval
        extrapolateTo += durationToStart < threshold ? durationToStart : averageInterval / 2
        extrapolateTo += durationToEnd < threshold ? durationToEnd : averageInterval / 2
        var factor = extrapolateTo / sampledInterval
        if isRate { factor /= Double(c.range) / 1000 }
        return result * factor
    }

    /// `irate` and `idelta`: from the last two samples.
    private static func instantValue(_ p: Window, isRate: Bool) -> Double? {
        guard p.count >= 2 else { return nil }
        let last = p[p.count - 1], previous = p[p.count - 2]
        var result = isRate && last.value < previous.value ? last.value : last.value - previous.value
        let interval = last.timestamp &- previous.timestamp
        guard interval != 0 else { return nil }
        if isRate { result /= Double(interval) / 1000 }
        return result
    }

    /// Least squares over (seconds since `interceptTime`, value): the slope, and the value at
    /// `interceptTime`.
    static func linearRegression(_ p: Window, interceptTime: Int64) -> (slope: Double, intercept: Double) {
        var n = 0.0
        var sumX = KahanSum(), sumY = KahanSum(), sumXY = KahanSum(), sumX2 = KahanSum()
        let initial = p[0].value
        var constant = true
        for (i, x) in p.enumerated() {
            if constant && i > 0 && x.value != initial { constant = false }
            n += 1
            let seconds = Double(x.timestamp &- interceptTime) / 1000
            sumX.add(seconds)
            sumY.add(x.value)
            sumXY.add(seconds * x.value)
            sumX2.add(seconds * seconds)
        }
        if constant { return initial.isInfinite ? (.nan, .nan) : (0, initial) }
        let sx = sumX.sum + sumX.compensation, sy = sumY.sum + sumY.compensation
        let sxy = sumXY.sum + sumXY.compensation, sx2 = sumX2.sum + sumX2.compensation
        let covariance = sxy - sx * sy / n
        let varianceX = sx2 - sx * sx / n
        let slope = covariance / varianceX
        return (slope, sy / n - slope * sx / n)
    }

    /// Double exponential smoothing with smoothing factor `sf` and trend factor `tf`, both in (0, 1).
    private static func holtWinters(_ p: Window, _ c: RangeContext) throws(EvalFailure) -> Double? {
        let sf = c.scalars[1] ?? .nan, tf = c.scalars[2] ?? .nan
        // Prometheus refuses `sf <= 0 || sf >= 1`, which a NaN factor passes (the answer is NaN).
        guard !(sf <= 0 || sf >= 1) else { throw EvalFailure.execution("invalid smoothing factor. Expected: 0 < sf < 1, got: \(goFixed6(sf))") }
        guard !(tf <= 0 || tf >= 1) else { throw EvalFailure.execution("invalid trend factor. Expected: 0 < tf < 1, got: \(goFixed6(tf))") }
        guard p.count >= 2 else { return nil }
        var s0 = 0.0, s1 = p[0].value, b = p[1].value - p[0].value
        for i in 1..<p.count {
            let x = sf * p[i].value
            b = i - 1 == 0 ? b : tf * (s1 - s0) + (1 - tf) * b
            let y = (1 - sf) * (s1 + b)
            (s0, s1) = (s1, x + y)
        }
        return s1
    }

    /// Go's `%f`.
    private static func goFixed6(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        return String(format: "%f", v)
    }
}
