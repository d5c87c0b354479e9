/// Decodes a Remote-Write 2.0 `io.prometheus.write.v2.Request` (proto/write_v2.proto) into the same
/// view as 1.0: each label is a pair of byte ranges, here into the request's symbols table, so no
/// string is made per label.
///
/// Refused as invalid protobuf (the whole request): a symbol reference past the table, an odd
/// number of label references, a table that does not start with the empty string while anything
/// refers to it. Refused per series, as 1.0's label rules are: labels not sorted by name, an empty
/// label value. Exemplars and metadata are checked (their references too) and counted; native
/// histograms are read and checked as in 1.0 (`HistogramValidator`); created timestamps are read
/// and not stored.
public enum RemoteWriteV2Decoder {
    public static func decode(compressed: [UInt8], maxDecodedBytes: Int) throws(WireError) -> WriteRequestView {
        try decode(body: SnappyBlock.decompress(compressed, maxDecodedBytes: maxDecodedBytes), maxKeyBytes: maxDecodedBytes)
    }

    /// Labels are left for `validateLabels(ofSeriesAt:)`, as with 1.0's `validatingLabels: false`,
    /// except the 2.0 rules above, which are set here.
    ///
    /// Each series that passes them gets a label key in `encodedLabels`: its labels as Prometheus
    /// writes them in 1.0, appended after the body, so a receiver's known-series shortcut works
    /// across requests (whose symbol indexes differ) and is shared with 1.0 senders. A request whose
    /// keys would pass `maxKeyBytes` (one symbol can be referred to a million times) gets no more
    /// keys; those series take the slow path.
    public static func decode(body: [UInt8], maxKeyBytes: Int = 64 << 20, validatingHistograms: Bool = true) throws(WireError) -> WriteRequestView {
        var view = WriteRequestView(body: body)
        var keys = LabelKeys(base: body.count, limit: min(maxKeyBytes, Int(Int32.max) - body.count))
        try body.withUnsafeBufferPointer { (bytes) throws(WireError) in
            guard bytes.count <= Int(Int32.max) else { throw .invalidProtobuf("body over 2 GiB") }
            // Symbols may follow the series that use them: find both first.
            var symbols: [ByteSpan] = []
            var series: [Range<Int>] = []
            var reader = ProtobufReader(bytes, range: 0..<bytes.count)
            while !reader.isAtEnd {
                let (field, type) = try reader.readKey()
                switch field {
                case 4:
                    try ProtobufReader.expect(type, .len, "Request.symbols")
                    let symbol = try reader.readLengthDelimited()
                    symbols.append(ByteSpan(start: Int32(symbol.lowerBound), count: Int32(symbol.count)))
                case 5:
                    try ProtobufReader.expect(type, .len, "Request.timeseries")
                    series.append(try reader.readLengthDelimited())
                default:
                    try reader.skip(type)
                }
            }
            let table = SymbolTable(symbols: symbols)
            for range in series { try decodeTimeSeries(bytes, range, table, into: &view, keys: &keys) }
            if validatingHistograms { try HistogramValidator.validate(view, bytes) }
        }
        if !keys.bytes.isEmpty { view.body += keys.bytes }
        return view
    }

    /// The label keys of a request, bounded in total.
    struct LabelKeys {
        /// Where the keys start in the view's body (its protobuf part ends there).
        let base: Int
        let limit: Int
        private var writer = ProtobufWriter()
        var bytes: [UInt8] { writer.bytes }

        init(base: Int, limit: Int) {
            self.base = base
            self.limit = limit
        }

        /// Appends `labels` as 1.0 `TimeSeries.labels` fields (name then value) and returns where they
        /// are, or an empty span once the keys would pass the limit.
        mutating func append(_ labels: ArraySlice<WireLabel>, from source: UnsafeBufferPointer<UInt8>) -> ByteSpan {
            let room = limit - bytes.count
            var size = 0
            for label in labels {
                let message = Self.fieldSize(Int(label.name.count)) + Self.fieldSize(Int(label.value.count))
                size += Self.fieldSize(message)
                // Checked as it grows: each label adds at most a few GiB, far from overflowing.
                guard size <= room else { return ByteSpan(start: 0, count: 0) }
            }
            let start = base + bytes.count
            for label in labels {
                writer.key(1, 2)
                writer.varint(UInt64(Self.fieldSize(Int(label.name.count)) + Self.fieldSize(Int(label.value.count))))
                writer.bytesField(1, source[label.name.range])
                writer.bytesField(2, source[label.value.range])
            }
            return ByteSpan(start: Int32(start), count: Int32(size))
        }

        /// A length-delimited field of `length` bytes with a one-byte key: key, varint length, bytes.
        private static func fieldSize(_ length: Int) -> Int {
            var varint = 1
            var rest = length >> 7
            while rest > 0 {
                varint += 1
                rest >>= 7
            }
            return 1 + varint + length
        }
    }

    /// The request's symbols; a reference is checked against it before use.
    struct SymbolTable {
        let symbols: [ByteSpan]

        init(symbols: [ByteSpan]) { self.symbols = symbols }

        func resolve(_ ref: UInt64, _ what: StaticString) throws(WireError) -> ByteSpan {
            guard ref < UInt64(symbols.count) else {
                throw .invalidProtobuf("\(what) refers to symbol \(ref) of a table of \(symbols.count)")
            }
            // The spec's rule, checked where it matters: refs may point at "" for an absent value.
            guard symbols[0].count == 0 else { throw .invalidProtobuf("symbols[0] is not the empty string") }
            return symbols[Int(ref)]
        }
    }

