import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prometheus' head chunk files (`<tenant>/chunks_head/000001`, ...; its `tsdb/chunks/head_chunks.go`):
/// each float chunk the head closes is written there, so a restart takes the chunks back instead of
/// appending every sample again from the WAL. They are a shortcut, never the only copy: the WAL
/// holds every sample they hold, and a chunk missing, torn or corrupt here is rebuilt from the WAL.
///
/// A file is an 8-byte header (magic 0x0130BC91, version 1, 3 bytes of padding), then chunks:
/// series ref (8 bytes), first and last time (8 each), encoding (1), data length (uvarint), data,
/// and a CRC32-Castagnoli over all of that (4); integers big-endian.
enum HeadChunkFormat {
    static let directoryName = "chunks_head"
    static let magic: UInt32 = 0x0130_BC91
    static let version: UInt8 = 1
    static let headerSize = 8
    /// Prometheus' `MaxHeadChunkFileSize`: a file takes no chunk past this size.
    static let maxFileSize = 128 << 20
    /// Series ref, times and encoding: the fixed part before the length.
    static let fixedChunkHeader = 25
    static let checksumSize = 4

    static func fileName(_ sequence: Int) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The largest sequence number a file takes: ten digits, as the reader reads.
    static let lastSequence = 9_999_999_999

    /// The sequence number of a file name of six to ten digits, else nil.
    static func sequence(ofFileName name: String) -> Int? {
        guard name.count >= 6, name.count <= 10, name.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(name)
    }

    static func fileHeader() -> [UInt8] {
        var header: [UInt8] = []
        header.appendBigEndian(magic)
        header += [version, 0, 0, 0]
        return header
    }
}

/// Where a head chunk file stops being what was written: the file, the part of the format, the
/// offset of the chunk (or of the header) it was found in.
public struct HeadChunkCorruption: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Section: String, Sendable {
        case fileHeader = "file header"
        case chunkHeader = "chunk header"
        case chunkData = "chunk data"
        case checksum = "chunk checksum"
    }

    public let file: String
    public let section: Section
    public let offset: Int
    public let problem: String

    public var description: String { "\(file): head chunk \(section.rawValue) at offset \(offset): \(problem)" }
}

/// Appends closed chunks to the newest head chunk file. Chunks gather in memory and go to the file a
/// quarter megabyte at a time (and at close), through a descriptor opened for the
/// write only, so a tenant holds no descriptor for them between writes. Under the tenant lock.
///
/// After any write fails, the writer takes nothing more: a chunk missing in the middle of a series'
/// chunks would make a restart skip that chunk's samples in the WAL.
final class HeadChunkWriter {
    let directory: String
    private var sequence: Int
    private var fileSize = 0
    /// Whether the current file has its header on disk (the first flush of a file writes it).
    private var fileStarted = false
    private var buffer: [UInt8] = []
    /// The newest chunk end in each file, for dropping whole files whose chunks the head no longer holds.
    private(set) var fileMaxTimes: [Int: Int64]
    private(set) var failed: StorageIOError?
    private let onFailure: (StorageIOError) -> Void
    /// A process killed loses what is gathered and not written: a quarter megabyte of chunks at most.
    static let flushBytes = 1 << 18

    /// Writes after the files `existing` (sequence numbers and the newest chunk end of each), in a
    /// new file; tells `onFailure` when a write fails.
    init(directory: String, existing: [Int: Int64], onFailure: @escaping (StorageIOError) -> Void = { _ in }) {
        self.directory = directory
        fileMaxTimes = existing
        sequence = (existing.keys.max() ?? 0) + 1
        self.onFailure = onFailure
    }

