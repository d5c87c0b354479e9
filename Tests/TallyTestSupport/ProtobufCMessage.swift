import RemoteWriteProtobufC

/// A message type of the protobuf-c oracle, through the functions protoc-c generates for it: read
/// bytes into its C struct, encode the struct again.
public struct ProtobufCMessage<Message>: Sendable {
    let unpack: @Sendable (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<Message>?
    let free: @Sendable (UnsafeMutablePointer<Message>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void
    let packedSize: @Sendable (UnsafePointer<Message>?) -> Int
    let pack: @Sendable (UnsafePointer<Message>?, UnsafeMutablePointer<UInt8>?) -> Int

    /// `read` on what protobuf-c makes of `body`, or nil when it refuses the bytes.
    public func withUnpacked<R>(_ body: [UInt8], _ read: (Message) -> R) -> R? {
        body.withUnsafeBufferPointer { bytes in
            guard let message = unpack(nil, bytes.count, bytes.baseAddress) else { return nil }
            defer { free(message, nil) }
            return read(message.pointee)
        }
    }

    /// protobuf-c's own encoding of what it reads from `body`.
    public func repacked(_ body: [UInt8]) -> [UInt8]? {
        body.withUnsafeBufferPointer { bytes -> [UInt8]? in
            guard let message = unpack(nil, bytes.count, bytes.baseAddress) else { return nil }
            defer { free(message, nil) }
            var out = [UInt8](repeating: 0, count: packedSize(message))
            let written = out.withUnsafeMutableBufferPointer { pack(message, $0.baseAddress) }
            return Array(out.prefix(written))
        }
    }
}

/// Remote-Write 1.0's `prometheus.WriteRequest`.
public let protobufCWriteRequest = ProtobufCMessage<Prometheus__WriteRequest>(
    unpack: prometheus__write_request__unpack, free: prometheus__write_request__free_unpacked,
    packedSize: prometheus__write_request__get_packed_size, pack: prometheus__write_request__pack)

/// Remote-Write 2.0's `io.prometheus.write.v2.Request`.
public let protobufCRequestV2 = ProtobufCMessage<Io__Prometheus__Write__V2__Request>(
    unpack: io__prometheus__write__v2__request__unpack, free: io__prometheus__write__v2__request__free_unpacked,
    packedSize: io__prometheus__write__v2__request__get_packed_size, pack: io__prometheus__write__v2__request__pack)

/// A `bytes` field's value (the oracle declares strings as bytes, which keeps NULs inside).
public func protobufCBytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    data.len == 0 ? [] : Array(UnsafeBufferPointer(start: data.data, count: data.len))
}

/// The unknown fields protobuf-c kept in a message (its `base.n_unknown_fields` and
/// `base.unknown_fields`): tag, and whether length-delimited.
public func protobufCUnknownFields(_ count: UInt32, _ fields: UnsafeMutablePointer<ProtobufCMessageUnknownField>?) -> [(tag: UInt32, lengthDelimited: Bool)] {
    guard let fields else { return [] }
    return (0..<Int(count)).map { k in (fields[k].tag, fields[k].wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) }
}
