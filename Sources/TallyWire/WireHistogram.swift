/// One native histogram of a request (1.0 `prometheus.Histogram`, 2.0 `io.prometheus.write.v2.Histogram`:
/// the same fields and numbers). Scalars are read once; spans and buckets stay in the message's bytes
/// and are read in place (`WriteRequestView.spans(of:_:)`, `deltas`, `counts`), so a histogram costs
/// one fixed-size value whatever its bucket count.
public struct WireHistogram: Sendable, Equatable {
    /// Which side of the zero bucket.
    public enum Side: Sendable { case negative, positive }

    public var timestamp: Int64 = 0
    /// The `count` oneof holds `count_float`: a float histogram (absolute bucket counts in
    /// `*_counts`). Otherwise an integer histogram (`count_int`, deltas in `*_deltas`), also
    /// when no count is set, as Prometheus' `IsFloatHistogram` decides.
    public var isFloat = false
    /// `count_int`, or the bits of `count_float`; 0 when unset.
    public var countBits: UInt64 = 0
    public var sumBits: UInt64 = 0
    public var schema: Int32 = 0
    public var zeroThresholdBits: UInt64 = 0
    /// The `zero_count` oneof: `zero_count_int`, or the bits of `zero_count_float`.
    public var zeroCountBits: UInt64 = 0
    public var zeroCountIsFloat = false
    /// The `reset_hint` enum's number (0 unknown, 1 yes, 2 no, 3 gauge; proto3 keeps others).
    public var resetHint: Int32 = 0
    /// The whole message in the view's body: spans and buckets are read from it.
    public var message = ByteSpan(start: 0, count: 0)
    public var negativeSpanCount: Int32 = 0
    public var positiveSpanCount: Int32 = 0
    public var negativeDeltaCount: Int32 = 0
    public var positiveDeltaCount: Int32 = 0
    public var negativeCountCount: Int32 = 0
    public var positiveCountCount: Int32 = 0
    public var customValueCount: Int32 = 0

    public init() {}

    /// `count_int`, 0 for a float histogram (Go's `GetCountInt`).
    public var countInt: UInt64 { isFloat ? 0 : countBits }
    /// `count_float`, 0 for an integer histogram.
    public var countFloat: Double { isFloat ? Double(bitPattern: countBits) : 0 }
    public var zeroCountInt: UInt64 { zeroCountIsFloat ? 0 : zeroCountBits }
    public var zeroCountFloat: Double { zeroCountIsFloat ? Double(bitPattern: zeroCountBits) : 0 }
    public var sum: Double { Double(bitPattern: sumBits) }
    public var zeroThreshold: Double { Double(bitPattern: zeroThresholdBits) }

    /// The buckets the histogram's kind uses on `side`: deltas for an integer histogram, counts for a float one.
    public func bucketCount(_ side: Side) -> Int {
        switch (side, isFloat) {
        case (.negative, false): Int(negativeDeltaCount)
        case (.negative, true): Int(negativeCountCount)
        case (.positive, false): Int(positiveDeltaCount)
        case (.positive, true): Int(positiveCountCount)
        }
    }

    public func spanCount(_ side: Side) -> Int { Int(side == .negative ? negativeSpanCount : positiveSpanCount) }

    /// Field numbers of the message, shared by both versions.
    enum Field {
        static let countInt: UInt64 = 1, countFloat: UInt64 = 2, sum: UInt64 = 3, schema: UInt64 = 4
        static let zeroThreshold: UInt64 = 5, zeroCountInt: UInt64 = 6, zeroCountFloat: UInt64 = 7
        static let negativeSpans: UInt64 = 8, negativeDeltas: UInt64 = 9, negativeCounts: UInt64 = 10
        static let positiveSpans: UInt64 = 11, positiveDeltas: UInt64 = 12, positiveCounts: UInt64 = 13
        static let resetHint: UInt64 = 14, timestamp: UInt64 = 15, customValues: UInt64 = 16

        static func spans(_ side: Side) -> UInt64 { side == .negative ? negativeSpans : positiveSpans }
        static func deltas(_ side: Side) -> UInt64 { side == .negative ? negativeDeltas : positiveDeltas }
        static func counts(_ side: Side) -> UInt64 { side == .negative ? negativeCounts : positiveCounts }
    }

