/// What a replay takes from the head chunk files, series by series (used by `Head.loadWAL`).
///
/// A series' first sample (always in order) looks for a written chunk that starts with that very
/// sample. If one does, the series takes it and the chunks written after it as its closed chunks.
/// From then on each in-order sample the WAL brings must be where the chunks say their next sample
/// is: inside the current chunk while it has samples left (as many as its header counts, the last
/// one at its end time), else the first sample, time and value, of the next chunk. Such a sample is
/// counted and passed over without decoding anything. `latest` is the newest time the WAL has
/// reached, which routes every sample as in order or late just as a replay without the files would.
///
/// The moment the WAL and the chunks part (a sample elsewhere, a late sample or a histogram, whose
/// checks must not see chunk samples the WAL has not reached, a deletion, which acts on what the
/// WAL has reached, or the WAL's end before the chunks'), the series keeps exactly the samples that
/// matched and appends as usual from then on. Chunks lost to a crash or a power cut, or written in
/// another order than the WAL's records (a request's floats are logged before its histograms, and a
/// checkpoint logs floats before histograms), are found at the first sample that does not line up.
/// A chunk written by this head or by promtool holds, between its ends, exactly the in-order samples
/// the WAL has there; a forged one could hold others, which this does not decode to find.
final class ChunkFileReplay {
    private struct State {
        enum Phase: UInt8 {
            /// The first sample has not come yet.
            case unknown
            /// The series appends as usual.
            case none
            case attached
        }

        var phase: Phase
        /// While attached: the chunk being read (a place in `MappedHeadChunks`), how many of the
        /// series' chunks follow it, its samples not matched yet and its end time.
        var entry: Int32 = -1
        var chunksLeft: Int32 = 0
        var samplesLeft: Int32 = 0
        var chunkMaxTime: Int64 = .min
        /// The samples matched, and the WAL's newest time and value.
        var matched: Int32 = 0
        var latest: Int64 = .min
        var latestValueBits: UInt64 = 0
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
        for i in count..<seriesCount { states[i] = State(phase: .unknown) }
        count = seriesCount
    }

    private func checked(_ index: Int32) -> Int {
        precondition(index >= 0 && Int(index) < count, "series \(index) not tracked")
        return Int(index)
    }

    /// Whether sample (`t`, `valueBits`) of series `index` is where its attached chunks have their
    /// next sample, after attaching them at the series' first sample.
    func holds(_ index: Int32, _ t: Int64, _ valueBits: UInt64, _ head: Head, _ report: inout ReplayReport) -> Bool {
        let i = checked(index)
        switch states[i].phase {
        case .none:
            return false
        case .unknown:
            states[i].phase = .none
            guard head.latest(index).timestamp == .min, !head.hasOutOfOrder(index), t > head.latestHistogramTimestamp(index),
                  let found = chunks.chunks(of: head.ref(index), from: t, valueBits: valueBits, chunkRange: head.chunkRange) else { return false }
            head.attach(index, found.chunks)
            let first = chunks.span(found.first)
            states[i] = State(phase: .attached, entry: found.first, chunksLeft: Int32(found.chunks.count - 1),
                              samplesLeft: Int32(first.samples), chunkMaxTime: first.maxTime)
            report.headChunks += found.chunks.count
            // The chunk starts with this sample (`chunks(of:)` checked it).
            return matches(i, t, valueBits)
        case .attached:
            // A late sample goes on as usual, once the series holds only what matched: its
            // duplicate check must not see the chunks' samples the WAL has not reached.
            guard t > states[i].latest && t > head.latestHistogramTimestamp(index), matches(i, t, valueBits) else {
                detach(index, head)
                return false
            }
            // What appending the sample would do besides: a float ends the open histogram chunk.
            if !head.histograms.isEmpty { head.endHistogramChunk(index) }
            return true
        }
    }

    /// Whether in-order sample (`t`, `valueBits`) is where the attached chunks have their next
    /// sample; if so, it counts as matched.
    private func matches(_ i: Int, _ t: Int64, _ valueBits: UInt64) -> Bool {
        var state = states[i]
        if state.samplesLeft == 0 {
            // The chunk is done: the sample must start the next one.
            let next = chunks.next(state.entry)
            guard state.chunksLeft > 0, next >= 0 else { return false }
            let span = chunks.span(next)
            guard span.minTime == t, span.samples > 0, chunks.starts(next, with: t, valueBits) else { return false }
            state.entry = next
            state.chunksLeft -= 1
            state.samplesLeft = Int32(span.samples)
            state.chunkMaxTime = span.maxTime
        }
        guard state.samplesLeft > 0, t <= state.chunkMaxTime else { return false }
        state.samplesLeft -= 1
        // A chunk's last sample is at its end time.
        guard state.samplesLeft > 0 || t == state.chunkMaxTime else { return false }
        state.matched += 1
        state.latest = t
        state.latestValueBits = valueBits
        states[i] = state
        return true
    }

    /// Ends the attachment of series `index`: it keeps exactly the samples that matched, with the
    /// WAL's newest time and value, and appends as usual from then on. Called where the WAL and
    /// the chunks part, and before a deletion or a histogram touches the series.
    func detach(_ index: Int32, _ head: Head) {
        let i = checked(index)
        defer { states[i].phase = .none }
        guard states[i].phase == .attached else { return }
        let state = states[i]
        // Every chunk sample matched: the chunks are what appending would have made.
        if state.chunksLeft == 0 && state.samplesLeft == 0 {
            head.setNewestValueBits(index, state.latestValueBits)
        } else {
            head.keepSamples(index, first: Int(state.matched), newestTime: state.latest, newestValueBits: state.latestValueBits)
        }
    }

    /// Ends every attachment when the WAL ends: chunk samples the WAL never brought are dropped.
    func finish(_ head: Head) {
        for i in 0..<count where states[i].phase == .attached { detach(Int32(i), head) }
    }
}
