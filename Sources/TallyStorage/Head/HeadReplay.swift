#if canImport(Glibc)
import Glibc
#endif

/// Rebuilding the head from the WAL at open (Prometheus' `head_wal.go`): the newest checkpoint, then
/// the segments after it, each record applied in the order it was appended, then the last segment's
/// tail repaired. A second thread reads and decodes the files a few records ahead (`WALReadAhead`)
/// while this one applies them.
extension Head {
    /// Replays `<directory>/wal` into this empty head, taking series' chunks from `mapped` where
    /// they match the WAL. Unless `readOnly`, also finishes a checkpoint cleanup a crash
    /// interrupted and repairs the tail of the last segment. Returns the index the next segment takes.
    func loadWAL(tenantDirectory directory: String, readOnly: Bool, mapped: MappedHeadChunks? = nil,
                 _ report: inout ReplayReport) throws(StorageIOError) -> Int {
        let walDirectory = directory + "/wal"
        let checkpoint = FileSystem.isDirectory(walDirectory) ? try WALCheckpoint.latest(in: walDirectory) : nil
        let checkpointPath = checkpoint.map { walDirectory + "/" + WALCheckpoint.name($0) }
        let checkpointFiles = try checkpointPath.map { path throws(StorageIOError) in
            try WALFormat.segments(in: path).map { path + "/" + WALFormat.segmentName($0) }
        } ?? []
        // Only what the checkpoint replaced goes, none of the files read below.
        if !readOnly { try WALCheckpoint.removeObsolete(walDirectory: walDirectory, upTo: checkpoint ?? -1) }
        let segments = FileSystem.isDirectory(walDirectory)
            ? try WALFormat.segments(in: walDirectory).filter { $0 > (checkpoint ?? -1) } : []
        let segmentFiles = segments.map { walDirectory + "/" + WALFormat.segmentName($0) }
        // Segments are numbered one after another from the checkpoint's, and none is removed but by
        // a checkpoint: a missing number is a segment lost, with the records acknowledged in it.
        for (previous, next) in zip([checkpoint ?? (segments.first ?? 0) - 1] + segments, segments) where next != previous + 1 {
            let missing = next - previous - 1 == 1 ? WALFormat.segmentName(previous + 1)
                : "\(WALFormat.segmentName(previous + 1)) to \(WALFormat.segmentName(next - 1))"
            report.problems.append("\(walDirectory): segment \(missing) missing before \(WALFormat.segmentName(next)); its records are lost")
            report.leftOut += 1
        }

        let reader = WALReadAhead(paths: checkpointFiles + segmentFiles, mapped: !readOnly, decode: ReplayRecord.init)
        var scratch = ReplayScratch(mapped: mapped)
        let files = checkpointFiles + segmentFiles
        var filesRead = 0
        var recordsInFile = 0
        var failure: StorageIOError?
        var lastSegmentEnd = WALReadEnd.clean
        reading: while true {
            switch reader.next() {
            case let .records(records):
                for record in records {
                    recordsInFile += 1
                    let problems = report.problems.count
                    Self.replay(record, into: self, &scratch, &report)
                    // A record's problem names its file and its place there (records come in file order).
                    for k in problems..<report.problems.count where filesRead < files.count {
                        report.problems[k] = "\(files[filesRead]): record \(recordsInFile): " + report.problems[k]
                    }
                }
            case let .fileEnd(path, end):
                filesRead += 1
                recordsInFile = 0
                if filesRead <= checkpointFiles.count {
                    if end != .clean {
                        report.problems.append("\(checkpointPath ?? path): checkpoint unreadable past offset \(end.validEnd ?? 0)")
                        report.leftOut += 1
                    }
                    if case let .corrupt(_, corruption) = end { report.corruptions.append(corruption) }
                    continue
                }
                report.segments += 1
                let isLast = path == segmentFiles.last
                if isLast { lastSegmentEnd = end }
                switch end {
                case .clean: break
                case let .torn(validEnd) where isLast:
                    report.problems.append("\(path): torn record at offset \(validEnd) (a write cut short); \(readOnly ? "read up to it" : "cut there")")
                case let .torn(validEnd):
                    // Only the last segment can end in a write cut short (a start cuts it there
                    // before writing on): an earlier one was damaged after it was whole.
                    report.problems.append("\(path): records end at offset \(validEnd) of a segment that was finished; the rest are lost")
                    report.leftOut += 1
                case let .corrupt(validEnd, corruption):
                    report.corruptions.append(corruption)
                    report.leftOut += 1
                    report.problems.append("\(corruption); records after offset \(validEnd) \(isLast && !readOnly ? "moved to wal-quarantine/" : "not read")")
                }
            case let .failed(error):
                failure = error
                reader.stop()
            case .finished:
                break reading
            }
        }
        scratch.chunkFiles?.finish(self)
        if let failure = failure ?? scratch.failure { throw failure }
        if report.orphanSamples > 0 {
            // Their Series records were in a checkpoint or segment that is gone or damaged.
            let defining = checkpointPath.map { "\($0) (\(checkpointFiles.isEmpty ? "no segment" : "\(checkpointFiles.count) segment(s)")) or an earlier segment" }
                ?? "a segment before them"
            report.problems.append("\(walDirectory): \(report.orphanSamples) samples name series that no Series record defines, left out: \(defining) lost or damaged")
        }
        if !readOnly, let last = segmentFiles.last {
            let bytes = try SegmentBytes(path: last, mapped: true)
            try Self.repairTail(path: last, bytes: bytes.bytes, validEnd: lastSegmentEnd.validEnd, quarantine: directory + "/wal-quarantine")
        }
        return max(segments.last ?? -1, checkpoint ?? -1) + 1
    }

