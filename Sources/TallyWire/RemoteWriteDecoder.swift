/// Decodes a Remote-Write 1.0 `prometheus.WriteRequest` (prompb/remote.proto, prompb/types.proto).
///
/// Unknown fields are skipped, as protobuf requires, except 2.0's symbols and series (fields 4 and 5,
/// length-delimited): a 2.0 body sent as 1.0 is refused, not stored as nothing. Exemplars are parsed for framing and counted;
/// metadata is read (`WireMetadata`) and counted; the caller decides what to keep and report. Native histograms are read
/// (`WireHistogram`) and, unless `validatingHistograms` is false, checked against Prometheus' rules
/// (`HistogramValidator`): one that breaks them makes the request unreadable.
public enum RemoteWriteDecoder {
    /// Decompresses and decodes a request body, then validates each series' labels. Without
    /// `validatingLabels` the caller validates each series it needs (`validateLabels(ofSeriesAt:)`)
    /// before reading its labels: a receiver that knows a series by its encoded labels skips it.
    public static func decode(compressed: [UInt8], maxDecodedBytes: Int, validatingLabels: Bool = true) throws(WireError) -> WriteRequestView {
        try compressed.withUnsafeBufferPointer { (bytes) throws(WireError) in
            try decode(compressed: UnsafeRawBufferPointer(bytes), maxDecodedBytes: maxDecodedBytes, validatingLabels: validatingLabels)
        }
    }

    /// The same from a body held elsewhere (the server's `ByteBuffer`), read in place.
    public static func decode(compressed: UnsafeRawBufferPointer, maxDecodedBytes: Int, validatingLabels: Bool = true) throws(WireError) -> WriteRequestView {
        let body = try SnappyBlock.decompress(compressed, maxDecodedBytes: maxDecodedBytes)
        return try decode(body: body, validatingLabels: validatingLabels)
    }

    public static func decode(body: [UInt8], validatingLabels: Bool = true, validatingHistograms: Bool = true) throws(WireError) -> WriteRequestView {
        var view = WriteRequestView(body: body)
        // A label takes about 24 bytes on the wire and a series ~250: reserving from the body's size
        // saves the growth copies that appending would make (at most one body's worth of memory).
        view.labels.reserveCapacity(body.count / 24)
        view.series.reserveCapacity(body.count / 256)
        view.samples.reserveCapacity(body.count / 256)
        try body.withUnsafeBufferPointer { (bytes) throws(WireError) in
            guard bytes.count <= Int(Int32.max) else { throw .invalidProtobuf("body over 2 GiB") }
            var reader = ProtobufReader(bytes, range: 0..<bytes.count)
            while !reader.isAtEnd {
                let (field, type) = try reader.readKey()
                switch field {
                case 1:
                    try ProtobufReader.expect(type, .len, "WriteRequest.timeseries")
                    try decodeTimeSeries(bytes, reader.readLengthDelimited(), into: &view)
                case 3:
                    try ProtobufReader.expect(type, .len, "WriteRequest.metadata")
                    let metadata = try WireMetadata.decode10(bytes, reader.readLengthDelimited())
                    if metadata.isKeepable(bytes) { view.metadata.append(metadata) }
                    view.metadataCount += 1
                case 4 where type == .len, 5 where type == .len:
                    // 2.0's symbols and series: read as 1.0, such a body is empty, and a 204 would
                    // tell its sender everything was stored.
                    throw .invalidProtobuf("WriteRequest has field \(field), which Remote-Write 2.0 uses (symbols, timeseries) and 1.0 does not: "
                        + "a 2.0 body needs Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request")
                default:
                    try reader.skip(type)
                }
            }
            if validatingHistograms { try HistogramValidator.validate(view, bytes) }
            if validatingLabels { LabelValidator.validate(&view, limits: LabelLimits(), bytes) }
        }
        return view
    }

