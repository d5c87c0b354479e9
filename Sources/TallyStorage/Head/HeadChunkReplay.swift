/// What a replay takes from the head chunk files, series by series (used by `Head.loadWAL`).
///
/// A series' first sample (always in order) looks for a written chunk that starts with that very
/// sample. If one does, the series takes it and the chunks written after it as its closed chunks,
/// up to `maxTime`. Each later in-order sample up to `maxTime` is in them (chunks are written in the
/// order they close, and none is missing before the last one read: see `HeadChunkWriter`), so it is
/// counted and passed over. `latest` is the newest time the WAL has reached, which routes every
/// sample as in order or late just as a replay without the files would. Past `maxTime`, the series
/// appends as usual.
///
/// A deletion is the one record that acts on samples the WAL has not reached: before it, a series
/// drops what its chunks hold past `latest`, and appends as usual from then on.
final class ChunkFileReplay {
    private struct State {
        /// The end of the series' attached chunks; `.min` while none are.
        var maxTime: Int64
        /// The newest time the WAL reached while attached; `unknown` or `none` while not.
        var latest: Int64

        /// The first sample has not come yet.
        static let unknown = State(maxTime: .min, latest: 0)
        /// The series appends as usual.
        static let none = State(maxTime: .min, latest: 1)

        var isAttached: Bool { maxTime != .min }
    }

    let chunks: MappedHeadChunks
    /// By series index. A buffer, not an array: one state is read and written per sample, and an
    /// array would check its uniqueness at every write.
    private var states: UnsafeMutableBufferPointer<State>
    private var count = 0

    init(_ chunks: MappedHeadChunks) {
        self.chunks = chunks
        states = .allocate(capacity: 1024)
    }

    deinit { states.deallocate() }

    /// Gives the series made since the last call a state; called before their samples come.
    func track(_ seriesCount: Int) {
        guard seriesCount > count else { return }
        if seriesCount > states.count {
            let grown = UnsafeMutableBufferPointer<State>.allocate(capacity: max(seriesCount, states.count * 2))
            _ = grown.initialize(fromContentsOf: states[..<count])
            states.deallocate()
            states = grown
        }
        for i in count..<seriesCount { states[i] = .unknown }
        count = seriesCount
    }

    private func state(_ index: Int32) -> State {
        precondition(Int(index) < count, "series \(index) not tracked")
        return states[Int(index)]
    }

    /// Whether sample (`t`, `valueBits`) of series `index` is one its attached chunks hold, after
    /// attaching them at the series' first sample.
    func holds(_ index: Int32, _ t: Int64, _ valueBits: UInt64, _ head: Head, _ report: inout ReplayReport) -> Bool {
        let state = state(index)
        if state.isAttached {
            // A late sample goes on as usual: the head's newest time (`maxTime`) routes it as late.
            guard t > state.latest && t > head.latestHistogramTimestamp(index) else { return false }
            guard t <= state.maxTime else {
                settle(index, state, head)
                states[Int(index)] = .none
                return false
            }
            states[Int(index)].latest = t
            if t == state.maxTime { head.setNewestValueBits(index, valueBits) }
            // What appending the sample would do besides: a float ends the open histogram chunk.
            if !head.histograms.isEmpty { head.endHistogramChunk(index) }
            return true
        }
        guard state.latest == State.unknown.latest else { return false }
        states[Int(index)] = .none
        guard head.latest(index).timestamp == .min, !head.hasOutOfOrder(index), t > head.latestHistogramTimestamp(index),
              let found = chunks.chunks(of: head.ref(index), from: t, valueBits: valueBits, chunkRange: head.chunkRange) else { return false }
        head.attach(index, found)
        states[Int(index)] = State(maxTime: head.latest(index).timestamp, latest: t)
        if t == head.latest(index).timestamp { head.setNewestValueBits(index, valueBits) }
        report.headChunks += found.count
        return true
    }

    /// Sets the newest value of an attached series whose WAL did not bring the sample at the end of
    /// its chunks, from the chunk; a chunk that does not decode there is dropped back to `latest`.
    private func settle(_ index: Int32, _ state: State, _ head: Head) {
        guard state.isAttached && state.latest != state.maxTime else { return }
        if let valueBits = head.valueBits(index, at: state.maxTime) {
            head.setNewestValueBits(index, valueBits)
        } else {
            head.keepSamples(index, through: state.latest, newestValueBits: head.valueBits(index, at: state.latest) ?? 0)
        }
    }

    /// Settles every series still attached when the WAL ends.
    func finish(_ head: Head) {
        for i in 0..<count { settle(Int32(i), states[i], head) }
    }

    /// Before a deletion touches series `index`: its chunks may hold samples the WAL has not
    /// reached, which the deletion must not touch, so the series goes back to what the WAL reached
    /// and appends as usual from then on.
    func detach(_ index: Int32, _ head: Head) {
        let state = state(index)
        if state.isAttached {
            // The sample at `latest` was passed over, so the attached chunks hold it.
            head.keepSamples(index, through: state.latest, newestValueBits: head.valueBits(index, at: state.latest) ?? 0)
        }
        states[Int(index)] = .none
    }
}
