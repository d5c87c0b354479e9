/// Appends protobuf fields to a byte array. Senders (tests, the load generator) build requests with it.
public struct ProtobufWriter: Sendable {
    public var bytes: [UInt8] = []

    public init() {}

    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func key(_ field: UInt64, _ wireType: UInt8) { varint(field << 3 | UInt64(wireType)) }

    public mutating func varintField(_ field: UInt64, _ value: UInt64) {
        key(field, 0)
        varint(value)
    }

    public mutating func fixed64Field(_ field: UInt64, _ value: UInt64) {
        key(field, 1)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    public mutating func bytesField(_ field: UInt64, _ value: some Collection<UInt8>) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func messageField(_ field: UInt64, _ build: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        build(&nested)
        bytesField(field, nested.bytes)
    }

    /// A `Sample` (the same message in 1.0 and 2.0) as field `field`, laid out as Prometheus writes it.
    public mutating func sampleField(_ field: UInt64, _ sample: WireSample) {
        messageField(field) { s in
            s.fixed64Field(1, sample.valueBits)
            s.varintField(2, UInt64(bitPattern: sample.timestamp))
        }
    }
}

/// What a sender needs from a request builder of either Remote-Write version.
public protocol RemoteWriteRequestBuilder: Sendable {
    init()
    mutating func addSeries(labels: [(String, String)], samples: [WireSample])
    func compressed() -> [UInt8]
}

/// Builds Remote-Write 1.0 request bodies.
public struct WriteRequestEncoder: RemoteWriteRequestBuilder {
    public private(set) var writer = ProtobufWriter()

    public init() {}

    /// Adds one TimeSeries with labels in the given order (the receiver sorts them).
    public mutating func addSeries(labels: [(String, String)], samples: [WireSample]) {
        writer.messageField(1) { series in
            for (name, value) in labels {
                series.messageField(1) { label in
                    label.bytesField(1, Array(name.utf8))
                    label.bytesField(2, Array(value.utf8))
                }
            }
            for sample in samples { series.sampleField(2, sample) }
        }
    }

    /// Adds one `MetricMetadata` (type as its enum number).
    public mutating func addMetadata(type: UInt64, name: String, help: String, unit: String) {
        writer.messageField(3) { metadata in
            metadata.varintField(1, type)
            metadata.bytesField(2, Array(name.utf8))
            metadata.bytesField(4, Array(help.utf8))
            metadata.bytesField(5, Array(unit.utf8))
        }
    }

    /// The protobuf body, snappy-compressed as it goes on the wire.
    public func compressed() -> [UInt8] { SnappyBlock.compress(writer.bytes) }
}

/// Builds Remote-Write 2.0 request bodies: each string goes once into the symbols table, which
/// starts with the empty string, and series refer to it by index.
public struct WriteRequestV2Encoder: RemoteWriteRequestBuilder {
    public private(set) var symbols: [String] = [""]
    /// Keyed by bytes: Swift's `==` on strings would take a canonically equivalent string for another.
    private var symbolIndex: [[UInt8]: UInt64] = [[]: 0]
    private var series = ProtobufWriter()

    public init() {}

    /// Adds one TimeSeries with labels in the given order (a valid request sorts them by name).
    public mutating func addSeries(labels: [(String, String)], samples: [WireSample]) {
        addSeries(labels: labels, samples: samples, metadata: nil)
    }

    /// Adds one TimeSeries with its `Metadata` (type as its enum number), if given.
    public mutating func addSeries(labels: [(String, String)], samples: [WireSample], metadata: (type: UInt64, help: String, unit: String)?) {
        var refs = ProtobufWriter()
        for (name, value) in labels {
            refs.varint(symbol(name))
            refs.varint(symbol(value))
        }
        let metadataRefs = metadata.map { ($0.type, symbol($0.help), symbol($0.unit)) }
        series.messageField(5) { s in
            s.bytesField(1, refs.bytes)
            for sample in samples { s.sampleField(2, sample) }
            if let (type, help, unit) = metadataRefs {
                s.messageField(5) { m in
                    m.varintField(1, type)
                    m.varintField(3, help)
                    m.varintField(4, unit)
                }
            }
        }
    }

    private mutating func symbol(_ string: String) -> UInt64 {
        if let known = symbolIndex[Array(string.utf8)] { return known }
        symbols.append(string)
        symbolIndex[Array(string.utf8)] = UInt64(symbols.count - 1)
        return UInt64(symbols.count - 1)
    }

    /// The protobuf body: the symbols, then the series.
    public var bytes: [UInt8] {
        var body = ProtobufWriter()
        for symbol in symbols { body.bytesField(4, Array(symbol.utf8)) }
        return body.bytes + series.bytes
    }

    public func compressed() -> [UInt8] { SnappyBlock.compress(bytes) }
}
