/// Decodes a Remote-Write 2.0 `io.prometheus.write.v2.Request` (proto/write_v2.proto) into the same
/// view as 1.0: each label is a pair of byte ranges, here into the request's symbols table, so no
/// string is made per label.
///
/// Refused as invalid protobuf (the whole request): fields 1-3, reserved because 1.0 uses them (a
/// 1.0 body sent as 2.0, which would otherwise read as empty), a symbol reference past the table, an odd
/// number of label references, a table that does not start with the empty string while anything
/// refers to it. Refused per series, as 1.0's label rules are: labels not sorted by name, an empty
/// label value. Exemplars are checked (their references too) and counted; metadata is read under
/// the series' metric name (`WireMetadata`) and counted; native
/// histograms are read and checked as in 1.0 (`HistogramValidator`); created timestamps are read
/// and not stored.
public enum RemoteWriteV2Decoder {
    public static func decode(compressed: [UInt8], maxDecodedBytes: Int) throws(WireError) -> WriteRequestView {
        try compressed.withUnsafeBufferPointer { (bytes) throws(WireError) in try decode(compressed: UnsafeRawBufferPointer(bytes), maxDecodedBytes: maxDecodedBytes) }
    }

    /// The same from a body held elsewhere (the server's `ByteBuffer`), read in place.
    public static func decode(compressed: UnsafeRawBufferPointer, maxDecodedBytes: Int) throws(WireError) -> WriteRequestView {
        try decode(body: SnappyBlock.decompress(compressed, maxDecodedBytes: maxDecodedBytes))
    }