    /// A WAL record as the read-ahead thread hands it over: a Samples record decoded (up to where
    /// it stops decoding), any other record copied.
    enum ReplayRecord: Sendable {
        case samples([(ref: UInt64, timestamp: Int64, valueBits: UInt64)], undecodable: WALRecordError?)
        case other([UInt8])

        init(_ record: UnsafeRawBufferPointer) {
            var decoder = WALRecordDecoder(record)
            guard decoder.type == WALRecordType.samples.rawValue else {
                self = .other(Array(record))
                return
            }
            var samples: [(ref: UInt64, timestamp: Int64, valueBits: UInt64)] = []
            // A sample takes at least 10 bytes (two one-byte deltas and the value).
            samples.reserveCapacity(record.count / 10)
            do throws(WALRecordError) {
                try decoder.forEachSample { samples.append(($0, $1, $2)) }
                self = .samples(samples, undecodable: nil)
            } catch {
                self = .samples(samples, undecodable: error)
            }
        }
    }

    /// What a replay keeps from record to record.
    struct ReplayScratch {
        /// A Samples record's samples with their series' indexes (-1 for a ref no Series record
        /// named), kept for its space.
        var samples: [(index: Int32, timestamp: Int64, valueBits: UInt64)] = []
        /// What each series takes from the head chunk files found at open, if any.
        let chunkFiles: ChunkFileReplay?
        /// Removing the head chunk files at a Tombstones record failed: the open fails with it.
        var failure: StorageIOError?

        init(mapped: MappedHeadChunks?) { chunkFiles = mapped.map(ChunkFileReplay.init) }
    }

    private static func replay(_ record: ReplayRecord, into head: Head, _ scratch: inout ReplayScratch, _ report: inout ReplayReport) {
        report.records += 1
        switch record {
        case let .samples(samples, undecodable):
            replaySamples(samples, into: head, &scratch, &report)
            if let undecodable {
                report.problems.append("\(undecodable)")
                report.leftOut += 1
            }
        case let .other(bytes):
            bytes.withUnsafeBytes { replayOther($0, into: head, &scratch, &report) }
        }
    }

    private static func replaySamples(_ samples: [(ref: UInt64, timestamp: Int64, valueBits: UInt64)], into head: Head,
                                      _ scratch: inout ReplayScratch, _ report: inout ReplayReport) {
        var unstorable = 0
        defer {
            if unstorable > 0 {
                report.problems.append("skipped \(unstorable) WAL samples with timestamps beyond ±2^53 ms")
                report.leftOut += 1
            }
            report.unstorableSamples += unstorable
        }
        // The series first (a sample its series' chunk files hold is passed over at once: it
        // changes nothing another sample reads), then their chunks warmed at once, then the appends.
        scratch.samples.removeAll(keepingCapacity: true)
        let chunkFiles = scratch.chunkFiles
        chunkFiles?.track(head.seriesCount)
        for sample in samples {
            let index = head.index(ofRef: sample.ref) ?? -1
            // Optional chaining, not `if let`: a binding in the loop retained and released the
            // object at every sample, a fifth of the replay's time.
            if index >= 0, StorableTime.range.contains(sample.timestamp),
               chunkFiles?.holds(index, sample.timestamp, sample.valueBits, head, &report) == true {
                report.samples += 1
                continue
            }
            scratch.samples.append((index, sample.timestamp, sample.valueBits))
        }
        head.warmOpenChunks(scratch.samples.lazy.map(\.index))
        for sample in scratch.samples {
            let t = sample.timestamp, index = sample.index
            // Outside, the sample is corrupt or from an older version that took it; it would
            // trap the head's arithmetic on every start.
            guard StorableTime.range.contains(t) else {
                unstorable += 1
                continue
            }
            guard index >= 0 else {
                report.orphanSamples += 1
                continue
            }
            // Replaying in the order of appending routes each sample as it was routed then.
            if t > head.latest(index).timestamp && t > head.latestHistogramTimestamp(index) {
                head.append(index, timestamp: t, valueBits: sample.valueBits)
                report.samples += 1
            } else if head.valueBits(index, at: t) == nil && head.histogram(index, at: t) == nil {
                head.appendOutOfOrder(index, timestamp: t, valueBits: sample.valueBits)
                report.samples += 1
            }
        }
    }

