import CSnappy

/// Snappy block compression of whole WAL records, as Prometheus' `wlog` does with compression on
/// (its default since 2.20): a record is compressed before it is split into fragments, and every
/// fragment of a compressed record carries `WALFormat.snappyFlag`. Through libsnappy's C API.
enum WALSnappy {
    /// Snappy's densest element is a 3-byte copy of 64 bytes: a record that decodes to more than
    /// this many times its compressed size claims what no encoder can write.
    static let maxExpansion = 22

    /// The snappy form of `record`, written into `buffer` from `offset` on (grown as needed, never
    /// shrunk, so a writer reuses it), if it is shorter than the record; else nil, and the record is
    /// written as it is (Prometheus' rule). An empty record is never compressed.
    static func compress(_ record: UnsafeRawBufferPointer, into buffer: inout [UInt8], at offset: Int) -> Range<Int>? {
        guard let source = record.baseAddress, !record.isEmpty else { return nil }
        let bound = snappy_max_compressed_length(record.count)
        if buffer.count < offset + bound { buffer += repeatElement(0, count: offset + bound - buffer.count) }
        var produced = bound
        let status = buffer.withUnsafeMutableBytes { out in
            snappy_compress(source.assumingMemoryBound(to: CChar.self), record.count,
                            (out.baseAddress! + offset).assumingMemoryBound(to: CChar.self), &produced)
        }
        precondition(status == SNAPPY_OK, "snappy_compress failed with a buffer of max_compressed_length")
        return produced < record.count ? offset..<offset + produced : nil
    }

    /// Decodes `compressed` into `output` (reused; only its first `n` bytes are the record) and
    /// returns `n`. The length the data claims is checked against `maxExpansion` before anything is
    /// allocated, and the decoded size must be exactly that length. An empty payload is an empty
    /// record, as Prometheus' reader takes it.
    static func decompress(_ compressed: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(WALSnappyError) -> Int {
        guard let base = compressed.baseAddress, !compressed.isEmpty else { return 0 }
        let source = base.assumingMemoryBound(to: CChar.self)
        var length = 0
        guard snappy_uncompressed_length(source, compressed.count, &length) == SNAPPY_OK else {
            throw WALSnappyError("unreadable length prefix")
        }
        let (limit, overflow) = compressed.count.multipliedReportingOverflow(by: maxExpansion)
        guard overflow || length <= limit else {
            throw WALSnappyError("claims \(length) bytes, more than \(compressed.count) compressed bytes can hold")
        }
        if output.count < max(length, 1) { output = [UInt8](repeating: 0, count: max(length, 1)) }
        var produced = length
        let status = output.withUnsafeMutableBytes { out in
            snappy_uncompress(source, compressed.count, out.baseAddress!.assumingMemoryBound(to: CChar.self), &produced)
        }
        guard status == SNAPPY_OK, produced == length else { throw WALSnappyError("data does not decode to the \(length) bytes it claims") }
        return length
    }
}

/// Why a compressed record does not decode.
struct WALSnappyError: Error {
    let problem: String
    init(_ problem: String) { self.problem = problem }
}
