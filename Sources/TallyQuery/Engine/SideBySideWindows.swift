/// Range functions that work on several windows of a series at once, each window in a vector lane
/// beside the others, with the answers the one-window function gives bit for bit.
///
/// `avg_over_time`'s running mean divides twice a sample, and each step waits for the divide of
/// the one before it: alone, a window runs at the divider's latency, most of a range query's time
/// over minute samples. Four windows side by side run the same operations, in the same order on
/// each, at the divider's throughput instead.
extension RangeFunctions {
    /// The windows one call takes at most.
    static let lanes = 4

    /// Appends to `values` one answer for each of `windows` (ranges of `samples`, at most `lanes`),
    /// what the one-window function gives for it; an empty window's answer is NaN and stands for none.
    typealias SideBySide = (_ samples: Window, _ windows: [Range<Int>], _ values: inout [Double]) -> Void

    /// The side-by-side form of the range function `name`, if it has one.
    static func sideBySide(_ name: String) -> SideBySide? {
        switch name {
        case "avg_over_time": return { samples, windows, values in averages(samples, windows, &values) }
        default: return nil
        }
    }

    /// `average` of each window. The lanes go together through as many samples as the shortest
    /// window has, and each window goes on alone from there. A lane whose sum is no longer finite
    /// is done again alone from its start: `average` passes over some samples once its sum is
    /// infinite, which the lanes do not (once infinite, a lane's sum stays infinite or NaN, so the
    /// check at the end finds every such lane).
    static func averages(_ samples: Window, _ windows: [Range<Int>], _ values: inout [Double]) {
        precondition(windows.count <= lanes)
        guard let filled = windows.first(where: { !$0.isEmpty }) else {
            values.append(contentsOf: repeatElement(.nan, count: windows.count))
            return
        }
        // Lanes past the windows given, or on an empty one, read a window that is there; their sums are dropped.
        func start(_ lane: Int) -> Int { lane < windows.count && !windows[lane].isEmpty ? windows[lane].lowerBound : filled.lowerBound }
        var together = Int.max
        for window in windows where !window.isEmpty { together = min(together, window.count) }
        let (s0, s1, s2, s3) = (start(0), start(1), start(2), start(3))
        var sum = SIMD4<Double>(repeating: 0), compensation = SIMD4<Double>(repeating: 0), count = 0.0
        for i in 0..<together {
            count += 1
            let x = SIMD4(samples[s0 + i].value, samples[s1 + i].value, samples[s2 + i].value, samples[s3 + i].value)
            let n = SIMD4<Double>(repeating: count)
            // `KahanSum.add` of `x / n - sum / n`, lane by lane.
            let increment = x / n - sum / n
            let t = sum + increment
            let sumIsLarger = sum.replacing(with: -sum, where: sum .< 0) .>= increment.replacing(with: -increment, where: increment .< 0)
            let larger = increment.replacing(with: sum, where: sumIsLarger), smaller = sum.replacing(with: increment, where: sumIsLarger)
            compensation += (larger - t) + smaller
            sum = t
        }
        for (lane, window) in windows.enumerated() {
            guard !window.isEmpty else {
                values.append(.nan)
                continue
            }
            var mean = RunningMean()
            if sum[lane].isFinite {
                mean = RunningMean(mean: KahanSum(sum: sum[lane], compensation: compensation[lane]), count: count)
                mean.add(samples[(window.lowerBound + together)..<window.upperBound])
            } else {
                mean.add(samples[window])
            }
            values.append(mean.value)
        }
    }
}
