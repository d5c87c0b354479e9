import CSnappy

/// Snappy *block* format (the only one Remote-Write allows), through libsnappy.
public enum SnappyBlock {
    /// The stream-identifier chunk that starts the framed format, which Remote-Write forbids.
    static let framedMagic: [UInt8] = [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]

    /// Decompresses `compressed`, refusing framed input and any output over `maxDecodedBytes`
    /// before allocating it (the length prefix is read first).
    public static func decompress(_ compressed: [UInt8], maxDecodedBytes: Int) throws(WireError) -> [UInt8] {
        try compressed.withUnsafeBufferPointer { (input) throws(WireError) in try decompress(UnsafeRawBufferPointer(input), maxDecodedBytes: maxDecodedBytes) }
    }

    /// The same from bytes held elsewhere (a request body in a NIO `ByteBuffer`), read in place.
    public static func decompress(_ compressed: UnsafeRawBufferPointer, maxDecodedBytes: Int) throws(WireError) -> [UInt8] {
        if compressed.starts(with: framedMagic) { throw .framedSnappy }
        let source = (compressed.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
        var length = 0
        guard snappy_uncompressed_length(source, compressed.count, &length) == SNAPPY_OK else {
            throw .corruptSnappy
        }
        if length > maxDecodedBytes { throw .decodedTooLarge(length, limit: maxDecodedBytes) }
        var produced = length
        var status = SNAPPY_OK
        let output = [UInt8](unsafeUninitializedCapacity: max(length, 1)) { buffer, count in
            status = buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                snappy_uncompress(source, compressed.count, $0, &produced)
            }
            count = status == SNAPPY_OK ? produced : 0
        }
        guard status == SNAPPY_OK, produced == length else { throw .corruptSnappy }
        return output
    }

    /// Compresses `input` in the block format (used by senders: tests and the load generator).
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        let bound = snappy_max_compressed_length(input.count)
        return [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            var produced = bound
            let status = input.withUnsafeBufferPointer { source in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bound) { out in
                    UnsafeRawPointer(source.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                        .withMemoryRebound(to: CChar.self, capacity: max(source.count, 1)) {
                            snappy_compress($0, source.count, out, &produced)
                        }
                }
            }
            precondition(status == SNAPPY_OK, "snappy_compress failed with a buffer of max_compressed_length")
            count = produced
        }
    }
}
