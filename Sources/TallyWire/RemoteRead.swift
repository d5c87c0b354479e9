/// A Remote-Read request (`prompb.ReadRequest`, snappy block format), as Prometheus' `remote_read`
/// client sends it: queries of a time range and label matchers, and the response types the client
/// takes (none: raw samples).
public struct RemoteReadRequest: Sendable {
    public struct Matcher: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case equal, notEqual, regex, notRegex }
        public let kind: Kind
        public let name: String
        public let value: String
    }

    public struct Query: Sendable {
        public var start: Int64 = 0
        public var end: Int64 = 0
        public var matchers: [Matcher] = []
    }

    /// `ReadRequest.ResponseType`: 0 raw samples, 1 streamed XOR chunks.
    public static let samplesResponseType: UInt64 = 0
    public static let streamedChunksResponseType: UInt64 = 1

    /// The response type to answer with, as Prometheus negotiates it: the first the client lists
    /// that this server writes; none listed means raw samples; nil when it lists only others.
    public var responseType: UInt64? {
        let supported = [Self.samplesResponseType, Self.streamedChunksResponseType]
        return acceptedResponseTypes.isEmpty ? Self.samplesResponseType : acceptedResponseTypes.first { supported.contains($0) }
    }

    public var queries: [Query] = []
    public var acceptedResponseTypes: [UInt64] = []

    /// Decodes a compressed body; every failure is the client's (a 400). Hints are read past: they
    /// only let a server answer with fewer samples, and this one answers with all of them.
    public static func decode(compressed: [UInt8], maxDecodedBytes: Int) throws(WireError) -> RemoteReadRequest {
        try decode(body: try SnappyBlock.decompress(compressed, maxDecodedBytes: maxDecodedBytes))
    }

    /// Decodes a decompressed body.
    public static func decode(body: [UInt8]) throws(WireError) -> RemoteReadRequest {
        try body.withUnsafeBufferPointer { (bytes) throws(WireError) -> RemoteReadRequest in
            var request = RemoteReadRequest()
            var reader = ProtobufReader(bytes, range: 0..<bytes.count)
            while !reader.isAtEnd {
                let (field, type) = try reader.readKey()
                switch field {
                case 1:
                    try ProtobufReader.expect(type, .len, "ReadRequest.queries")
                    request.queries.append(try query(bytes, try reader.readLengthDelimited()))
                case 2 where type == .len:
                    // Packed, as proto3 writes repeated enums.
                    var packed = ProtobufReader(bytes, range: try reader.readLengthDelimited())
                    while !packed.isAtEnd { request.acceptedResponseTypes.append(try packed.readVarint()) }
                case 2:
                    try ProtobufReader.expect(type, .varint, "ReadRequest.accepted_response_types")
                    request.acceptedResponseTypes.append(try reader.readVarint())
                default:
                    try reader.skip(type)
                }
            }
            return request
        }
    }

    private static func query(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> Query {
        var query = Query()
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .varint, "Query.start_timestamp_ms")
                query.start = Int64(bitPattern: try reader.readVarint())
            case 2:
                try ProtobufReader.expect(type, .varint, "Query.end_timestamp_ms")
                query.end = Int64(bitPattern: try reader.readVarint())
            case 3:
                try ProtobufReader.expect(type, .len, "Query.matchers")
                query.matchers.append(try matcher(bytes, try reader.readLengthDelimited()))
            default:
                try reader.skip(type)
            }
        }
        return query
    }

    private static func matcher(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> Matcher {
        var kind = Matcher.Kind.equal
        var name = "", value = ""
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .varint, "LabelMatcher.type")
                let raw = try reader.readVarint()
                switch raw {
                case 0: kind = .equal
                case 1: kind = .notEqual
                case 2: kind = .regex
                case 3: kind = .notRegex
                default: throw .invalidProtobuf("label matcher type \(raw) is none of EQ, NEQ, RE, NRE")
                }
            case 2:
                try ProtobufReader.expect(type, .len, "LabelMatcher.name")
                name = try text(bytes, try reader.readLengthDelimited(), "LabelMatcher.name")
            case 3:
                try ProtobufReader.expect(type, .len, "LabelMatcher.value")
                value = try text(bytes, try reader.readLengthDelimited(), "LabelMatcher.value")
            default:
                try reader.skip(type)
            }
        }
        return Matcher(kind: kind, name: name, value: value)
    }

    /// A string field's bytes, refused unless UTF-8: stored labels always are, and a matcher read
    /// with its bad bytes replaced would select other series than the client named.
    private static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ what: StaticString) throws(WireError) -> String {
        let slice = UnsafeBufferPointer(rebasing: bytes[range])
        guard let text = String(validating: slice, as: UTF8.self) else { throw .invalidProtobuf("\(what) is not UTF-8") }
        return text
    }
}

