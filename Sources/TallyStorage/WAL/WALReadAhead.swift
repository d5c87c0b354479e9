import Dispatch
import Foundation
import Synchronization

/// Reads WAL files on a thread of its own, a bounded number of records ahead of the thread that
/// applies them, so unframing, decompressing and decoding a record overlaps with applying the ones
/// before it.
///
/// Events come in file order and record order: each file's records, then that file's end. Whoever
/// takes events takes them until `.finished`; `stop()` makes the rest of the reading skip work, so
/// draining after an error is quick. Records travel in batches: waking a waiting thread costs
/// tens of microseconds on a virtual machine, more than applying a record.
final class WALReadAhead<Record: Sendable>: Sendable {
    enum Event: Sendable {
        case records([Record])
        /// Where reading the file stopped: cleanly, torn or corrupt.
        case fileEnd(path: String, WALReadEnd)
        /// The file could not be opened or read; nothing after it is read.
        case failed(StorageIOError)
        case finished
    }

    private let pending = Mutex<[Event]>([])
    private let ready = DispatchSemaphore(value: 0)
    private let room: DispatchSemaphore
    private let stopped = Atomic<Bool>(false)

    /// Starts reading `paths` (mapped, or copied into memory when `mapped` is false), turning each
    /// record into a `Record` with `decode` on the reading thread. Records are handed over `batch`
    /// at a time, or fewer once they came from `batchBytes` bytes of records (a record holds a
    /// whole write request, which can be large), with at most `depth` batches waiting: the memory
    /// held is bounded by the batches, not by the files.
    init(paths: [String], mapped: Bool, batch: Int = 32, batchBytes: Int = 1 << 18, depth: Int = 4,
         decode: @escaping @Sendable (UnsafeRawBufferPointer) -> Record) {
        room = DispatchSemaphore(value: depth)
        let thread = Thread { [self] in
            var records: [Record] = []
            var recordBytes = 0
            func handOver() {
                if !records.isEmpty { put(.records(records)) }
                records = []
                records.reserveCapacity(batch)
                recordBytes = 0
            }
            for path in paths {
                guard !stopped.load(ordering: .relaxed) else { break }
                let bytes: SegmentBytes
                do throws(StorageIOError) {
                    bytes = try SegmentBytes(path: path, mapped: mapped)
                } catch {
                    handOver()
                    put(.failed(error))
                    break
                }
                let end = WALSegmentReader.read(bytes.bytes, file: path) { record in
                    guard !stopped.load(ordering: .relaxed) else { return }
                    records.append(decode(record))
                    recordBytes += record.count
                    if records.count == batch || recordBytes >= batchBytes { handOver() }
                }
                handOver()
                put(.fileEnd(path: path, end))
            }
            put(.finished)
        }
        thread.name = "WAL read-ahead"
        thread.start()
    }

    private func put(_ event: Event) {
        room.wait()
        pending.withLock { $0.append(event) }
        ready.signal()
    }

    /// The next event, waiting for it; `.finished` after the last.
    func next() -> Event {
        ready.wait()
        let event = pending.withLock { $0.removeFirst() }
        room.signal()
        return event
    }

    /// Makes the reading thread skip the records and files left; events up to `.finished` still come.
    func stop() { stopped.store(true, ordering: .relaxed) }
}