    /// Labels are left for `validateLabels(ofSeriesAt:)`, as with 1.0's `validatingLabels: false`,
    /// except the 2.0 rules above, which are set here.
    ///
    /// Each label's name and value references stay in `labelSymbols`, so a receiver can resolve each
    /// symbol of the request once and know a series again by the symbols of its labels, without
    /// reading their bytes per series.
    public static func decode(body: [UInt8], validatingHistograms: Bool = true) throws(WireError) -> WriteRequestView {
        var view = WriteRequestView(body: body)
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
                case 1, 2, 3:
                    // Reserved in 2.0 because 1.0 uses them: read as 2.0, a 1.0 body is empty, and a
                    // 204 would tell its sender everything was stored.
                    throw .invalidProtobuf("io.prometheus.write.v2.Request has field \(field), which is reserved (Remote-Write 1.0's "
                        + "timeseries and metadata): a 1.0 body needs Content-Type: application/x-protobuf without proto=, or proto=prometheus.WriteRequest")
                default:
                    try reader.skip(type)
                }
            }
            view.symbols = symbols
            // Each series message holds at least one byte, so these stay within the body's size.
            view.series.reserveCapacity(series.count)
            view.samples.reserveCapacity(series.count)
            let table = SymbolTable(symbols: symbols)
            for (index, range) in series.enumerated() {
                try decodeTimeSeries(bytes, range, table, into: &view)
                if index == 0 {
                    // Requests repeat one shape: the first series sizes the rest. A label takes at
                    // least two bytes of references, which bounds the guess by the body.
                    let labels = min(view.labels.count * series.count, bytes.count / 2)
                    view.labels.reserveCapacity(labels)
                    view.labelSymbols.reserveCapacity(labels)
                }
            }
            if validatingHistograms { try HistogramValidator.validate(view, bytes) }
        }
        return view
    }

    /// The request's symbols; a reference is checked against it before use.
    struct SymbolTable {
        let symbols: [ByteSpan]
        private let startsEmpty: Bool

        init(symbols: [ByteSpan]) {
            self.symbols = symbols
            startsEmpty = symbols.first?.count == 0
        }

        @inline(__always)
        func resolve(_ ref: UInt32, _ what: StaticString) throws(WireError) -> ByteSpan {
            guard Int(ref) < symbols.count else {
                throw .invalidProtobuf("\(what) refers to symbol \(ref) of a table of \(symbols.count)")
            }
            // The spec's rule, checked where it matters: refs may point at "" for an absent value.
            guard startsEmpty else { throw .invalidProtobuf("symbols[0] is not the empty string") }
            return symbols[Int(ref)]
        }
    }

    private static func decodeTimeSeries(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ table: SymbolTable,
                                         into view: inout WriteRequestView) throws(WireError) {
        var series = WireSeries(labelStart: Int32(view.labels.count), labelCount: 0, sampleStart: Int32(view.samples.count),
                                sampleCount: 0, histogramCount: 0, histogramStart: Int32(view.histograms.count),
                                exemplarStart: Int32(view.exemplars.count), rejection: nil)
        var labels = LabelRefs()
        // A repeated metadata field merges into one (protobuf's rule for a singular message).
        var metadata: MetadataRefs?
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                if type == .len {
                    var packed = ProtobufReader(bytes, range: try reader.readLengthDelimited())
                    while !packed.isAtEnd {
                        // References under 16384 (one or two bytes) inline; longer ones take the full varint.
                        let first = bytes[packed.position]
                        let ref: UInt32
                        if first < 0x80 {
                            ref = UInt32(first)
                            packed.position += 1
                        } else if packed.end - packed.position >= 2 && bytes[packed.position + 1] < 0x80 {
                            ref = UInt32(first & 0x7f) | UInt32(bytes[packed.position + 1]) << 7
                            packed.position += 2
                        } else {
                            ref = try readUInt32(&packed)
                        }
                        try labels.take(ref, table, bytes, &series, &view)
                    }
                } else {
                    try ProtobufReader.expect(type, .varint, "labels_refs")
                    try labels.take(try readUInt32(&reader), table, bytes, &series, &view)
                }
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
            var kept = WireMetadata(type: metadata.type, help: try table.resolve(metadata.help, "metadata help"),
                                    unit: try table.resolve(metadata.unit, "metadata unit"))
            // The metric it describes is the series' own.
            if let name = view.labels[Int(series.labelStart)...].first(where: { LabelValidator.equals(bytes, $0.name, LabelValidator.metricName) }) {
                kept.name = name.value
                if kept.isKeepable(bytes) { view.metadata.append(kept) }
            }
            view.metadataCount += 1
        }
        guard labels.name == nil else { throw .invalidProtobuf("TimeSeries.labels_refs holds \(labels.count) references, not name-value pairs") }
        view.series.append(series)
    }

    /// One series' label references, taken as they come (a pair may span two fields): a name waits
    /// for its value, then the label is checked against 2.0's rules and added to the view.
    private struct LabelRefs {
        var name: (span: ByteSpan, ref: UInt32)?
        var count = 0

        @inline(__always)
        mutating func take(_ ref: UInt32, _ table: SymbolTable, _ bytes: UnsafeBufferPointer<UInt8>, _ series: inout WireSeries,
                           _ view: inout WriteRequestView) throws(WireError) {
            count += 1
            guard let labelName = name else {
                name = (try table.resolve(ref, "a label name"), ref)
                return
            }
            name = nil
            let label = WireLabel(name: labelName.span, value: try table.resolve(ref, "a label value"))
            if series.rejection == nil {
                // An empty name is out of order too, and a repeated one is not in order: each is
                // named for what it is (the label validator names a repeated one).
                if label.name.count == 0 {
                    series.rejection = .emptyLabelName
                } else if label.value.count == 0 {
                    series.rejection = .emptyLabelValue
                } else if series.labelCount > 0, let previous = view.labels.last, LabelValidator.compare(bytes, previous.name, label.name) > 0 {
                    series.rejection = .unsortedLabels
                }
            }
            view.labels.append(label)
            view.labelSymbols.append(LabelSymbols(name: labelName.ref, value: ref))
            series.labelCount += 1
        }
    }

    /// A uint32 field's value: a varint cut to its low 32 bits, as protobuf's decoders cut it.
    private static func readUInt32(_ reader: inout ProtobufReader) throws(WireError) -> UInt32 {
        UInt32(truncatingIfNeeded: try reader.readVarint())
    }

    /// An `Exemplar`: label references resolved through the symbols, value, timestamp.
    private static func decodeExemplar(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ table: SymbolTable,
                                       into view: inout WriteRequestView) throws(WireError) {
        var refs: [UInt32] = []
        var exemplar = WireExemplar(labelStart: Int32(view.exemplarLabels.count))
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                if type == .len {
                    var packed = ProtobufReader(bytes, range: try reader.readLengthDelimited())
                    while !packed.isAtEnd { refs.append(try readUInt32(&packed)) }
                } else {
                    try ProtobufReader.expect(type, .varint, "labels_refs")
                    refs.append(try readUInt32(&reader))
                }
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

    /// A series' metadata: its type and references (`help_ref`, `unit_ref`); 0 when absent.
    private struct MetadataRefs {
        var type: UInt64 = 0
        var help: UInt32 = 0
        var unit: UInt32 = 0
    }

    private static func readMetadata(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into metadata: inout MetadataRefs?) throws(WireError) {
        var refs = metadata ?? MetadataRefs()
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1:
                try ProtobufReader.expect(type, .varint, "Metadata.type")
                refs.type = try reader.readVarint()
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
}