/// Builds a Remote-Read response (`prompb.ReadResponse` of raw samples, snappy block format): one
/// `QueryResult` per query, in the order asked, each with its series.
public struct ReadResponseEncoder: Sendable {
    private var response = ProtobufWriter()
    private var result = ProtobufWriter()

    public init() {}

    /// One series of the current query's result. Every sample's value and timestamp are written,
    /// zeros too, so that a value's bits (-0.0, a staleness NaN) arrive as stored.
    public mutating func addSeries(labels: [(name: String, value: String)], samples: [(timestamp: Int64, valueBits: UInt64)]) {
        func varintSize(_ value: UInt64) -> Int { value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7 }
        func fieldSize(_ count: Int) -> Int { 1 + varintSize(UInt64(count)) + count }
        var size = 0
        for label in labels { size += fieldSize(fieldSize(label.name.utf8.count) + fieldSize(label.value.utf8.count)) }
        for sample in samples { size += fieldSize(9 + 1 + varintSize(UInt64(bitPattern: sample.timestamp))) }
        result.key(1, 2)
        result.varint(UInt64(size))
        for label in labels {
            result.key(1, 2)
            result.varint(UInt64(fieldSize(label.name.utf8.count) + fieldSize(label.value.utf8.count)))
            result.bytesField(1, label.name.utf8)
            result.bytesField(2, label.value.utf8)
        }
        for sample in samples {
            result.key(2, 2)
            result.varint(UInt64(9 + 1 + varintSize(UInt64(bitPattern: sample.timestamp))))
            result.fixed64Field(1, sample.valueBits)
            result.varintField(2, UInt64(bitPattern: sample.timestamp))
        }
    }

    /// Ends the current query's result; the next series go to the next query's.
    public mutating func endResult() {
        response.bytesField(1, result.bytes)
        result = ProtobufWriter()
    }

    public var compressed: [UInt8] { SnappyBlock.compress(response.bytes) }
}

/// One message of a streamed Remote-Read answer (`prompb.ChunkedReadResponse`): one series' sorted
/// labels and some of its chunks, for the query at `queryIndex`. Fields holding zero are left out,
/// as Prometheus' encoder leaves them out. The caller frames each message (its length, then its
/// CRC32C).
public enum ChunkedReadResponse {
    public struct Chunk: Sendable {
        public var minTime: Int64
        public var maxTime: Int64
        /// `prompb.Chunk.Encoding`: 1 XOR.
        public var encoding: UInt64
        public var data: [UInt8]

        public init(minTime: Int64, maxTime: Int64, encoding: UInt64, data: [UInt8]) {
            (self.minTime, self.maxTime, self.encoding, self.data) = (minTime, maxTime, encoding, data)
        }

        /// The encoded message's size, which Prometheus counts against a frame's budget.
        public var encodedSize: Int { encoded.bytes.count }

        var encoded: ProtobufWriter {
            var writer = ProtobufWriter()
            if minTime != 0 { writer.varintField(1, UInt64(bitPattern: minTime)) }
            if maxTime != 0 { writer.varintField(2, UInt64(bitPattern: maxTime)) }
            if encoding != 0 { writer.varintField(3, encoding) }
            if !data.isEmpty { writer.bytesField(4, data) }
            return writer
        }
    }

    /// The encoded size of one label, which Prometheus takes off a frame's budget for every frame
    /// of the series.
    public static func encodedSize(name: String, value: String) -> Int { label(name, value).bytes.count }

    public static func message(labels: [(name: String, value: String)], chunks: [Chunk], queryIndex: Int64) -> [UInt8] {
        var response = ProtobufWriter()
        response.messageField(1) { series in
            for (name, value) in labels { series.bytesField(1, label(name, value).bytes) }
            for chunk in chunks { series.bytesField(2, chunk.encoded.bytes) }
        }
        if queryIndex != 0 { response.varintField(2, UInt64(bitPattern: queryIndex)) }
        return response.bytes
    }

    private static func label(_ name: String, _ value: String) -> ProtobufWriter {
        var writer = ProtobufWriter()
        if !name.isEmpty { writer.bytesField(1, name.utf8) }
        if !value.isEmpty { writer.bytesField(2, value.utf8) }
        return writer
    }
}
