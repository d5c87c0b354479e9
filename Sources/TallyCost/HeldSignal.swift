import TallyStorage

/// A value held over the half-open interval [start, end) of milliseconds.
struct Step: Equatable {
    var start: Int64
    var end: Int64
    var value: Double
}

/// A piecewise-constant signal: sorted, non-overlapping steps. Gaps mean "no value".
///
/// Every cost is an integral of such signals, so the rules of section 2 of the cost semantics
/// (sample-and-hold, lookback, staleness) live here and nowhere else.
struct HeldSignal: Equatable {
    var steps: [Step]

    static let empty = HeldSignal(steps: [])

    /// Sample-and-hold of one series: each sample holds until the next sample, a staleness marker
    /// or `lookback` after it, whichever comes first; a marker holds nothing. Other NaNs and
    /// infinities hold nothing either: a cost row must stay a number.
    init(samples: [Sample], lookback: Int64) {
        var steps: [Step] = []
        steps.reserveCapacity(samples.count)
        for (i, sample) in samples.enumerated() where Double(bitPattern: sample.valueBits).isFinite {
            var end = sample.timestamp + lookback
            if i + 1 < samples.count { end = min(end, samples[i + 1].timestamp) }
            if end > sample.timestamp {
                steps.append(Step(start: sample.timestamp, end: end, value: Double(bitPattern: sample.valueBits)))
            }
        }
        self.steps = steps
    }

    init(steps: [Step]) { self.steps = steps }

    /// The signal of one identity held by several series (an upgrade overlap, two scrape jobs):
    /// where more than one holds a value, their average, never their sum.
    static func average(_ signals: [HeldSignal]) -> HeldSignal {
        let present = signals.filter { !$0.steps.isEmpty }
        if present.count <= 1 { return present.first ?? .empty }
        var bounds: [Int64] = []
        for signal in present { for step in signal.steps { bounds.append(step.start); bounds.append(step.end) } }
        bounds.sort()
        var unique: [Int64] = []
        for b in bounds where unique.last != b { unique.append(b) }
        var cursors = [Int](repeating: 0, count: present.count)
        var out: [Step] = []
        for (start, end) in zip(unique, unique.dropFirst()) {
            var sum = NeumaierSum(), count = 0
            for (s, signal) in present.enumerated() {
                while cursors[s] < signal.steps.count && signal.steps[cursors[s]].end <= start { cursors[s] += 1 }
                if cursors[s] < signal.steps.count && signal.steps[cursors[s]].start <= start {
                    sum.add(signal.steps[cursors[s]].value)
                    count += 1
                }
            }
            guard count > 0 else { continue }
            var mean = sum.value / Double(count)
            if !mean.isFinite {
                // Finite values whose sum overflows (two prices near Double's largest): their shares.
                var shares = NeumaierSum()
                for (s, signal) in present.enumerated() where cursors[s] < signal.steps.count && signal.steps[cursors[s]].start <= start {
                    shares.add(signal.steps[cursors[s]].value / Double(count))
                }
                mean = shares.value
            }
            out.append(Step(start: start, end: end, value: mean))
        }
        return HeldSignal(steps: out)
    }

    /// The product where both signals hold a value; nothing where either is missing.
    func multiplied(by other: HeldSignal) -> HeldSignal {
        var out: [Step] = []
        var i = 0, j = 0
        while i < steps.count && j < other.steps.count {
            let a = steps[i], b = other.steps[j]
            let start = max(a.start, b.start), end = min(a.end, b.end)
            if start < end { out.append(Step(start: start, end: end, value: a.value * b.value)) }
            if a.end <= b.end { i += 1 } else { j += 1 }
        }
        return HeldSignal(steps: out)
    }

    func scaled(by factor: Double) -> HeldSignal {
        factor == 1 ? self : HeldSignal(steps: steps.map { Step(start: $0.start, end: $0.end, value: $0.value * factor) })
    }

    /// The part inside [start, end).
    func clipped(to start: Int64, _ end: Int64) -> HeldSignal {
        HeldSignal(steps: steps.compactMap { step in
            let s = max(step.start, start), e = min(step.end, end)
            return s < e ? Step(start: s, end: e, value: step.value) : nil
        })
    }

    /// The value held at `t`, if any.
    func value(at t: Int64) -> Double? {
        var low = 0, high = steps.count
        while low < high {
            let mid = (low + high) / 2
            if steps[mid].end <= t { low = mid + 1 } else { high = mid }
        }
        return low < steps.count && steps[low].start <= t ? steps[low].value : nil
    }

    /// The integral in value-hours (a $/h price integrates to dollars).
    var integralHours: Double {
        var sum = NeumaierSum()
        for step in steps { sum.add(step.value * (Double(step.end - step.start) / 3_600_000)) }
        return sum.value
    }
}

/// Measures a union of intervals: the covered time of a category over several items.
struct Coverage {
    private var intervals: [(Int64, Int64)] = []

    mutating func add(_ signal: HeldSignal) {
        for step in signal.steps { intervals.append((step.start, step.end)) }
    }

    mutating func add(start: Int64, end: Int64) { if start < end { intervals.append((start, end)) } }

    /// Milliseconds covered by at least one interval.
    var milliseconds: Int64 {
        let sorted = intervals.sorted { $0.0 < $1.0 }
        var total: Int64 = 0
        var current: (Int64, Int64)?
        for interval in sorted {
            if let c = current, interval.0 <= c.1 {
                current = (c.0, max(c.1, interval.1))
            } else {
                if let c = current { total += c.1 - c.0 }
                current = interval
            }
        }
        if let c = current { total += c.1 - c.0 }
        return total
    }
}

/// Neumaier's compensated sum: the error of adding many small costs stays at one rounding.
struct NeumaierSum {
    private var sum = 0.0
    private var compensation = 0.0

    mutating func add(_ x: Double) {
        let t = sum + x
        if abs(sum) >= abs(x) { compensation += (sum - t) + x } else { compensation += (x - t) + sum }
        sum = t
    }

    /// The sum; once it overflows, the infinity itself (its compensation would make it NaN).
    var value: Double { sum.isFinite ? sum + compensation : sum }
}
