#if canImport(Glibc)
import Glibc
#endif

/// The page framing of the Prometheus WAL (`tsdb/wlog`): segment files named %08d, 32 KiB pages,
/// fragments with a 7-byte header (type, u16 BE length, CRC32C of the data). Records never cross a
/// segment. The type byte is `[4 bits unused, zero][1 bit snappy][3 bits fragment type]`: a record
/// written compressed (`WALSnappy`) has the snappy bit on every fragment, and its CRCs cover the
/// compressed bytes.
enum WALFormat {
    static let pageSize = 32 * 1024
    static let headerSize = 7
    static let defaultSegmentSize = 128 * 1024 * 1024
    static let snappyFlag: UInt8 = 1 << 3

    enum Fragment: UInt8 {
        case pageTerminator = 0, full = 1, first = 2, middle = 3, last = 4
    }

    static func segmentName(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Segment indexes found in `directory`, ascending (names that are not all digits are ignored,
    /// as Prometheus does). A number past `maxSegmentIndex` is no segment any writer made (at 128 MiB
    /// a segment, 256 PiB of WAL): refused with its file named, before arithmetic on it can trap.
    static func segments(in directory: String) throws(StorageIOError) -> [Int] {
        var found: [Int] = []
        for name in try FileSystem.listDirectory(directory) where !name.isEmpty && name.allSatisfy(\.isASCII) && name.allSatisfy(\.isNumber) {
            guard let index = Int(name), index <= maxSegmentIndex else {
                throw StorageIOError("WAL segment number past \(maxSegmentIndex):", directory + "/" + name, errno: EOVERFLOW)
            }
            found.append(index)
        }
        return found.sorted()
    }

    static let maxSegmentIndex = Int(Int32.max)
}

/// Appends records to the active segment. Not thread-safe: the tenant's lock serialises callers.
/// The segment file is created at the first record after the previous one was finished, so a
/// writer that has nothing to write holds no file descriptor.
final class WALWriter {
    let directory: String
    let segmentSize: Int
    /// The active segment: open when `file` is set, else the one the next record creates.
    private(set) var segmentIndex: Int
    private(set) var file: OpenFile?
    private var page = [UInt8](repeating: 0, count: WALFormat.pageSize)
    private var pageAlloc = 0
    private var pagesDone = 0
    private var output: [UInt8] = []
    /// Monotonic count of bytes handed to the kernel; durability is tracked against it.
    private(set) var position: UInt64 = 0
    /// The position synced when the last segment was finished: everything before it is durable.
    private(set) var syncedAtCut: UInt64 = 0
    /// Set when a failed write could not be undone; every later write fails with it.
    private(set) var broken: StorageIOError?
    /// Whether records are written snappy-compressed when that makes them smaller.
    let compress: Bool
    /// The compressed forms of the batch being logged (reused), and where each record's is.
    private var compressed: [UInt8] = []
    private var compressedRanges: [Range<Int>?] = []

    init(directory: String, segmentIndex: Int, segmentSize: Int = WALFormat.defaultSegmentSize, compress: Bool = false) {
        self.directory = directory
        self.segmentSize = max(segmentSize, 2 * WALFormat.pageSize)
        self.segmentIndex = segmentIndex
        self.compress = compress
    }

    var isOpen: Bool { file != nil }

    /// The active segment, created if it is not open yet. A failure leaves the writer as it was
    /// (no segment open), so running out of descriptors is retried, not fatal.
    /// O_APPEND: after a failed write is truncated away, the next write must land at the new end,
    /// not at the offset the failed write left behind.
    @discardableResult
    func openSegment() throws(StorageIOError) -> OpenFile {
        // Also before creating: a segment that failed to finish is still the active index, and
        // O_TRUNC would empty it.
        if let broken { throw broken }
        if let file { return file }
        let created = try OpenFile(path: directory + "/" + WALFormat.segmentName(segmentIndex), flags: O_WRONLY | O_CREAT | O_TRUNC | O_APPEND)
        try FileSystem.syncDirectory(directory)
        file = created
        return created
    }

    /// Frames and writes `records` with one write; on failure the segment is cut back to where it
    /// was, so a failed batch leaves nothing a replay could read.
    /// Returns the file holding the bytes and the position a sync must reach.
    func log(_ records: [[UInt8]]) throws(StorageIOError) -> (OpenFile, UInt64) {
        if let broken { throw broken }
        // Compressed first, as Prometheus does: a batch's room is counted in the bytes it frames.
        compressedRanges.removeAll(keepingCapacity: true)
        var used = 0
        for record in records {
            let range = compress ? record.withUnsafeBytes { WALSnappy.compress($0, into: &compressed, at: used) } : nil
            compressedRanges.append(range)
            used = range?.upperBound ?? used
        }
        let payload = zip(records, compressedRanges).reduce(0) { $0 + ($1.1?.count ?? $1.0.count) }
        let pagesNeeded = (payload + records.count * WALFormat.headerSize) / (WALFormat.pageSize - WALFormat.headerSize) + 1
        let pagesLeft = segmentSize / WALFormat.pageSize - pagesDone
        let rollsOver = pagesNeeded > pagesLeft && (pagesDone > 0 || pageAlloc > 0)
        if rollsOver {
            try finishSegment()
            Failpoint.hit("wal-segment-finished")
        }
        let file = try openSegment()
        if rollsOver { Failpoint.hit("wal-segment-created") }
        let saved = (pageAlloc, pagesDone)
        let sizeBefore = try file.size()
        output.removeAll(keepingCapacity: true)
        var flushedFrom = pageAlloc
        for (record, range) in zip(records, compressedRanges) {
            if let range {
                compressed.withUnsafeBytes { frame(UnsafeRawBufferPointer(rebasing: $0[range]), snappy: true, flushedFrom: &flushedFrom) }
            } else {
                record.withUnsafeBytes { frame($0, snappy: false, flushedFrom: &flushedFrom) }
            }
        }
        output.append(contentsOf: page[flushedFrom..<pageAlloc])
        do throws(StorageIOError) {
            try file.writeAll(output)
        } catch {
            do throws(StorageIOError) { try file.truncate(to: sizeBefore) } catch { broken = error }
            (pageAlloc, pagesDone) = saved
            for i in pageAlloc..<page.count { page[i] = 0 }
            throw error
        }
        position += UInt64(output.count)
        return (file, position)
    }

    private func frame(_ record: UnsafeRawBufferPointer, snappy: Bool, flushedFrom: inout Int) {
        var rest = record[...]
        var first = true
        repeat {
            let room = WALFormat.pageSize - pageAlloc - WALFormat.headerSize
            let part = rest.prefix(room)
            let type: WALFormat.Fragment = first
                ? (part.count == rest.count ? .full : .first)
                : (part.count == rest.count ? .last : .middle)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: part))
            page[pageAlloc] = type.rawValue | (snappy ? WALFormat.snappyFlag : 0)
            page[pageAlloc + 1] = UInt8(part.count >> 8)
            page[pageAlloc + 2] = UInt8(part.count & 0xff)
            page[pageAlloc + 3] = UInt8(crc >> 24)
            page[pageAlloc + 4] = UInt8((crc >> 16) & 0xff)
            page[pageAlloc + 5] = UInt8((crc >> 8) & 0xff)
            page[pageAlloc + 6] = UInt8(crc & 0xff)
            page.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[(pageAlloc + WALFormat.headerSize)...])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: part))
            }
            pageAlloc += WALFormat.headerSize + part.count
            rest = rest.dropFirst(part.count)
            first = false
            if WALFormat.pageSize - pageAlloc < WALFormat.headerSize {
                // No header fits any more: the page is finished, zero padding included.
                output.append(contentsOf: page[flushedFrom...])
                resetPage()
                flushedFrom = 0
            }
        } while !rest.isEmpty
    }

    private func resetPage() {
        for i in 0..<page.count { page[i] = 0 }
        pageAlloc = 0
        pagesDone += 1
    }

    /// Pads the active page, syncs and closes the segment; the next record starts a new one. A
    /// no-op when no segment is open. Any failure here breaks the writer for good: after a failed
    /// sync the page cache cannot be trusted.
    func finishSegment() throws(StorageIOError) {
        guard let file else { return }
        do throws(StorageIOError) {
            try padPage(file)
            try file.sync()
        } catch {
            broken = error
            // A broken writer never writes again: its descriptor can go.
            self.file = nil
            throw error
        }
        syncedAtCut = position
        self.file = nil
        segmentIndex += 1
        pagesDone = 0
    }

    /// Completes the active page with zeros so that every closed segment is page-aligned.
    private func padPage(_ file: OpenFile) throws(StorageIOError) {
        guard pageAlloc > 0 else { return }
        let padding = [UInt8](repeating: 0, count: WALFormat.pageSize - pageAlloc)
        try file.writeAll(padding)
        position += UInt64(padding.count)
        resetPage()
    }
}