    /// Takes one closed float chunk of series `ref`. Never fails: a failed write disables the writer.
    func append(ref: UInt64, minTime: Int64, maxTime: Int64, _ bytes: [UInt8]) {
        guard failed == nil else { return }
        var length: [UInt8] = []
        length.appendUvarint(UInt64(bytes.count))
        let size = HeadChunkFormat.fixedChunkHeader + length.count + bytes.count + HeadChunkFormat.checksumSize
        if fileSize + size > HeadChunkFormat.maxFileSize && fileSize > HeadChunkFormat.headerSize {
            endFile()
            guard failed == nil else { return }
        }
        if fileSize == 0 {
            buffer += HeadChunkFormat.fileHeader()
            fileSize = HeadChunkFormat.headerSize
        }
        let start = buffer.count
        buffer.appendBigEndian(ref)
        buffer.appendBigEndian(UInt64(bitPattern: minTime))
        buffer.appendBigEndian(UInt64(bitPattern: maxTime))
        buffer.append(XORChunk.encoding)
        buffer += length
        buffer += bytes
        let checksum = buffer.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        buffer.appendBigEndian(checksum)
        fileSize += size
        fileMaxTimes[sequence] = max(fileMaxTimes[sequence] ?? .min, maxTime)
        if buffer.count >= Self.flushBytes { flush() }
    }

    /// Writes the gathered chunks to the current file.
    func flush() {
        guard failed == nil, !buffer.isEmpty else { return }
        let path = directory + "/" + HeadChunkFormat.fileName(sequence)
        guard sequence <= HeadChunkFormat.lastSequence else { return disable(StorageIOError("write", path, errno: ENAMETOOLONG)) }
        do throws(StorageIOError) {
            // The directory comes with the first chunk: a tenant that never closed one has none.
            if !fileStarted { try FileSystem.makeDirectory(directory) }
            let file = try OpenFile(path: path, flags: O_WRONLY | O_CREAT | O_APPEND)
            if !fileStarted, try file.size() != 0 {
                // Left by an earlier process past what it read back: never append after it.
                throw StorageIOError("write", path, errno: EEXIST)
            }
            try file.writeAll(buffer)
            fileStarted = true
            buffer.removeAll(keepingCapacity: true)
        } catch {
            // Out of descriptors, nothing was written: the chunks wait for the next flush, a few
            // flushes' worth at most.
            if error.isOutOfDescriptors && buffer.count < 4 * Self.flushBytes { return }
            disable(error)
        }
    }

    /// Writes what the current file still gathers and starts the next one. Chunks that cannot be
    /// written now (out of descriptors) would land in the next file under the wrong number, so
    /// that ends the writing instead.
    private func endFile() {
        flush()
        if failed == nil && !buffer.isEmpty {
            disable(StorageIOError("write", directory + "/" + HeadChunkFormat.fileName(sequence), errno: EMFILE))
        }
        sequence += 1
        fileSize = 0
        fileStarted = false
    }

    /// Flushes and fsyncs the current file and the directory, at close.
    func sync() {
        flush()
        guard failed == nil, fileStarted else { return }
        do throws(StorageIOError) {
            try OpenFile(path: directory + "/" + HeadChunkFormat.fileName(sequence), flags: O_WRONLY).sync()
            try FileSystem.syncDirectory(directory)
        } catch {
            disable(error)
        }
    }

    /// Removes the files whose chunks all end before `time` (the head holds none of them any more).
    /// Called at each block cut, which also ends the current file, as Prometheus' truncation does:
    /// a file that kept taking new chunks would never end before the head.
    func removeFiles(endingBefore time: Int64) {
        guard failed == nil else { return }
        if fileSize > 0 { endFile() }
        do throws(StorageIOError) {
            var removed = false
            for (file, maxTime) in fileMaxTimes where maxTime < time && file < sequence {
                try FileSystem.removeTree(directory + "/" + HeadChunkFormat.fileName(file))
                fileMaxTimes[file] = nil
                removed = true
            }
            if removed { try FileSystem.syncDirectory(directory) }
        } catch {
            disable(error)
        }
    }

