/// The head's side of its chunk files (HeadChunkFiles.swift): every float chunk it closes goes to
/// the writer, and a replay takes a series' chunks back from the files instead of re-appending
/// their samples (see `Head.loadWAL`).
extension Head {
    /// Writes the newest closed float chunk of series `index`. Every chunk that enters `closed` by
    /// a cut or a seal is written, so a series' chunks in the files have no gaps.
    func writeClosedChunk(_ index: Int32) {
        guard let chunkWriter, let chunk = series[Int(index)].closed.last else { return }
        chunkWriter.append(ref: series[Int(index)].ref, minTime: chunk.minTime, maxTime: chunk.maxTime, chunk.bytes)
    }

    /// Gives series `index`, which holds no float yet, `chunks` as its closed chunks. The next
    /// sample starts a new chunk, as it did when the last of them was closed. The series' newest
    /// value is left to `setNewestValueBits`: the WAL usually brings it, which spares decoding.
    func attach(_ index: Int32, _ chunks: [ClosedChunk]) {
        guard let first = chunks.first, let last = chunks.last else { return }
        let i = Int(index)
        series[i].closed = chunks
        series[i].lastTimestamp = last.maxTime
        series[i].nextCutAt = .min
        widenTimes(first.minTime)
        widenTimes(last.maxTime)
    }

    /// The value of the newest float of series `index`: what a resent sample is compared with.
    func setNewestValueBits(_ index: Int32, _ valueBits: UInt64) {
        series[Int(index)].lastValueBits = valueBits
    }

    /// Keeps the first `count` in-order samples of series `index` and drops the rest, leaving
    /// (`t`, `valueBits`) its newest time and value: the head's state when a replay reached the
    /// WAL record at which the series' attached chunks and the WAL part.
    func keepSamples(_ index: Int32, first count: Int, newestTime t: Int64, newestValueBits valueBits: UInt64) {
        var kept: [Sample] = []
        kept.reserveCapacity(count)
        forEachChunk(index) { _, _, bytes in
            var it = XORIterator(bytes)
            while kept.count < count, let (time, v) = it.next() { kept.append(Sample(timestamp: time, valueBits: v)) }
        }
        let i = Int(index)
        series[i].closed = closedChunks(kept)
        series[i].open = XOREncoder()
        series[i].nextCutAt = .min
        series[i].lastTimestamp = t
        series[i].lastValueBits = valueBits
    }
}
