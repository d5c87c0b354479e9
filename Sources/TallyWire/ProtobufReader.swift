/// A bounds-checked cursor over protobuf bytes. It never copies: length-delimited fields come back
/// as ranges into the same buffer.
struct ProtobufReader: ~Copyable {
    enum WireType: UInt8 { case varint = 0, i64 = 1, len = 2, i32 = 5 }

    let bytes: UnsafeBufferPointer<UInt8>
    var position: Int
    let end: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    var isAtEnd: Bool { position >= end }

    /// At most 10 bytes. Bits past the 64th in the tenth byte are dropped, as Prometheus' own
    /// (gogo-generated) decoder and libprotobuf-c drop them: refusing them would refuse requests
    /// that Prometheus accepts.
    mutating func readVarint() throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < end {
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift >= 70 { throw .invalidProtobuf("varint longer than 10 bytes") }
        }
        throw .invalidProtobuf("truncated varint")
    }

    /// Reads a field key; returns the field number and wire type.
    /// A key takes at most 5 bytes (a 32-bit tag), as protobuf's reference decoders require.
    mutating func readKey() throws(WireError) -> (field: UInt64, type: WireType) {
        let start = position
        let key = try readVarint()
        if position - start > 5 { throw .invalidProtobuf("field key longer than 5 bytes") }
        guard let type = WireType(rawValue: UInt8(key & 7)) else {
            throw .invalidProtobuf("unsupported wire type \(key & 7)")
        }
        let field = key >> 3
        if field == 0 { throw .invalidProtobuf("field number 0") }
        return (field, type)
    }

    mutating func readFixed64() throws(WireError) -> UInt64 {
        guard end - position >= 8 else { throw .invalidProtobuf("truncated fixed64") }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return value
    }

    mutating func readLengthDelimited() throws(WireError) -> Range<Int> {
        let length = try readVarint()
        guard length <= UInt64(end - position) else { throw .invalidProtobuf("length-delimited field overruns its message") }
        let start = position
        position += Int(length)
        return start..<position
    }

    mutating func skip(_ type: WireType) throws(WireError) {
        switch type {
        case .varint: _ = try readVarint()
        case .i64:
            guard end - position >= 8 else { throw .invalidProtobuf("truncated fixed64") }
            position += 8
        case .i32:
            guard end - position >= 4 else { throw .invalidProtobuf("truncated fixed32") }
            position += 4
        case .len: _ = try readLengthDelimited()
        }
    }

    /// Checks that a known field arrived with the wire type its schema gives it.
    @inline(__always)
    static func expect(_ type: WireType, _ wanted: WireType, _ what: StaticString) throws(WireError) {
        if type != wanted { throw wrongType(type, wanted, what) }
    }

    /// Kept out of line: every field is checked, and the message is built only for a wrong one.
    @inline(never)
    private static func wrongType(_ type: WireType, _ wanted: WireType, _ what: StaticString) -> WireError {
        .invalidProtobuf("\(what) has wire type \(type.rawValue), want \(wanted.rawValue)")
    }
}