    /// Any record but Samples: Series, Tombstones and the histogram records.
    private static func replayOther(_ record: UnsafeRawBufferPointer, into head: Head, _ scratch: inout ReplayScratch,
                                    _ report: inout ReplayReport) {
        var decoder = WALRecordDecoder(record)
        do {
            switch decoder.type {
            case WALRecordType.series.rawValue:
                try decoder.forEachSeries { ref, labels in
                    // The head numbers new series after the largest ref it holds: 2^64-1 leaves no next.
                    guard ref < .max else {
                        report.problems.append("skipped WAL series record with ref \(ref), which no writer assigns")
                        report.leftOut += 1
                        return
                    }
                    head.restore(ref: ref, labels: labels)
                }
            case WALRecordType.tombstones.rawValue:
                // As a live deletion does, and before it: no written chunk may hold samples from
                // before a deletion (a later start would take them back once a checkpoint has
                // dropped this record).
                head.walHasTombstones = true
                do throws(StorageIOError) {
                    try head.chunkWriter?.removeAll()
                } catch {
                    scratch.failure = scratch.failure ?? error
                }
                scratch.chunkFiles?.track(head.seriesCount)
                try decoder.forEachTombstone { [chunkFiles = scratch.chunkFiles] ref, interval in
                    guard let index = head.index(ofRef: ref) else { return }
                    chunkFiles?.detach(index, head)
                    head.deleteSamples(index, in: interval)
                }
            case WALRecordType.histogramSamples.rawValue:
                try replayHistograms(&decoder, IntegerHistogram.self, into: head, scratch.chunkFiles, &report)
            case WALRecordType.floatHistogramSamples.rawValue:
                try replayHistograms(&decoder, FloatHistogram.self, into: head, scratch.chunkFiles, &report)
            default:
                report.problems.append("skipped WAL record of unknown type \(decoder.type)")
                report.leftOut += 1
            }
        } catch {
            report.problems.append("\(error)")
            report.leftOut += 1
        }
    }

    /// A HistogramSamples or FloatHistogramSamples record: each histogram newer than its series'
    /// newest histogram (of either kind), at a time holding no float, is appended (histograms are
    /// never late). Malformed ones and ones outside `StorableTime.range` are skipped and reported.
    private static func replayHistograms<H: StoredHistogram>(_ decoder: inout WALRecordDecoder, _: H.Type, into head: Head,
                                                             _ chunkFiles: ChunkFileReplay?, _ report: inout ReplayReport) throws(WALRecordError) {
        chunkFiles?.track(head.seriesCount)
        var skipped = 0
        defer {
            if skipped > 0 {
                report.problems.append("skipped \(skipped) malformed WAL histograms or with timestamps beyond ±2^53 ms")
                report.leftOut += 1
            }
        }
        try decoder.forEachHistogramSample { (ref, t, h: H) in
            guard StorableTime.range.contains(t), h.isWellFormed else {
                skipped += 1
                return
            }
            guard let index = head.index(ofRef: ref) else {
                report.orphanSamples += 1
                return
            }
            // Its verdict must not see attached chunks' samples the WAL has not reached.
            chunkFiles?.detach(index, head)
            if t > head.latestHistogramTimestamp(index) && head.valueBits(index, at: t) == nil {
                head.appendHistogram(index, timestamp: t, h.value)
                report.histograms += 1
            }
        }
    }

    /// Cuts a torn or corrupt tail off the last segment, keeping the cut bytes in quarantine when
    /// they hold anything but zeros, and pads the segment to a whole page so Prometheus' reader,
    /// which reads segments back to back, stays page-aligned.
    private static func repairTail(path: String, bytes: UnsafeRawBufferPointer, validEnd: Int?, quarantine: String) throws(StorageIOError) {
        let keep = validEnd ?? bytes.count
        if keep < bytes.count && bytes[keep...].contains(where: { $0 != 0 }) {
            try FileSystem.makeDirectory(quarantine)
            let name = (path.split(separator: "/").last.map(String.init) ?? "segment") + "-offset-\(keep)"
            try FileSystem.writeFile(quarantine + "/" + name, Array(bytes[keep...]))
            try FileSystem.syncDirectory(quarantine)
        }
        let padded = (keep + WALFormat.pageSize - 1) / WALFormat.pageSize * WALFormat.pageSize
        guard padded != bytes.count || keep != bytes.count else { return }
        let file = try OpenFile(path: path, flags: O_WRONLY | O_NOFOLLOW)
        try file.truncate(to: keep)
        try file.truncate(to: padded)
        try file.sync()
    }
}