    private static func decodeTimeSeries(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ table: SymbolTable,
                                         into view: inout WriteRequestView, keys: inout LabelKeys) throws(WireError) {
        var series = WireSeries(labelStart: Int32(view.labels.count), labelCount: 0, sampleStart: Int32(view.samples.count),
                                sampleCount: 0, histogramCount: 0, histogramStart: Int32(view.histograms.count),
                                exemplarStart: Int32(view.exemplars.count), rejection: nil)
        var refs: [UInt64] = []
        // A repeated metadata field merges into one (protobuf's rule for a singular message).
        var metadata: MetadataRefs?
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1: try readRefs(&reader, type, into: &refs)
            case 2:
                try ProtobufReader.expect(type, .len, "TimeSeries.samples")
                view.samples.append(try RemoteWriteDecoder.decodeSample(bytes, reader.readLengthDelimited()))
                series.sampleCount += 1
            case 3:
                try ProtobufReader.expect(type, .len, "TimeSeries.histograms")
                view.histograms.append(try WireHistogram.decode(bytes, reader.readLengthDelimited()))
                series.histogramCount += 1
            case 4:
                try ProtobufReader.expect(type, .len, "TimeSeries.exemplars")
                try decodeExemplar(bytes, reader.readLengthDelimited(), table, into: &view)
                series.exemplarCount += 1
            case 5:
                try ProtobufReader.expect(type, .len, "TimeSeries.metadata")
                try readMetadata(bytes, reader.readLengthDelimited(), into: &metadata)
            case 6:
                // The created timestamp: Prometheus 2.42's formats have nowhere to keep it.
                try ProtobufReader.expect(type, .varint, "TimeSeries.created_timestamp")
                _ = try reader.readVarint()
            default:
                try reader.skip(type)
            }
        }
        if let metadata {
            // Absent references are 0: the empty string, which the table must then hold.
            _ = try table.resolve(metadata.help, "metadata help")
            _ = try table.resolve(metadata.unit, "metadata unit")
            view.metadataCount += 1
        }
        guard refs.count % 2 == 0 else { throw .invalidProtobuf("TimeSeries.labels_refs holds \(refs.count) references, not name-value pairs") }
        for pair in stride(from: 0, to: refs.count, by: 2) {
            let label = WireLabel(name: try table.resolve(refs[pair], "a label name"), value: try table.resolve(refs[pair + 1], "a label value"))
            if series.rejection == nil {
                if label.value.count == 0 {
                    series.rejection = .emptyLabelValue
                } else if pair > 0, let previous = view.labels.last, !precedes(bytes, previous.name, label.name) {
                    series.rejection = .unsortedLabels
                }
            }
            view.labels.append(label)
            series.labelCount += 1
        }
        // Only series that pass 2.0's own rules get a key: a 1.0 series with the same bytes passed
        // 1.0's, which are the rest.
        if series.rejection == nil && series.labelCount > 0 {
            series.encodedLabels = keys.append(view.labels[Int(series.labelStart)...], from: bytes)
        }
        view.series.append(series)
    }

    /// A repeated uint32: one varint per field, or a packed run of them.
    private static func readRefs(_ reader: inout ProtobufReader, _ type: ProtobufReader.WireType, into refs: inout [UInt64]) throws(WireError) {
        if type == .len {
            var packed = ProtobufReader(reader.bytes, range: try reader.readLengthDelimited())
            while !packed.isAtEnd { refs.append(try readUInt32(&packed)) }
        } else {
            try ProtobufReader.expect(type, .varint, "labels_refs")
            refs.append(try readUInt32(&reader))
        }
    }

    /// A uint32 field's value: a varint cut to its low 32 bits, as protobuf's decoders cut it.
    private static func readUInt32(_ reader: inout ProtobufReader) throws(WireError) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: try reader.readVarint()))
    }

    /// An `Exemplar`: label references resolved through the symbols, value, timestamp.
    private static func decodeExemplar(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ table: SymbolTable,
                                       into view: inout WriteRequestView) throws(WireError) {
        var refs: [UInt64] = []
        var exemplar = WireExemplar(labelStart: Int32(view.exemplarLabels.count))
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1: try readRefs(&reader, type, into: &refs)
            case 2, 3: try RemoteWriteDecoder.readExemplarScalar(&reader, field, type, into: &exemplar)
            default: try reader.skip(type)
            }
        }
        guard refs.count % 2 == 0 else { throw .invalidProtobuf("Exemplar.labels_refs holds \(refs.count) references, not name-value pairs") }
        for pair in stride(from: 0, to: refs.count, by: 2) {
            view.exemplarLabels.append(WireLabel(name: try table.resolve(refs[pair], "an exemplar label"),
                                                 value: try table.resolve(refs[pair + 1], "an exemplar label")))
        }
        exemplar.labelCount = Int32(refs.count / 2)
        view.exemplars.append(exemplar)
    }

    /// A series' metadata references (`help_ref`, `unit_ref`); 0 when absent.
    private struct MetadataRefs {
        var help: UInt64 = 0
        var unit: UInt64 = 0
    }

    private static func readMetadata(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into metadata: inout MetadataRefs?) throws(WireError) {
        var refs = metadata ?? MetadataRefs()
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .varint, "Metadata.type")
                try reader.skip(type)
            case 3:
                try ProtobufReader.expect(type, .varint, "Metadata.help_ref")
                refs.help = try readUInt32(&reader)
            case 4:
                try ProtobufReader.expect(type, .varint, "Metadata.unit_ref")
                refs.unit = try readUInt32(&reader)
            default: try reader.skip(type)
            }
        }
        metadata = refs
    }

    /// Byte order of two label names, as Prometheus sorts them: strictly increasing.
    private static func precedes(_ bytes: UnsafeBufferPointer<UInt8>, _ a: ByteSpan, _ b: ByteSpan) -> Bool {
        LabelValidator.compare(bytes, a, b) < 0
    }
}
