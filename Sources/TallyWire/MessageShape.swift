/// The wire shape of a message the receiver parses but does not store (exemplars, metadata): for each known field its wire type, so a malformed message fails the request as it
/// fails any protobuf decoder, instead of being counted as if it were whole. Unknown fields are
/// skipped.
struct MessageShape: Sendable {
    enum Field: Sendable {
        /// A singular scalar or string of this wire type.
        case single(ProtobufReader.WireType)
        /// A repeated scalar: one value of this wire type per field, or a packed run of them.
        case repeated(ProtobufReader.WireType)
        /// A nested message, named rather than held: a shape inside an enum payload would be a
        /// tagged pointer, which LeakSanitizer cannot follow from these globals.
        case message(Nested)
    }

    enum Nested: Sendable {
        case label

        var shape: MessageShape {
            switch self {
            case .label: MessageShape.label
            }
        }
    }

    /// Indexed by field number; nil past the schema's or for a number it does not use.
    let fields: [Field?]

    init(_ byNumber: [Int: Field]) {
        var fields = [Field?](repeating: nil, count: (byNumber.keys.max() ?? 0) + 1)
        for (number, field) in byNumber { fields[number] = field }
        self.fields = fields
    }

    static let label = MessageShape([1: .single(.len), 2: .single(.len)])
    static let exemplar = MessageShape([1: .message(.label), 2: .single(.i64), 3: .single(.varint)])
    static let metadata = MessageShape([1: .single(.varint), 2: .single(.len), 4: .single(.len), 5: .single(.len)])

    /// Walks the message in `range`, checking every known field's wire type, nested messages and
    /// packed runs; returns normally only for a message any protobuf decoder would read.
    func check(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) {
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (number, type) = try reader.readKey()
            guard number < UInt64(fields.count), let field = fields[Int(number)] else {
                try reader.skip(type)
                continue
            }
            switch field {
            case let .single(wanted):
                try ProtobufReader.expect(type, wanted, "a field of an exemplar, metadata or histogram")
                try reader.skip(type)
            case let .repeated(element):
                if type == .len {
                    try Self.checkPacked(bytes, reader.readLengthDelimited(), of: element)
                } else {
                    try ProtobufReader.expect(type, element, "a repeated field of a histogram")
                    try reader.skip(type)
                }
            case let .message(nested):
                try ProtobufReader.expect(type, .len, "a nested message of an exemplar or histogram")
                try nested.shape.check(bytes, reader.readLengthDelimited())
            }
        }
    }

    private static func checkPacked(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, of element: ProtobufReader.WireType) throws(WireError) {
        switch element {
        case .i64: if range.count % 8 != 0 { throw .invalidProtobuf("packed doubles of \(range.count) bytes, not a multiple of 8") }
        case .i32: if range.count % 4 != 0 { throw .invalidProtobuf("packed fixed32 of \(range.count) bytes, not a multiple of 4") }
        case .varint:
            var reader = ProtobufReader(bytes, range: range)
            while !reader.isAtEnd { _ = try reader.readVarint() }
        case .len: throw .invalidProtobuf("a packed field of messages")
        }
    }
}
