/// A WAL checkpoint (`wal/checkpoint.%08d`): what the head holds when segments up to that number are
/// dropped, written as Series, Samples and HistogramSamples records in ordinary segments, so
/// Prometheus' replay (and promtool) reads it before the segments that follow it.
enum WALCheckpoint {
    static let prefix = "checkpoint."

    static func name(_ index: Int) -> String { prefix + WALFormat.segmentName(index) }

    /// The newest complete checkpoint (a `.tmp` one is an unfinished write, never read).
    static func latest(in walDirectory: String) throws(StorageIOError) -> Int? {
        try FileSystem.listDirectory(walDirectory).compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            let digits = name.dropFirst(prefix.count)
            return digits.count == 8 && digits.allSatisfy(\.isNumber) ? Int(digits) : nil
        }.max()
    }

    /// Writes `snapshot` as checkpoint `index`: into a temporary directory, synced, then renamed.
    /// Compressed when the WAL is, as Prometheus' checkpoints are.
    static func write(walDirectory: String, index: Int, snapshot: [Head.CheckpointSeries],
                      compress: Bool) throws {
        let final = walDirectory + "/" + name(index)
        let temporary = final + ".tmp"
        try FileSystem.removeTree(temporary)
        try FileSystem.makeDirectory(temporary)
        let writer = WALWriter(directory: temporary, segmentIndex: 0, compress: compress)
        // As Prometheus' checkpoints, this one holds segment 0 even when the head is empty.
        try writer.openSegment()
        var encoder = WALRecordEncoder()
        for batch in stride(from: 0, to: snapshot.count, by: 1000) {
            encoder.beginSeries()
            for s in snapshot[batch..<min(batch + 1000, snapshot.count)] { encoder.addSeries(ref: s.ref, labels: s.labels) }
            _ = try writer.log([encoder.bytes])
        }
        var pending = 0
        for s in snapshot {
            for chunk in s.chunks {
                try chunk.withUnsafeBufferPointer { (bytes) throws(StorageIOError) in
                    var it = XORIterator(bytes)
                    while let (t, v) = it.next() {
                        if pending == 0 { encoder.beginSamples(baseRef: s.ref, baseTimestamp: t) }
                        encoder.addSample(ref: s.ref, timestamp: t, valueBits: v)
                        pending += 1
                        if pending == 10_000 {
                            _ = try writer.log([encoder.bytes])
                            pending = 0
                        }
                    }
                }
            }
        }
        if pending > 0 { _ = try writer.log([encoder.bytes]) }
        try writeHistograms(snapshot, writer)
        try writer.finishSegment()
        try FileSystem.publishDirectory(temporary, as: final, in: walDirectory) { Failpoint.hit("checkpoint-before-rename") }
    }

    /// The snapshot's histograms as HistogramSamples and FloatHistogramSamples records of up to
    /// 1,000 histograms, after all the floats: each run of one kind one record, so replay meets a
    /// series' histograms in time order whichever kinds it switches between. A chunk that does not
    /// decode whole was made by this head, so it cannot happen; its readable histograms are kept.
    private static func writeHistograms(_ snapshot: [Head.CheckpointSeries], _ writer: WALWriter) throws(StorageIOError) {
        var batch: [(ref: UInt64, timestamp: Int64, value: HistogramValue)] = []
        for s in snapshot {
            for chunk in s.histogramChunks {
                _ = chunk.bytes.withUnsafeBufferPointer { bytes in
                    HistogramValue.forEach(inChunk: bytes, encoding: chunk.encoding) { t, h in
                        batch.append((s.ref, t, h))
                        return true
                    }
                }
                if batch.count >= 1000 {
                    try log(batch, writer)
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
        try log(batch, writer)
    }

    /// Logs `batch` as one record per run of histograms of one kind.
    private static func log(_ batch: [(ref: UInt64, timestamp: Int64, value: HistogramValue)], _ writer: WALWriter) throws(StorageIOError) {
        for record in WALRecordEncoder.histogramRecords(batch) { _ = try writer.log([record]) }
    }

    /// Removes what checkpoint `index` replaces: segments up to it, older checkpoints, unfinished ones.
    static func removeObsolete(walDirectory: String, upTo index: Int) throws(StorageIOError) {
        for name in try FileSystem.listDirectory(walDirectory) {
            let obsolete: Bool
            if name.hasPrefix(prefix) {
                obsolete = name.hasSuffix(".tmp") || (Int(name.dropFirst(prefix.count)) ?? index) < index
            } else if name.allSatisfy(\.isNumber), let segment = Int(name) {
                obsolete = segment <= index
            } else {
                obsolete = false
            }
            if obsolete { try FileSystem.removeTree(walDirectory + "/" + name) }
        }
        try FileSystem.syncDirectory(walDirectory)
    }
}
