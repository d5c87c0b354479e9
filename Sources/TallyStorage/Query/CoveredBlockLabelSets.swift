import Synchronization

/// The distinct label sets a series question found in blocks wholly inside its range, kept for the
/// next question with the same matchers over the same blocks.
///
/// Once a question's range covers a block, the block's answer depends on the matchers only: every
/// chunk is in range, and what is deleted is fixed for the reader (a deletion makes a new reader,
/// as compaction and retention do). So the sets found in a list of covered readers hold for as
/// long as those readers are what a question covers. Grafana's metric browser asks the same
/// questions over a range that moves with the clock, whose covered blocks change only when a
/// block's edge passes; each question then reads only the head and the blocks at its ends.
///
/// Readers are told apart by `BlockReader.serial`, which no other reader of the process takes, so
/// an answer can never be reused for other blocks, a rewritten block or another tenant.
final class CoveredBlockLabelSets: Sendable {
    struct Key: Hashable, Sendable {
        let tenant: String
        /// Each matcher set as its matchers' text, in the order asked, told apart by bytes.
        let matcherSets: [[ByteString]]
        /// The covered readers' serials, in the order they are read.
        let readers: [UInt64]
    }

    /// One cache for the process, bounded as a whole: an answer from readers that are gone is
    /// never asked for again, and leaves as newer ones arrive.
    static let shared = CoveredBlockLabelSets(maxEntries: 256, maxBytes: 64 << 20)

    private struct State {
        var answers: [Key: DistinctLabelSets] = [:]
        /// Keys oldest first.
        var order: [Key] = []
        var bytes = 0
    }

    private let state = Mutex(State())
    private let maxEntries: Int
    private let maxBytes: Int

    init(maxEntries: Int, maxBytes: Int) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }

    func answer(_ key: Key) -> DistinctLabelSets? { state.withLock { $0.answers[key] } }

    /// Keeps `answer` unless it alone takes more than an eighth of the bytes, dropping the oldest
    /// answers to make room.
    func keep(_ answer: DistinctLabelSets, for key: Key) {
        let bytes = answer.estimatedBytes
        guard bytes <= maxBytes / 8 else { return }
        state.withLock { state in
            guard state.answers[key] == nil else { return }
            while !state.order.isEmpty && (state.order.count >= maxEntries || state.bytes + bytes > maxBytes) {
                let oldest = state.order.removeFirst()
                state.bytes -= state.answers.removeValue(forKey: oldest)?.estimatedBytes ?? 0
            }
            state.answers[key] = answer
            state.order.append(key)
            state.bytes += bytes
        }
    }
}
