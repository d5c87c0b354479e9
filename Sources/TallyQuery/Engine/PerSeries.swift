import Dispatch
import Foundation
import Synchronization

extension Evaluator {
    /// Each series' points from `body`, in series order, as the loop
    /// `for i in 0..<count { try body(i, budget, deadline) }` gives them, leaving the same samples
    /// taken from the budget. With `work` (samples and steps the loop will go through, about) of at
    /// least `options.parallelWork` (below it, starting threads costs more than they save) and two
    /// or more cores, the series are split between threads, each with a budget and a deadline of
    /// its own, and the shared budget is then taken as the loop would have taken it. A series' own
    /// budget is what the finished series have left of the shared one: past it the loop fails too,
    /// so the workers together never hold more points than the limit allows. Whatever would
    /// have failed the loop (too many samples, an error from `body`, the deadline) makes it run as
    /// the loop after all, so that it fails alike.
    func perSeries(_ count: Int, work: Int, _ body: (_ series: Int, _ budget: SampleBudget, _ deadline: Deadline) throws -> [Point]) throws -> [[Point]] {
        let workers = min(count, ProcessInfo.processInfo.activeProcessorCount)
        if workers >= 2 && work >= options.parallelWork, let points = inParallel(count, workers: workers, body) { return points }
        var out: [[Point]] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append(try body(i, budget, deadline)) }
        return out
    }

    /// One series' run on a worker: its points, its budget's peak and what it left taken.
    private struct Outcome {
        var points: [Point] = []
        var peak = 0
        var taken = 0
        var done = false
    }

    /// What the workers share. Each writes only its own series' slots, and reads the evaluator's
    /// constants and the series it was given.
    private final class Shared: @unchecked Sendable {
        let slots: UnsafeMutableBufferPointer<Outcome>
        let body: (Int, SampleBudget, Deadline) throws -> [Point]
        let deadline: Deadline
        /// What the query's budget had left, and what the finished series have taken of it.
        let remaining: Int
        let taken = Atomic<Int>(0)

        init(_ slots: UnsafeMutableBufferPointer<Outcome>, _ body: @escaping (Int, SampleBudget, Deadline) throws -> [Point], _ deadline: Deadline,
             remaining: Int) {
            self.slots = slots
            self.body = body
            self.deadline = deadline
            self.remaining = remaining
        }
    }

    private func inParallel(_ count: Int, workers: Int, _ body: (Int, SampleBudget, Deadline) throws -> [Point]) -> [[Point]]? {
        var outcomes = [Outcome](repeating: Outcome(), count: count)
        withoutActuallyEscaping(body) { body in
            outcomes.withUnsafeMutableBufferPointer { slots in
                let shared = Shared(slots, body, deadline, remaining: budget.limit - budget.current)
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    let deadline = Deadline(sharing: shared.deadline)
                    for i in stride(from: worker, to: count, by: workers) {
                        let left = shared.remaining - shared.taken.load(ordering: .relaxed)
                        guard left >= 0 else { return }
                        let own = SampleBudget(limit: left)
                        // A failure ends this worker; the loop then runs again and fails as it would have.
                        guard let points = try? shared.body(i, own, deadline) else { return }
                        shared.taken.add(own.current, ordering: .relaxed)
                        shared.slots[i] = Outcome(points: points, peak: own.peak, taken: own.current, done: true)
                    }
                }
            }
        }
        // The loop's budget: series by series, each taking from where the ones before it left it.
        var current = budget.current
        for outcome in outcomes {
            guard outcome.done, current <= budget.limit - outcome.peak else { return nil }
            current += outcome.taken
        }
        try? budget.take(current - budget.current)
        return outcomes.map(\.points)
    }
}