    /// Removes every file and starts again with the next chunk. Done before a deletion touches the
    /// head: the files would otherwise keep chunks holding the deleted samples past the WAL's
    /// Tombstones record. Throws when a file cannot be removed, so the deletion does not go ahead.
    func removeAll() throws(StorageIOError) {
        buffer.removeAll(keepingCapacity: true)
        if FileSystem.isDirectory(directory) {
            for name in try FileSystem.listDirectory(directory) where HeadChunkFormat.sequence(ofFileName: name) != nil {
                try FileSystem.removeTree(directory + "/" + name)
            }
            try FileSystem.syncDirectory(directory)
        }
        fileMaxTimes = [:]
        sequence += 1
        fileSize = 0
        fileStarted = false
    }

    /// Stops writing for good. The files then hold each series' chunks up to some point, with
    /// none missing before it (a torn last chunk is found by its checksum), which a restart can use.
    private func disable(_ error: StorageIOError) {
        failed = error
        buffer = []
        onFailure(error)
    }
}

/// The head chunk files a writable open finds, read once before the WAL is replayed: which chunks
/// each series ref has, in the order they were written. A file is read up to its first torn or
/// corrupt chunk; that file is cut there and the files after it removed, so what stays is, for
/// every series, its chunks up to some point with none missing before it.
final class MappedHeadChunks {
    private struct Entry {
        let ref: UInt64
        let minTime: Int64
        let maxTime: Int64
        let file: Int32
        let dataStart: Int
        let dataCount: Int32
        /// The series' next chunk in writing order, or -1.
        var next: Int32 = -1
    }

    private var mappings: [MappedFile] = []
    private var entries: [Entry] = []
    /// Per series ref, its first and last chunk in `entries`.
    private var chains: [UInt64: (first: Int32, last: Int32)] = [:]
    /// Each file kept, with the newest chunk end in it (`.min` when it holds none).
    private(set) var fileMaxTimes: [Int: Int64] = [:]
    private(set) var maxRef: UInt64 = 0
    private(set) var corruptions: [HeadChunkCorruption] = []
    private(set) var problems: [String] = []
    /// By entry: whether the chunk decodes whole into what its header says (`isWellFormed`).
    private var wellFormed: [Bool] = []

    var chunkCount: Int { entries.count }

    /// Reads the files of `directory` (none when it does not exist) and repairs the first torn or
    /// corrupt one: the files after it are removed (newest first), then it is cut.
    init(directory: String) throws(StorageIOError) {
        let files = try (FileSystem.isDirectory(directory) ? FileSystem.listDirectory(directory) : [])
            .compactMap { name in HeadChunkFormat.sequence(ofFileName: name).map { ($0, directory + "/" + name) } }
            .filter { !FileSystem.isDirectory($0.1) }
            .sorted { $0.0 < $1.0 }
        for (k, (sequence, path)) in files.enumerated() {
            let mapping = try MappedFile(path: path)
            fileMaxTimes[sequence] = .min
            let (validEnd, corruption) = read(mapping.bytes, file: Int32(mappings.count), sequence: sequence, path: path)
            mappings.append(mapping)
            guard let corruption else { continue }
            corruptions.append(corruption)
            problems.append("\(corruption); chunks after it are rebuilt from the WAL")
            for (_, later) in files[(k + 1)...].reversed() {
                try FileSystem.removeTree(later)
                problems.append("\(later): removed, it follows the damaged head chunk file \(path)")
            }
            if validEnd <= HeadChunkFormat.headerSize {
                try FileSystem.removeTree(path)
                fileMaxTimes[sequence] = nil
            } else {
                try OpenFile(path: path, flags: O_WRONLY | O_NOFOLLOW).truncate(to: validEnd)
            }
            try FileSystem.syncDirectory(directory)
            break
        }
        wellFormed = checkForms()
    }

