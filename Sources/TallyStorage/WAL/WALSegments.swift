#if canImport(Glibc)
import Glibc
#endif

/// The page framing of the Prometheus WAL (`tsdb/wlog`): segment files named %08d, 32 KiB pages,
/// fragments with a 7-byte header (type, u16 BE length, CRC32C of the data). Records never cross a
/// segment. Tally writes records uncompressed.
enum WALFormat {
    static let pageSize = 32 * 1024
    static let headerSize = 7
    static let defaultSegmentSize = 128 * 1024 * 1024

    enum Fragment: UInt8 {
        case pageTerminator = 0, full = 1, first = 2, middle = 3, last = 4
    }

    static func segmentName(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Segment indexes found in `directory`, ascending (names that are not all digits are ignored,
    /// as Prometheus does).
    static func segments(in directory: String) throws(StorageIOError) -> [Int] {
        try FileSystem.listDirectory(directory).compactMap { name in
            name.allSatisfy(\.isASCII) && name.allSatisfy(\.isNumber) ? Int(name) : nil
        }.sorted()
    }
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

    init(directory: String, segmentIndex: Int, segmentSize: Int = WALFormat.defaultSegmentSize) {
        self.directory = directory
        self.segmentSize = max(segmentSize, 2 * WALFormat.pageSize)
        self.segmentIndex = segmentIndex
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
        let payload = records.reduce(0) { $0 + $1.count }
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
        for record in records {
            record.withUnsafeBytes { frame($0, flushedFrom: &flushedFrom) }
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

    private func frame(_ record: UnsafeRawBufferPointer, flushedFrom: inout Int) {
        var rest = record[...]
        var first = true
        repeat {
            let room = WALFormat.pageSize - pageAlloc - WALFormat.headerSize
            let part = rest.prefix(room)
            let type: WALFormat.Fragment = first
                ? (part.count == rest.count ? .full : .first)
                : (part.count == rest.count ? .last : .middle)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: part))
            page[pageAlloc] = type.rawValue
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

/// How reading a segment ended.
enum WALReadEnd: Equatable {
    case clean
    /// The data stops inside a record: a write cut short by a crash.
    case torn(validEnd: Int)
    /// A checksum or framing error: bytes that were written whole but are not what was written.
    case corrupt(validEnd: Int, offset: Int, reason: String)

    var validEnd: Int? {
        switch self {
        case .clean: nil
        case let .torn(end), let .corrupt(end, _, _): end
        }
    }
}

enum WALSegmentReader {
    /// Calls `onRecord` for each complete record of `bytes`; stops at the first torn or corrupt
    /// fragment and says where the last complete record ended.
    static func read(_ b: UnsafeRawBufferPointer, onRecord: (UnsafeRawBufferPointer) -> Void) -> WALReadEnd {
        var record: [UInt8] = []
        var inRecord = false
        var validEnd = 0
        var pos = 0
        let count = b.count
        while pos < count {
            let pageLeft = WALFormat.pageSize - pos % WALFormat.pageSize
            if pageLeft < WALFormat.headerSize {
                pos += pageLeft
                continue
            }
            let typeByte = b[pos]
            if typeByte == WALFormat.Fragment.pageTerminator.rawValue {
                let end = min(pos + pageLeft, count)
                if let bad = (pos..<end).first(where: { b[$0] != 0 }) {
                    return .corrupt(validEnd: validEnd, offset: bad, reason: "non-zero page padding")
                }
                pos = end
                continue
            }
            guard pos + WALFormat.headerSize <= count else { return .torn(validEnd: validEnd) }
            let length = Int(b[pos + 1]) << 8 | Int(b[pos + 2])
            let crc = UInt32(bigEndian: b.loadUnaligned(fromByteOffset: pos + 3, as: UInt32.self))
            let dataStart = pos + WALFormat.headerSize
            if WALFormat.headerSize + length > pageLeft {
                return .corrupt(validEnd: validEnd, offset: pos, reason: "fragment crosses its page")
            }
            guard dataStart + length <= count else { return .torn(validEnd: validEnd) }
            let data = UnsafeRawBufferPointer(rebasing: b[dataStart..<dataStart + length])
            guard CRC32C.checksum(data) == crc else {
                return .corrupt(validEnd: validEnd, offset: pos, reason: "fragment checksum mismatch")
            }
            guard typeByte & 0xF8 == 0, let kind = WALFormat.Fragment(rawValue: typeByte & 7) else {
                return .corrupt(validEnd: validEnd, offset: pos, reason: "fragment type \(typeByte) (compressed records are not written by Tally)")
            }
            pos = dataStart + length
            switch kind {
            case .full where !inRecord:
                onRecord(data)
                validEnd = pos
            case .first where !inRecord:
                record.removeAll(keepingCapacity: true)
                record.append(contentsOf: data)
                inRecord = true
            case .middle where inRecord:
                record.append(contentsOf: data)
            case .last where inRecord:
                record.append(contentsOf: data)
                record.withUnsafeBytes { onRecord($0) }
                inRecord = false
                validEnd = pos
            default:
                return .corrupt(validEnd: validEnd, offset: pos - length - WALFormat.headerSize, reason: "fragment \(kind) out of sequence")
            }
        }
        return inRecord ? .torn(validEnd: validEnd) : .clean
    }
}
