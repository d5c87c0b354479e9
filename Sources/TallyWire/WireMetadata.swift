/// Metric metadata as a sender sent it: Remote-Write 1.0's `WriteRequest.metadata` (`MetricMetadata`),
/// or 2.0's per-series `Metadata` under the series' metric name. Spans point into the view's body.
public struct WireMetadata: Sendable, Equatable {
    /// The `MetricType` enum value (the same numbers in 1.0 and 2.0).
    public var type: UInt64 = 0
    public var name = ByteSpan(start: 0, count: 0)
    public var help = ByteSpan(start: 0, count: 0)
    public var unit = ByteSpan(start: 0, count: 0)

    /// Prometheus' name for the type (`textparse.MetricType`): "unknown" for 0 (unspecified) and
    /// for numbers past the enum.
    public var typeName: String {
        switch type {
        case 1: "counter"
        case 2: "gauge"
        case 3: "histogram"
        case 4: "gaugehistogram"
        case 5: "summary"
        case 6: "info"
        case 7: "stateset"
        default: "unknown"
        }
    }

    /// A 1.0 `MetricMetadata`: type (1), metric_family_name (2), help (4), unit (5); a field that
    /// repeats takes its last value, as protobuf's decoders do.
    static func decode10(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> WireMetadata {
        var metadata = WireMetadata()
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .varint, "MetricMetadata.type")
                metadata.type = try reader.readVarint()
            case 2, 4, 5:
                try ProtobufReader.expect(type, .len, "MetricMetadata text")
                let text = try reader.readLengthDelimited()
                let span = ByteSpan(start: Int32(text.lowerBound), count: Int32(text.count))
                if field == 2 { metadata.name = span } else if field == 4 { metadata.help = span } else { metadata.unit = span }
            default:
                try reader.skip(type)
            }
        }
        return metadata
    }

    /// Whether a receiver can keep it: a metric name Prometheus accepts, and UTF-8 text.
    func isKeepable(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        LabelValidator.isLegacyName(bytes, name.range, colons: true) && isValidUTF8(bytes, help.range) && isValidUTF8(bytes, unit.range)
    }
}
