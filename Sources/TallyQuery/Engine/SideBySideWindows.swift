/// Range functions that work on several windows of a series at once, each window in a vector lane
/// beside the others, with the answers the one-window function gives bit for bit.
///
/// `avg_over_time`'s running mean divides twice a sample, and each step waits for the divide of
/// the one before it: alone, a window runs at the divider's latency, most of a range query's time
/// over minute samples. `sum_over_time`'s compensated sum and the variance of `stddev_over_time`
/// and `stdvar_over_time` wait likewise for their adds and divides. Four windows side by side run
/// the same operations, in the same order on each, at the units' throughput instead.
extension RangeFunctions {
    /// The windows one call takes at most.
    static let lanes = 4

    /// Appends to `values` one answer for each of `windows` (ranges of `samples`, at most `lanes`),
    /// what the one-window function gives for it; an empty window's answer is NaN and stands for none.
    typealias SideBySide = (_ samples: Window, _ windows: [Range<Int>], _ values: inout [Double]) -> Void

    /// The side-by-side form of the range function `name`, if it has one.
    static func sideBySide(_ name: String) -> SideBySide? {
        switch name {
        case "avg_over_time": return { samples, windows, values in run(MeanLanes.self, samples, windows, &values) }
        case "sum_over_time": return { samples, windows, values in run(SumLanes.self, samples, windows, &values) }
        case "stdvar_over_time": return { samples, windows, values in run(VarianceLanes.self, samples, windows, &values) }
        case "stddev_over_time":
            return { samples, windows, values in
                let first = values.count
                run(VarianceLanes.self, samples, windows, &values)
                for i in first..<values.count { values[i] = values[i].squareRoot() }
            }
        default: return nil
        }
    }

    /// Each window's answer from `Kernel`. The lanes go together through as many samples as the
    /// shortest window has, and each window goes on alone from there, or from its start where its
    /// lane could not stand for the one-window function.
    static func run<Kernel: Lanes>(_: Kernel.Type, _ samples: Window, _ windows: [Range<Int>], _ values: inout [Double]) {
        precondition(windows.count <= lanes)
        guard let filled = windows.first(where: { !$0.isEmpty }) else {
            values.append(contentsOf: repeatElement(.nan, count: windows.count))
            return
        }
        // Lanes past the windows given, or on an empty one, read a window that is there; their states are dropped.
        func start(_ lane: Int) -> Int { lane < windows.count && !windows[lane].isEmpty ? windows[lane].lowerBound : filled.lowerBound }
        var together = Int.max
        for window in windows where !window.isEmpty { together = min(together, window.count) }
        let (s0, s1, s2, s3) = (start(0), start(1), start(2), start(3))
        var kernel = Kernel(), count = 0.0
        for i in 0..<together {
            count += 1
            kernel.add(SIMD4(samples[s0 + i].value, samples[s1 + i].value, samples[s2 + i].value, samples[s3 + i].value), count: count)
        }
        for (lane, window) in windows.enumerated() {
            guard !window.isEmpty else {
                values.append(.nan)
                continue
            }
            var state: Kernel.One
            if let partWay = kernel.one(lane, count: count) {
                state = partWay
                state.add(samples[(window.lowerBound + together)..<window.upperBound])
            } else {
                state = Kernel.One()
                state.add(samples[window])
            }
            values.append(state.value)
        }
    }
}

/// A range function's state part way through one window.
protocol WindowState {
    init()
    mutating func add(_ p: Slice<RangeFunctions.Window>)
    var value: Double { get }
}

extension RangeFunctions.KahanSum: WindowState {}
extension RangeFunctions.RunningMean: WindowState {}
extension RangeFunctions.RunningVariance: WindowState {}

/// Four windows' states, one in each vector lane, each lane taking the operations `One` takes, in
/// the same order.
protocol Lanes {
    associatedtype One: WindowState
    init()
    /// Takes each lane's `count`th sample.
    mutating func add(_ x: SIMD4<Double>, count: Double)
    /// Lane `lane`'s state after `count` samples, or nil where `One` would not have done what the
    /// lane did.
    func one(_ lane: Int, count: Double) -> One?
}

/// `KahanSum` in each lane.
struct KahanLanes {
    var sum = SIMD4<Double>(repeating: 0)
    var compensation = SIMD4<Double>(repeating: 0)

    // Inlined: called apart, its vectors went through memory at every sample.
    @inline(__always)
    mutating func add(_ increment: SIMD4<Double>) {
        let t = sum + increment
        let sumIsLarger = sum.replacing(with: -sum, where: sum .< 0) .>= increment.replacing(with: -increment, where: increment .< 0)
        let larger = increment.replacing(with: sum, where: sumIsLarger), smaller = sum.replacing(with: increment, where: sumIsLarger)
        compensation += (larger - t) + smaller
        sum = t
    }

    func one(_ lane: Int) -> RangeFunctions.KahanSum { RangeFunctions.KahanSum(sum: sum[lane], compensation: compensation[lane]) }
}

/// `sum_over_time`.
struct SumLanes: Lanes {
    var sum = KahanLanes()

    @inline(__always)
    mutating func add(_ x: SIMD4<Double>, count: Double) { sum.add(x) }

    func one(_ lane: Int, count: Double) -> RangeFunctions.KahanSum? { sum.one(lane) }
}

/// `avg_over_time`. A lane whose sum is no longer finite is done again alone: the one-window mean
/// passes over some samples once its sum is infinite, which the lanes do not (once infinite, a
/// lane's sum stays infinite or NaN, so the check at the end finds every such lane).
struct MeanLanes: Lanes {
    var mean = KahanLanes()

    @inline(__always)
    mutating func add(_ x: SIMD4<Double>, count: Double) {
        let n = SIMD4<Double>(repeating: count)
        mean.add(x / n - mean.sum / n)
    }

    func one(_ lane: Int, count: Double) -> RangeFunctions.RunningMean? {
        mean.sum[lane].isFinite ? RangeFunctions.RunningMean(mean: mean.one(lane), count: count) : nil
    }
}

/// `stdvar_over_time`, and `stddev_over_time` before its square root.
struct VarianceLanes: Lanes {
    var mean = KahanLanes()
    var aux = KahanLanes()

    @inline(__always)
    mutating func add(_ x: SIMD4<Double>, count: Double) {
        let delta = x - (mean.sum + mean.compensation)
        mean.add(delta / SIMD4(repeating: count))
        aux.add(delta * (x - (mean.sum + mean.compensation)))
    }

    func one(_ lane: Int, count: Double) -> RangeFunctions.RunningVariance? {
        RangeFunctions.RunningVariance(mean: mean.one(lane), aux: aux.one(lane), count: count)
    }
}
