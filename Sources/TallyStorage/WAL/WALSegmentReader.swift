/// How reading a segment ended.
enum WALReadEnd: Equatable, Sendable {
    case clean
    /// The data stops inside a record: a write cut short by a crash.
    case torn(validEnd: Int)
    /// Bytes that were written whole but are not what was written (a checksum, framing or
    /// compression error).
    case corrupt(validEnd: Int, WALCorruption)

    var validEnd: Int? {
        switch self {
        case .clean: nil
        case let .torn(end), let .corrupt(end, _): end
        }
    }
}

/// Where a WAL file stops being what was written, and why: the file, the part of the format the
/// fault is in, and the offset of the page padding, fragment or record (for a record, its first
/// fragment) it was found in.
public struct WALCorruption: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Section: String, Sendable {
        case pagePadding = "page padding"
        case fragmentHeader = "fragment header"
        case fragmentData = "fragment data"
        case recordFragments = "record fragments"
        case compressedRecord = "snappy-compressed record"
    }

    public let file: String
    public let section: Section
    public let offset: Int
    public let problem: String

    public var description: String { "\(file): \(section.rawValue) at offset \(offset): \(problem)" }
}

enum WALSegmentReader {
    /// Calls `onRecord` for each complete record of `bytes` (`file`'s contents), decompressed if it
    /// was written compressed; stops at the first torn or corrupt fragment and says where the last
    /// complete record ended.
    static func read(_ b: UnsafeRawBufferPointer, file: String = "WAL segment", onRecord: (UnsafeRawBufferPointer) -> Void) -> WALReadEnd {
        var record: [UInt8] = []
        var decoded: [UInt8] = []
        var inRecord = false
        var recordStart = 0, recordCompressed = false
        var validEnd = 0
        var pos = 0
        let count = b.count
        func corrupt(_ section: WALCorruption.Section, at offset: Int, _ problem: String) -> WALReadEnd {
            .corrupt(validEnd: validEnd, WALCorruption(file: file, section: section, offset: offset, problem: problem))
        }
        /// Hands a complete record on, decompressed first if its fragments say it was compressed.
        func deliver(_ data: UnsafeRawBufferPointer, compressed: Bool) -> WALSnappyError? {
            guard compressed else {
                onRecord(data)
                return nil
            }
            do throws(WALSnappyError) {
                let n = try WALSnappy.decompress(data, into: &decoded)
                decoded.withUnsafeBytes { onRecord(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                return nil
            } catch {
                return error
            }
        }
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
                    return corrupt(.pagePadding, at: bad, "non-zero page padding")
                }
                pos = end
                continue
            }
            guard pos + WALFormat.headerSize <= count else { return .torn(validEnd: validEnd) }
            let length = Int(b[pos + 1]) << 8 | Int(b[pos + 2])
            let crc = UInt32(bigEndian: b.loadUnaligned(fromByteOffset: pos + 3, as: UInt32.self))
            let dataStart = pos + WALFormat.headerSize
            if WALFormat.headerSize + length > pageLeft {
                return corrupt(.fragmentHeader, at: pos, "fragment of \(length) bytes crosses its page")
            }
            guard dataStart + length <= count else { return .torn(validEnd: validEnd) }
            let data = UnsafeRawBufferPointer(rebasing: b[dataStart..<dataStart + length])
            guard CRC32C.checksum(data) == crc else {
                return corrupt(.fragmentData, at: pos, "fragment checksum mismatch")
            }
            let compressed = typeByte & WALFormat.snappyFlag != 0
            guard typeByte & 0xF0 == 0, let kind = WALFormat.Fragment(rawValue: typeByte & 7), kind != .pageTerminator else {
                return corrupt(.fragmentHeader, at: pos, "fragment type byte \(typeByte)")
            }
            let fragmentStart = pos
            pos = dataStart + length
            if inRecord && (kind == .middle || kind == .last) && compressed != recordCompressed {
                return corrupt(.recordFragments, at: fragmentStart,
                               "fragment \(kind) has the snappy flag \(compressed ? "set" : "clear"), unlike its record's first")
            }
            var failure: WALSnappyError?
            switch kind {
            case .full where !inRecord:
                recordStart = fragmentStart
                failure = deliver(data, compressed: compressed)
            case .first where !inRecord:
                record.removeAll(keepingCapacity: true)
                record.append(contentsOf: data)
                inRecord = true
                recordStart = fragmentStart
                recordCompressed = compressed
            case .middle where inRecord:
                record.append(contentsOf: data)
            case .last where inRecord:
                record.append(contentsOf: data)
                inRecord = false
                failure = record.withUnsafeBytes { deliver($0, compressed: compressed) }
            default:
                return corrupt(.recordFragments, at: fragmentStart, "fragment \(kind) out of sequence")
            }
            if let failure { return corrupt(.compressedRecord, at: recordStart, "snappy: \(failure.problem)") }
            if kind == .full || kind == .last { validEnd = pos }
        }
        return inRecord ? .torn(validEnd: validEnd) : .clean
    }

    /// The type byte of every fragment, in order, with no check beyond the framing: what tests and
    /// tools look at to see how records were written (compressed or not, in how many fragments).
    static func fragmentTypes(_ b: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var pos = 0
        while pos + WALFormat.headerSize <= b.count {
            let pageLeft = WALFormat.pageSize - pos % WALFormat.pageSize
            if pageLeft < WALFormat.headerSize || b[pos] == WALFormat.Fragment.pageTerminator.rawValue {
                pos += pageLeft
                continue
            }
            types.append(b[pos])
            pos += WALFormat.headerSize + (Int(b[pos + 1]) << 8 | Int(b[pos + 2]))
        }
        return types
    }
}
