/// The wire shape of a message the receiver parses but does not store (1.0 metadata): for each
/// known field its wire type, so a malformed message fails the request as it fails any protobuf
/// decoder, instead of being counted as if it were whole. Unknown fields are skipped.
struct MessageShape: Sendable {
    /// Indexed by field number: the wire type of a singular field; nil past the schema's or for a
    /// number it does not use.
    let fields: [ProtobufReader.WireType?]

    init(_ byNumber: [Int: ProtobufReader.WireType]) {
        var fields = [ProtobufReader.WireType?](repeating: nil, count: (byNumber.keys.max() ?? 0) + 1)
        for (number, type) in byNumber { fields[number] = type }
        self.fields = fields
    }

    static let metadata = MessageShape([1: .varint, 2: .len, 4: .len, 5: .len])

    /// Walks the message in `range`, checking every known field's wire type; returns normally only
    /// for a message any protobuf decoder would read.
    func check(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) {
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (number, type) = try reader.readKey()
            if number < UInt64(fields.count), let wanted = fields[Int(number)] {
                try ProtobufReader.expect(type, wanted, "a field of a metadata message")
            }
            try reader.skip(type)
        }
    }
}