    /// Reads the histogram message in `range`, with protobuf's rules: the last value of a scalar
    /// wins, a oneof takes the last of its members, repeated scalars come packed or one a field (or
    /// both), unknown fields are skipped, a known field of the wrong wire type is invalid.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> WireHistogram {
        var h = WireHistogram()
        h.message = ByteSpan(start: Int32(range.lowerBound), count: Int32(range.count))
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case Field.countInt, Field.countFloat:
                h.isFloat = field == Field.countFloat
                h.countBits = try readScalar(&reader, type, float: h.isFloat, "Histogram.count")
            case Field.sum: h.sumBits = try readScalar(&reader, type, float: true, "Histogram.sum")
            case Field.schema: h.schema = unzigzag32(try readScalar(&reader, type, float: false, "Histogram.schema"))
            case Field.zeroThreshold: h.zeroThresholdBits = try readScalar(&reader, type, float: true, "Histogram.zero_threshold")
            case Field.zeroCountInt, Field.zeroCountFloat:
                h.zeroCountIsFloat = field == Field.zeroCountFloat
                h.zeroCountBits = try readScalar(&reader, type, float: h.zeroCountIsFloat, "Histogram.zero_count")
            case Field.negativeSpans, Field.positiveSpans:
                try ProtobufReader.expect(type, .len, "Histogram spans")
                _ = try readSpan(bytes, reader.readLengthDelimited())
                if field == Field.negativeSpans { h.negativeSpanCount += 1 } else { h.positiveSpanCount += 1 }
            case Field.negativeDeltas: h.negativeDeltaCount += try countRepeated(&reader, type, of: .varint)
            case Field.positiveDeltas: h.positiveDeltaCount += try countRepeated(&reader, type, of: .varint)
            case Field.negativeCounts: h.negativeCountCount += try countRepeated(&reader, type, of: .i64)
            case Field.positiveCounts: h.positiveCountCount += try countRepeated(&reader, type, of: .i64)
            case Field.customValues: h.customValueCount += try countRepeated(&reader, type, of: .i64)
            case Field.resetHint:
                // An enum is an int32: a longer varint is cut to its low 32 bits.
                h.resetHint = Int32(truncatingIfNeeded: try readScalar(&reader, type, float: false, "Histogram.reset_hint"))
            case Field.timestamp: h.timestamp = Int64(bitPattern: try readScalar(&reader, type, float: false, "Histogram.timestamp"))
            default: try reader.skip(type)
            }
        }
        return h
    }

    private static func readScalar(_ reader: inout ProtobufReader, _ type: ProtobufReader.WireType, float: Bool,
                                   _ what: StaticString) throws(WireError) -> UInt64 {
        try ProtobufReader.expect(type, float ? .i64 : .varint, what)
        return float ? try reader.readFixed64() : try reader.readVarint()
    }

    /// sint32: zigzag over the varint's low 32 bits, as protobuf's decoders read it.
    static func unzigzag32(_ raw: UInt64) -> Int32 {
        let v = UInt32(truncatingIfNeeded: raw)
        return Int32(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    static func unzigzag64(_ v: UInt64) -> Int64 { Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }

    /// A `BucketSpan` message: offset (sint32) and length (uint32), each the last one written.
    static func readSpan(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(WireError) -> (offset: Int32, length: UInt32) {
        var span: (offset: Int32, length: UInt32) = (0, 0)
        var reader = ProtobufReader(bytes, range: range)
        while !reader.isAtEnd {
            let (field, type) = try reader.readKey()
            switch field {
            case 1: span.offset = unzigzag32(try readScalar(&reader, type, float: false, "BucketSpan.offset"))
            case 2: span.length = UInt32(truncatingIfNeeded: try readScalar(&reader, type, float: false, "BucketSpan.length"))
            default: try reader.skip(type)
            }
        }
        return span
    }

    /// How many values one field of a repeated scalar holds: a packed run, or one value.
    private static func countRepeated(_ reader: inout ProtobufReader, _ type: ProtobufReader.WireType,
                                      of element: ProtobufReader.WireType) throws(WireError) -> Int32 {
        guard type == .len else {
            try ProtobufReader.expect(type, element, "a repeated field of a histogram")
            try reader.skip(type)
            return 1
        }
        let run = try reader.readLengthDelimited()
        if element == .i64 {
            guard run.count % 8 == 0 else { throw .invalidProtobuf("packed doubles of \(run.count) bytes, not a multiple of 8") }
            return Int32(run.count / 8)
        }
        var packed = ProtobufReader(reader.bytes, range: run)
        var n: Int32 = 0
        while !packed.isAtEnd {
            _ = try packed.readVarint()
            n += 1
        }
        return n
    }

    /// Calls `body` with each raw value of repeated scalar field `field` in order (varints as read,
    /// doubles as bits), or each span's bytes for a message field. The message was read whole by
    /// `decode`, so it cannot fail here; a fault would end the walk early.
    static func forEach(_ field: UInt64, in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: (UInt64) -> Void) {
        var reader = ProtobufReader(bytes, range: range)
        do throws(WireError) {
            while !reader.isAtEnd {
                let (number, type) = try reader.readKey()
                guard number == field else {
                    try reader.skip(type)
                    continue
                }
                switch type {
                case .varint: body(try reader.readVarint())
                case .i64: body(try reader.readFixed64())
                case .len:
                    var packed = ProtobufReader(bytes, range: try reader.readLengthDelimited())
                    let doubles = field == Field.negativeCounts || field == Field.positiveCounts || field == Field.customValues
                    while !packed.isAtEnd { body(doubles ? try packed.readFixed64() : try packed.readVarint()) }
                case .i32: try reader.skip(type)
                }
            }
        } catch {
            return
        }
    }

    /// Calls `body` with each span of `side` (a `BucketSpan` message each) in order.
    static func forEachSpan(_ side: Side, in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                            _ body: (_ offset: Int32, _ length: UInt32) -> Void) {
        let field = Field.spans(side)
        var reader = ProtobufReader(bytes, range: range)
        do throws(WireError) {
            while !reader.isAtEnd {
                let (number, type) = try reader.readKey()
                if number == field && type == .len {
                    let span = try readSpan(bytes, reader.readLengthDelimited())
                    body(span.offset, span.length)
                } else {
                    try reader.skip(type)
                }
            }
        } catch {
            return
        }
    }
}

extension WriteRequestView {
    /// The native histograms of `series`, in arrival order.
    public func histograms(of series: WireSeries) -> ArraySlice<WireHistogram> {
        histograms[Int(series.histogramStart)..<Int(series.histogramStart + series.histogramCount)]
    }

    /// Each span of `side` as (offset, length), in order.
    public func forEachSpan(of histogram: WireHistogram, _ side: WireHistogram.Side, _ body: (_ offset: Int32, _ length: UInt32) -> Void) {
        self.body.withUnsafeBufferPointer { WireHistogram.forEachSpan(side, in: $0, histogram.message.range, body) }
    }

    /// Each bucket delta of `side` (integer histograms' `*_deltas`), in order.
    public func forEachDelta(of histogram: WireHistogram, _ side: WireHistogram.Side, _ body: (Int64) -> Void) {
        self.body.withUnsafeBufferPointer {
            WireHistogram.forEach(WireHistogram.Field.deltas(side), in: $0, histogram.message.range) { body(WireHistogram.unzigzag64($0)) }
        }
    }

    /// Each absolute bucket count of `side` (float histograms' `*_counts`), in order.
    public func forEachCount(of histogram: WireHistogram, _ side: WireHistogram.Side, _ body: (Double) -> Void) {
        self.body.withUnsafeBufferPointer {
            WireHistogram.forEach(WireHistogram.Field.counts(side), in: $0, histogram.message.range) { body(Double(bitPattern: $0)) }
        }
    }

    /// Each `custom_values` bound, in order.
    public func forEachCustomValue(of histogram: WireHistogram, _ body: (Double) -> Void) {
        self.body.withUnsafeBufferPointer {
            WireHistogram.forEach(WireHistogram.Field.customValues, in: $0, histogram.message.range) { body(Double(bitPattern: $0)) }
        }
    }
}