    /// `isWellFormed` of every chunk, worked out on every core before the replay starts. Checked
    /// one by one as the replay came to each series, the decoding was a sixth of the replay's time
    /// on the thread that applies the WAL, which is what a start waits for.
    private func checkForms() -> [Bool] {
        // The chunks' bytes stay mapped while this object lives, which is past the workers' end.
        nonisolated(unsafe) let chunks = entries.indices.map { (data(Int32($0)), entries[$0].minTime, entries[$0].maxTime) }
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, chunks.count / 1024 + 1)
        guard workers >= 2 else { return chunks.map(Self.isWellFormed) }
        return [Bool](unsafeUninitializedCapacity: chunks.count) { forms, initialized in
            let share = (chunks.count + workers - 1) / workers
            // Each worker writes its own range.
            nonisolated(unsafe) let out = forms
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for i in (worker * share)..<min(chunks.count, (worker + 1) * share) {
                    out.initializeElement(at: i, to: Self.isWellFormed(chunks[i]))
                }
            }
            initialized = chunks.count
        }
    }

    /// Indexes the chunks of one file; returns where its valid part ends and why it ends early.
    private func read(_ bytes: UnsafeRawBufferPointer, file: Int32, sequence: Int, path: String) -> (Int, HeadChunkCorruption?) {
        func corrupt(_ section: HeadChunkCorruption.Section, _ offset: Int, _ problem: String) -> HeadChunkCorruption {
            HeadChunkCorruption(file: path, section: section, offset: offset, problem: problem)
        }
        func bigEndian(_ at: Int, bytes width: Int = 8) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<width { v = v << 8 | UInt64(bytes[at + k]) }
            return v
        }
        let count = bytes.count
        guard count >= HeadChunkFormat.headerSize else {
            return (0, corrupt(.fileHeader, 0, "\(count) bytes, shorter than the 8-byte header"))
        }
        let magic = UInt32(bigEndian(0, bytes: 4))
        guard magic == HeadChunkFormat.magic, bytes[4] == HeadChunkFormat.version else {
            return (0, corrupt(.fileHeader, 0, "magic \(String(magic, radix: 16)) version \(bytes[4]), expected 130bc91 version 1"))
        }
        var position = HeadChunkFormat.headerSize
        while position < count {
            let start = position
            guard count - start >= HeadChunkFormat.fixedChunkHeader + 1 else {
                if bytes[start...].allSatisfy({ $0 == 0 }) { return (start, nil) }
                return (start, corrupt(.chunkHeader, start, "\(count - start) bytes left, too few for a chunk header"))
            }
            let ref = bigEndian(start)
            let minTime = Int64(bitPattern: bigEndian(start + 8))
            let maxTime = Int64(bitPattern: bigEndian(start + 16))
            // Prometheus' end of data: a file may be longer than what was written into it.
            if ref == 0 && minTime == 0 && maxTime == 0 {
                if bytes[start...].allSatisfy({ $0 == 0 }) { return (start, nil) }
                return (start, corrupt(.chunkHeader, start, "a zero chunk header followed by data"))
            }
            let encoding = bytes[start + 24]
            var cursor = ByteCursor(bytes, from: start + HeadChunkFormat.fixedChunkHeader)
            guard let length = cursor.uvarint(), cursor.position <= count else {
                return (start, corrupt(.chunkHeader, start, "unreadable data length"))
            }
            let dataStart = cursor.position
            guard count - dataStart >= HeadChunkFormat.checksumSize,
                  length <= UInt64(count - dataStart - HeadChunkFormat.checksumSize), length <= UInt64(Int32.max) else {
                return (start, corrupt(.chunkData, start, "data length \(length) runs past the file's end at \(count)"))
            }
            let dataEnd = dataStart + Int(length)
            let stored = UInt32(bigEndian(dataEnd, bytes: 4))
            let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[start..<dataEnd]))
            guard stored == computed else {
                return (start, corrupt(.checksum, start, "stored \(String(stored, radix: 16)), computed \(String(computed, radix: 16))"))
            }
            position = dataEnd + HeadChunkFormat.checksumSize
            // Float chunks are all this head writes; others (another writer's) are passed over.
            guard encoding == XORChunk.encoding, minTime <= maxTime, length >= 2 else { continue }
            add(Entry(ref: ref, minTime: minTime, maxTime: maxTime, file: file, dataStart: dataStart, dataCount: Int32(length)))
            fileMaxTimes[sequence] = max(fileMaxTimes[sequence] ?? .min, maxTime)
        }
        return (position, nil)
    }

    private func add(_ entry: Entry) {
        let index = Int32(entries.count)
        entries.append(entry)
        if let chain = chains[entry.ref] {
            entries[Int(chain.last)].next = index
            chains[entry.ref] = (chain.first, index)
        } else {
            chains[entry.ref] = (index, index)
        }
        maxRef = max(maxRef, entry.ref)
    }

    /// The chunks of series `ref` from the one that starts with exactly the sample (`t`,
    /// `valueBits`) on (the last such one written, when there are several), in order, copied, with
    /// the first one's place (for `next` and `data`; the others follow it). Nil when no chunk that
    /// starts with that sample can be taken.
    /// Each lies within one range of `chunkRange` and holds only storable times, as the head's do.
    func chunks(of ref: UInt64, from t: Int64, valueBits: UInt64, chunkRange: Int64) -> (chunks: [ClosedChunk], first: Int32)? {
        guard let chain = chains[ref] else { return nil }
        var start: Int32 = -1
        var i = chain.first
        while i >= 0 {
            if entries[Int(i)].minTime == t { start = i }
            i = entries[Int(i)].next
        }
        guard start >= 0 else { return nil }
        var chunks: [ClosedChunk] = []
        i = start
        while i >= 0 {
            let entry = entries[Int(i)]
            // Chunks of one series never overlap nor cross a range, and hold only times the head
            // can store; one that would is not taken, nor any after it.
            guard StorableTime.range.contains(entry.minTime), StorableTime.range.contains(entry.maxTime),
                  entry.minTime > chunks.last?.maxTime ?? .min,
                  Head.rangeStart(entry.minTime, chunkRange) == Head.rangeStart(entry.maxTime, chunkRange) else { break }
            // The checksum vouches for the bytes, not for what they say: the chunk must decode
            // whole into times rising from its start to its end, as many as its header counts (the
            // head's appends and reads rely on that), and the first chunk start with the WAL's sample.
            guard wellFormed[Int(i)] else { break }
            if chunks.isEmpty && !starts(i, with: t, valueBits) { return nil }
            chunks.append(ClosedChunk(minTime: entry.minTime, maxTime: entry.maxTime, bytes: [UInt8](data(i))))
            i = entry.next
        }
        return chunks.isEmpty ? nil : (chunks, start)
    }

    /// The data of chunk `entry`, valid while this object lives.
    func data(_ entry: Int32) -> UnsafeBufferPointer<UInt8> {
        let e = entries[Int(entry)]
        let bytes = UnsafeRawBufferPointer(rebasing: mappings[Int(e.file)].bytes[e.dataStart..<(e.dataStart + Int(e.dataCount))])
        return bytes.bindMemory(to: UInt8.self)
    }

    /// The chunk of the same series written after `entry`, or -1.
    func next(_ entry: Int32) -> Int32 { entries[Int(entry)].next }

    /// Chunk `entry`'s first and last time and the sample count its header gives.
    func span(_ entry: Int32) -> (minTime: Int64, maxTime: Int64, samples: Int) {
        let e = entries[Int(entry)]
        return (e.minTime, e.maxTime, XORChunk.sampleCount(data(entry)))
    }

    /// Whether a chunk decodes whole into strictly rising times from its first time to its
    /// last, as many samples as its header counts.
    private static func isWellFormed(_ chunk: (data: UnsafeBufferPointer<UInt8>, minTime: Int64, maxTime: Int64)) -> Bool {
        var it = XORIterator(chunk.data)
        var previous = Int64.min, count = 0
        while let (t, _) = it.next() {
            guard t > previous, count > 0 || t == chunk.minTime else { return false }
            previous = t
            count += 1
        }
        return !it.failed && count > 0 && count == XORChunk.sampleCount(chunk.data) && previous == chunk.maxTime
    }

    /// Whether chunk `entry` starts with the sample (`t`, `valueBits`).
    func starts(_ entry: Int32, with t: Int64, _ valueBits: UInt64) -> Bool {
        var it = XORIterator(data(entry))
        guard let first = it.next() else { return false }
        return first.timestamp == t && first.valueBits == valueBits
    }
}
