#if canImport(Glibc)
import Glibc
#endif

/// Rebuilding the head from the WAL at open (Prometheus' `head_wal.go`): the newest checkpoint, then
/// the segments after it, each record applied in the order it was appended, then the last segment's
/// tail repaired.
extension Head {
    /// Replays `<directory>/wal` into this empty head. Unless `readOnly`, also finishes a checkpoint
    /// cleanup a crash interrupted and repairs the tail of the last segment. Returns the index the
    /// next segment takes.
    func loadWAL(tenantDirectory directory: String, readOnly: Bool, _ report: inout ReplayReport) throws(StorageIOError) -> Int {
        let walDirectory = directory + "/wal"
        var scratch = ReplayScratch()
        let checkpoint = FileSystem.isDirectory(walDirectory) ? try WALCheckpoint.latest(in: walDirectory) : nil
        if let checkpoint {
            let path = walDirectory + "/" + WALCheckpoint.name(checkpoint)
            for segment in try WALFormat.segments(in: path) {
                let bytes = try SegmentBytes(path: path + "/" + WALFormat.segmentName(segment), mapped: !readOnly)
                let end = WALSegmentReader.read(bytes.bytes, file: path + "/" + WALFormat.segmentName(segment)) { record in
                    Self.replayRecord(record, into: self, &scratch, &report)
                }
                if end != .clean { report.problems.append("\(path): checkpoint unreadable past offset \(end.validEnd ?? 0)") }
                if case let .corrupt(_, corruption) = end { report.corruptions.append(corruption) }
            }
        }
        if !readOnly { try WALCheckpoint.removeObsolete(walDirectory: walDirectory, upTo: checkpoint ?? -1) }
        let segments = FileSystem.isDirectory(walDirectory)
            ? try WALFormat.segments(in: walDirectory).filter { $0 > (checkpoint ?? -1) } : []
        for (k, segment) in segments.enumerated() {
            let path = walDirectory + "/" + WALFormat.segmentName(segment)
            let segmentBytes = try SegmentBytes(path: path, mapped: !readOnly)
            report.segments += 1
            let end = WALSegmentReader.read(segmentBytes.bytes, file: path) { record in Self.replayRecord(record, into: self, &scratch, &report) }
            let isLast = k == segments.count - 1
            switch end {
            case .clean: break
            case let .torn(validEnd):
                report.problems.append("\(path): torn record at offset \(validEnd) (a write cut short); \(isLast && !readOnly ? "cut there" : "read up to it")")
            case let .corrupt(validEnd, corruption):
                report.corruptions.append(corruption)
                report.problems.append("\(corruption); records after offset \(validEnd) \(isLast && !readOnly ? "moved to wal-quarantine/" : "not read")")
            }
            if isLast && !readOnly {
                try Self.repairTail(path: path, bytes: segmentBytes.bytes, validEnd: end.validEnd, quarantine: directory + "/wal-quarantine")
            }
        }
        return max(segments.last ?? -1, checkpoint ?? -1) + 1
    }

    /// A Samples record decoded before any of it is applied, kept from record to record for its space.
    struct ReplayScratch {
        /// Each sample with its series' index, -1 for a ref no Series record named.
        var samples: [(index: Int32, timestamp: Int64, valueBits: UInt64)] = []
    }

    private static func replayRecord(_ record: UnsafeRawBufferPointer, into head: Head, _ scratch: inout ReplayScratch,
                                     _ report: inout ReplayReport) {
        report.records += 1
        var decoder = WALRecordDecoder(record)
        do {
            switch decoder.type {
            case WALRecordType.series.rawValue:
                try decoder.forEachSeries { ref, labels in
                    // The head numbers new series after the largest ref it holds: 2^64-1 leaves no next.
                    guard ref < .max else {
                        report.problems.append("skipped WAL series record with ref \(ref), which no writer assigns")
                        return
                    }
                    head.restore(ref: ref, labels: labels)
                }
            case WALRecordType.tombstones.rawValue:
                try decoder.forEachTombstone { ref, interval in
                    if let index = head.index(ofRef: ref) { head.deleteSamples(index, in: interval) }
                }
            case WALRecordType.samples.rawValue:
                var unstorable = 0
                defer {
                    if unstorable > 0 { report.problems.append("skipped \(unstorable) WAL samples with timestamps beyond ±2^53 ms") }
                    report.unstorableSamples += unstorable
                }
                // The whole record first, then its series' chunks warmed at once, then the appends.
                scratch.samples.removeAll(keepingCapacity: true)
                var undecodable: WALRecordError?
                do throws(WALRecordError) {
                    try decoder.forEachSample { ref, t, v in scratch.samples.append((head.index(ofRef: ref) ?? -1, t, v)) }
                } catch {
                    undecodable = error
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
                if let undecodable { throw undecodable }
            case WALRecordType.histogramSamples.rawValue:
                try replayHistograms(&decoder, IntegerHistogram.self, into: head, &report)
            case WALRecordType.floatHistogramSamples.rawValue:
                try replayHistograms(&decoder, FloatHistogram.self, into: head, &report)
            default:
                report.problems.append("skipped WAL record of unknown type \(decoder.type)")
            }
        } catch {
            report.problems.append("\(error)")
        }
    }

    /// A HistogramSamples or FloatHistogramSamples record: each histogram newer than its series'
    /// newest histogram (of either kind), at a time holding no float, is appended (histograms are
    /// never late). Malformed ones and ones outside `StorableTime.range` are skipped and reported.
    private static func replayHistograms<H: StoredHistogram>(_ decoder: inout WALRecordDecoder, _: H.Type, into head: Head,
                                                             _ report: inout ReplayReport) throws(WALRecordError) {
        var skipped = 0
        defer { if skipped > 0 { report.problems.append("skipped \(skipped) malformed WAL histograms or with timestamps beyond ±2^53 ms") } }
        try decoder.forEachHistogramSample { (ref, t, h: H) in
            guard StorableTime.range.contains(t), h.isWellFormed else {
                skipped += 1
                return
            }
            guard let index = head.index(ofRef: ref) else {
                report.orphanSamples += 1
                return
            }
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
        let file = try OpenFile(path: path, flags: O_WRONLY)
        try file.truncate(to: keep)
        try file.truncate(to: padded)
        try file.sync()
    }
}