    private static func decodeTimeSeries(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into view: inout WriteRequestView) throws(WireError) {
        var series = WireSeries(
            labelStart: Int32(view.labels.count), labelCount: 0,
            sampleStart: Int32(view.samples.count), sampleCount: 0,
            histogramCount: 0, histogramStart: Int32(view.histograms.count), exemplarStart: Int32(view.exemplars.count), rejection: nil)
        // How every Prometheus writes a series: its labels first, back to back, each a field of at
        // most 127 bytes holding only a name and a value. That run is read here by its bytes, without
        // the general loop's work per field; anything else, and whatever follows, takes the loop.
        var position = range.lowerBound
        while range.upperBound - position >= 2 && bytes[position] == 0x0a && bytes[position + 1] < 0x80 {
            let labelEnd = position + 2 + Int(bytes[position + 1])
            guard labelEnd <= range.upperBound, let label = prometheusLabel(bytes, position + 2..<labelEnd) else { break }
            view.labels.append(label)
            series.labelCount += 1
            position = labelEnd
        }
        var reader = ProtobufReader(bytes, range: position..<range.upperBound)
        // The label fields' bytes, while they come back to back (Prometheus writes them first).
        var encodedLabels: Range<Int>? = position > range.lowerBound ? range.lowerBound..<position : nil
        var labelsContiguous = true
        while !reader.isAtEnd {
            let fieldStart = reader.position
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .len, "TimeSeries.labels")
                view.labels.append(try decodeLabel(bytes, reader.readLengthDelimited()))
                series.labelCount += 1
                if let previous = encodedLabels, previous.upperBound != fieldStart { labelsContiguous = false }
                encodedLabels = (encodedLabels?.lowerBound ?? fieldStart)..<reader.position
            case 2:
                try ProtobufReader.expect(type, .len, "TimeSeries.samples")
                view.samples.append(try decodeSample(bytes, reader.readLengthDelimited()))
                series.sampleCount += 1
            case 3:
                try ProtobufReader.expect(type, .len, "TimeSeries.exemplars")
                try decodeExemplar(bytes, reader.readLengthDelimited(), into: &view)
                series.exemplarCount += 1
            case 4:
                try ProtobufReader.expect(type, .len, "TimeSeries.histograms")
                view.histograms.append(try WireHistogram.decode(bytes, reader.readLengthDelimited()))
                series.histogramCount += 1
            default:
                try reader.skip(type)
            }
        }
        if labelsContiguous, let encodedLabels {
            series.encodedLabels = ByteSpan(start: Int32(encodedLabels.lowerBound), count: Int32(encodedLabels.count))
        }
        view.series.append(series)
    }

    /// An `Exemplar`: labels (as `Label` messages), value, timestamp.
    private static func decodeExemplar(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into view: inout WriteRequestView) throws(WireError) {
        var exemplar = WireExemplar(labelStart: Int32(view.exemplarLabels.count))
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .len, "Exemplar.labels")
                view.exemplarLabels.append(try decodeLabel(bytes, reader.readLengthDelimited()))
                exemplar.labelCount += 1
            case 2, 3: try readExemplarScalar(&reader, field, type, into: &exemplar)
            default: try reader.skip(type)
            }
        }
        view.exemplars.append(exemplar)
    }

    /// `Exemplar.value` (2) or `timestamp` (3), the same fields in 1.0 and 2.0.
    static func readExemplarScalar(_ reader: inout ProtobufReader, _ field: UInt64, _ type: ProtobufReader.WireType,
                                   into exemplar: inout WireExemplar) throws(WireError) {
        if field == 2 {
            try ProtobufReader.expect(type, .i64, "Exemplar.value")
            exemplar.valueBits = try reader.readFixed64()
        } else {
            try ProtobufReader.expect(type, .varint, "Exemplar.timestamp")
            exemplar.timestamp = Int64(bitPattern: try reader.readVarint())
        }
    }

    /// A `Label` message as every Prometheus encodes one: name then value, each with a one-byte
    /// length, and nothing else; nil for anything other than exactly that.
    @inline(__always)
    private static func prometheusLabel(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> WireLabel? {
        let start = range.lowerBound
        guard range.count >= 4 && bytes[start] == 0x0a && bytes[start + 1] < 0x80 else { return nil }
        let valueKey = start + 2 + Int(bytes[start + 1])
        guard valueKey + 2 <= range.upperBound && bytes[valueKey] == 0x12 && bytes[valueKey + 1] < 0x80
            && valueKey + 2 + Int(bytes[valueKey + 1]) == range.upperBound else { return nil }
        return WireLabel(name: ByteSpan(start: Int32(start + 2), count: Int32(bytes[start + 1])),
                         value: ByteSpan(start: Int32(valueKey + 2), count: Int32(bytes[valueKey + 1])))
    }

    private static func decodeLabel(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> WireLabel {
        if let label = prometheusLabel(bytes, range) { return label }
        var label = WireLabel(name: ByteSpan(start: Int32(range.lowerBound), count: 0),
                              value: ByteSpan(start: Int32(range.lowerBound), count: 0))
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .len, "Label.name")
                let r = try reader.readLengthDelimited()
                label.name = ByteSpan(start: Int32(r.lowerBound), count: Int32(r.count))
            case 2:
                try ProtobufReader.expect(type, .len, "Label.value")
                let r = try reader.readLengthDelimited()
                label.value = ByteSpan(start: Int32(r.lowerBound), count: Int32(r.count))
            default:
                try reader.skip(type)
            }
        }
        return label
    }

    static func decodeSample(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> WireSample {
        // proto3 defaults: an absent field is zero.
        var sample = WireSample(timestamp: 0, valueBits: 0)
        // How Prometheus encodes a sample: the value (fixed64) then the timestamp (varint), nothing else.
        let start = range.lowerBound
        if range.count >= 11 && bytes[start] == 0x09 && bytes[start + 9] == 0x10 {
            var rest = ProtobufReader(bytes, range: start + 10..<range.upperBound)
            let timestamp = try rest.readVarint()
            if rest.isAtEnd {
                return WireSample(timestamp: Int64(bitPattern: timestamp),
                                  valueBits: UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + start + 1).loadUnaligned(as: UInt64.self)))
            }
        }
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .i64, "Sample.value")
                sample.valueBits = try reader.readFixed64()
            case 2:
                try ProtobufReader.expect(type, .varint, "Sample.timestamp")
                sample.timestamp = Int64(bitPattern: try reader.readVarint())
            default:
                try reader.skip(type)
            }
        }
        return sample
    }
}
