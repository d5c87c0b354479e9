/// The Prometheus XOR (Gorilla) float chunk, encoding 1, byte-identical to `tsdb/chunkenc/xor.go`
/// of Prometheus 2.42 (format in ../shared/notes/prometheus-formats.md §6 and docs/formats.md).
///
/// Bytes 0-1 hold the sample count (big-endian); the bit stream follows, MSB first. Values are kept
/// as bit patterns so staleness markers (a signalling NaN) are never quieted.
public struct XORChunk: Sendable {
    public static let encoding: UInt8 = 1

    private var encoder = XOREncoder(capacity: 128)
    public var bytes: [UInt8] { encoder.stream.bytes }
    private var lastTimestamp: Int64 = 0
    private var lastValueBits: UInt64 = 0

    public init() {}

    public var count: Int { Self.sampleCount(encoder.stream.bytes) }

    /// The sample count in a chunk's first two bytes (big-endian); 0 for fewer than two bytes.
    public static func sampleCount<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) -> Int {
        guard bytes.count >= 2 else { return 0 }
        return Int(bytes[bytes.startIndex]) << 8 | Int(bytes[bytes.index(after: bytes.startIndex)])
    }

    public mutating func append(timestamp t: Int64, valueBits v: UInt64) {
        encoder.append(timestamp: t, valueBits: v, previousTimestamp: lastTimestamp, previousValueBits: lastValueBits)
        lastTimestamp = t
        lastValueBits = v
    }

    /// Prometheus' `bitRange`: -(2^(n-1)-1) <= x <= 2^(n-1).
    static func fits(_ x: Int64, _ n: Int64) -> Bool {
        -((1 << (n - 1)) - 1) <= x && x <= 1 << (n - 1)
    }
}

/// The XOR encoder's state but the previous sample, which the head keeps per series anyway (19 bytes
/// laid out as here, so a series' open chunk costs no more than its bytes beside it).
struct XOREncoder: Sendable {
    private var lastDelta: UInt64 = 0
    var stream: BitWriter
    private var values = XORValueWriter()

    /// The most bytes one sample can add: a 64-bit delta of delta with its 4-bit prefix, then a
    /// value with a new leading/trailing window (77 bits), rounded up, and a fresh trailing byte.
    static let maxSampleBytes = 20

    /// An empty chunk with room for `capacity` bytes.
    init(capacity: Int) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(2, capacity))
        bytes.append(0)
        bytes.append(0)
        stream = BitWriter(bytes: bytes)
    }

    /// An empty chunk holding no memory: its first append must come through `init(capacity:)`.
    init() { stream = BitWriter(bytes: []) }

    /// Empties the chunk, keeping its buffer and that buffer's capacity (when no one else holds it).
    mutating func clear() {
        var bytes = stream.bytes
        self = XOREncoder()
        bytes.removeAll(keepingCapacity: true)
        bytes.append(0)
        bytes.append(0)
        stream = BitWriter(bytes: bytes)
    }

    var count: Int { XORChunk.sampleCount(stream.bytes) }

    /// Appends a sample after the given previous one (ignored for the first sample).
    @inline(__always)
    mutating func append(timestamp t: Int64, valueBits v: UInt64, previousTimestamp: Int64, previousValueBits: UInt64) {
        let n = count
        switch n {
        case 0:
            if stream.bytes.isEmpty { stream = BitWriter(bytes: [0, 0]) }
            var zigzag = UInt64(bitPattern: (t << 1) ^ (t >> 63))
            writeUvarintBytes(&zigzag)
            stream.writeBits(v, 64)
        case 1:
            var delta = UInt64(bitPattern: t &- previousTimestamp)
            lastDelta = delta
            writeUvarintBytes(&delta)
            values.write(v, after: previousValueBits, to: &stream)
        default:
            let delta = UInt64(bitPattern: t &- previousTimestamp)
            let dod = Int64(bitPattern: delta &- lastDelta)
            lastDelta = delta
            // The stream moves into the register's keeping and back, so that it stays unshared.
            var bits = SampleBits(stream: stream)
            stream = BitWriter(bytes: [])
            if dod == 0 {
                bits.writeBit(false)
            } else if XORChunk.fits(dod, 14) {
                bits.writeBits(0b10, 2); bits.writeBits(UInt64(bitPattern: dod), 14)
            } else if XORChunk.fits(dod, 17) {
                bits.writeBits(0b110, 3); bits.writeBits(UInt64(bitPattern: dod), 17)
            } else if XORChunk.fits(dod, 20) {
                bits.writeBits(0b1110, 4); bits.writeBits(UInt64(bitPattern: dod), 20)
            } else {
                bits.writeBits(0b1111, 4); bits.writeBits(UInt64(bitPattern: dod), 64)
            }
            values.write(v, after: previousValueBits, to: &bits)
            stream = bits.finish()
        }
        stream.bytes[0] = UInt8(truncatingIfNeeded: (n + 1) >> 8)
        stream.bytes[1] = UInt8(truncatingIfNeeded: n + 1)
    }

    private mutating func writeUvarintBytes(_ value: inout UInt64) {
        while value >= 0x80 {
            stream.writeByte(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        stream.writeByte(UInt8(value))
    }
}

/// Prometheus' `xorWrite`: a value as its XOR with the previous one, in the window of leading and
/// trailing zero bits of the last value that needed a new one. XOR chunks write their values with
/// it, histogram chunks their sums.
struct XORValueWriter {
    private var leading: UInt8 = 0xff
    private var trailing: UInt8 = 0

    @inline(__always)
    mutating func write<Sink: BitSink>(_ v: UInt64, after previous: UInt64, to stream: inout Sink) {
        let delta = v ^ previous
        if delta == 0 {
            stream.writeBit(false)
            return
        }
        stream.writeBit(true)
        var newLeading = UInt8(delta.leadingZeroBitCount)
        let newTrailing = UInt8(delta.trailingZeroBitCount)
        if newLeading >= 32 { newLeading = 31 }
        if leading != 0xff && newLeading >= leading && newTrailing >= trailing {
            stream.writeBit(false)
            stream.writeBits(delta >> trailing, Int(64 - leading - trailing))
            return
        }
        leading = newLeading
        trailing = newTrailing
        stream.writeBit(true)
        stream.writeBits(UInt64(newLeading), 5)
        let significant = 64 - newLeading - newTrailing
        stream.writeBits(UInt64(significant), 6)
        stream.writeBits(delta >> newTrailing, Int(significant))
    }
}

/// Where an encoder writes bits, MSB first.
protocol BitSink {
    mutating func writeBit(_ bit: Bool)
    mutating func writeBits(_ value: UInt64, _ count: Int)
}

/// The bits of one XOR sample gathered in a 64-bit register and handed to the stream when it is
/// full and at the end: one or two stream writes a sample instead of up to eight, each of which
/// checks the array. The stream ends as the separate writes would have left it: whether an
/// aligned end has a fresh trailing byte depends on whether the last of them wrote whole bytes.
struct SampleBits: BitSink {
    private var stream: BitWriter
    private var pending: UInt64 = 0
    private var count = 0
    private var lastWroteWholeBytes = false

    init(stream: BitWriter) { self.stream = stream }

    @inline(__always)
    mutating func writeBit(_ bit: Bool) { writeBits(bit ? 1 : 0, 1) }

    @inline(__always)
    mutating func writeBits(_ value: UInt64, _ n: Int) {
        let v = n == 64 ? value : value & ((1 &<< UInt64(n)) &- 1)
        if count + n > 64 { flush() }
        pending = count == 0 ? v : pending &<< UInt64(n) | v
        count += n
        lastWroteWholeBytes = n & 7 == 0
    }

    private mutating func flush() {
        stream.writeBits(pending, count, endsWithWholeBytes: lastWroteWholeBytes)
        pending = 0
        count = 0
    }

    /// The stream with every bit written.
    mutating func finish() -> BitWriter {
        if count > 0 { flush() }
        return stream
    }
}

/// Prometheus' `bstream` writer: bits MSB first into a byte array, with the last byte's low
/// `freeBits` still free. Kept apart from the chunk so tests can hold it to the bit-by-bit original.
struct BitWriter: BitSink {
    var bytes: [UInt8]
    /// Free low bits in the last byte of `bytes` (Prometheus' `bstream.count`).
    private(set) var freeBits: UInt8 = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The first and last byte XORed (0 when empty): reading them brings the lines an append
    /// reads and writes into the cache (see `Head.warmOpenChunks`).
    var edgeBytes: UInt8 {
        bytes.withUnsafeBufferPointer { b in b.isEmpty ? 0 : b[0] ^ b[b.count - 1] }
    }

    mutating func writeBit(_ bit: Bool) {
        if freeBits == 0 {
            bytes.append(0)
            freeBits = 8
        }
        if bit { bytes[bytes.count - 1] |= 1 << (freeBits - 1) }
        freeBits -= 1
    }

    /// Writes a whole byte; like Prometheus it leaves a fresh trailing byte even when aligned.
    mutating func writeByte(_ byte: UInt8) {
        if freeBits == 0 {
            bytes.append(0)
            freeBits = 8
        }
        bytes[bytes.count - 1] |= byte >> (8 - freeBits)
        bytes.append(freeBits == 8 ? 0 : byte << freeBits)
    }

    /// Writes the low `count` bits of `value` a byte at a time, leaving exactly the bytes and free
    /// bits that Prometheus' bit-by-bit `writeBits` leaves: when it ends on a byte boundary after
    /// whole-byte writes, that is a fresh zero byte with 8 free bits.
    mutating func writeBits(_ value: UInt64, _ count: Int) { writeBits(value, count, endsWithWholeBytes: count % 8 == 0) }

    /// `writeBits`, for bits that stand for several writes: Prometheus leaves a fresh trailing
    /// byte at an aligned end only when the last write was of whole bytes (`endsWithWholeBytes`).
    @inline(__always)
    mutating func writeBits(_ value: UInt64, _ count: Int, endsWithWholeBytes: Bool) {
        guard count > 0 else { return }
        let v = count == 64 ? value : value & ((1 &<< UInt64(count)) &- 1)
        if freeBits == 0 {
            bytes.append(0)
            freeBits = 8
        }
        let free = Int(freeBits)
        let last = bytes.count - 1
        if count <= free {
            bytes[last] |= UInt8(truncatingIfNeeded: v &<< UInt64(free - count))
            freeBits = UInt8(free - count)
        } else {
            var n = count - free
            bytes[last] |= UInt8(truncatingIfNeeded: v &>> UInt64(n))
            while n >= 8 {
                n -= 8
                bytes.append(UInt8(truncatingIfNeeded: v &>> UInt64(n)))
            }
            if n > 0 { bytes.append(UInt8(truncatingIfNeeded: v &<< UInt64(8 - n))) }
            freeBits = UInt8((8 - n) & 7)
        }
        if freeBits == 0 && endsWithWholeBytes {
            bytes.append(0)
            freeBits = 8
        }
    }
}

/// Iterates the samples of an encoded XOR chunk without allocating, 64 bits at a time: each field
/// is cut from a 64-bit window loaded at the read position (zeros past the end), and a sample that
/// reads past the last byte fails the iterator, as reading bit by bit would.
/// A decoder of one chunk encoding: what block reads use whatever the encoding.
protocol ChunkIterator: IteratorProtocol {
    /// The encoding byte of the chunks it reads.
    static var encoding: UInt8 { get }
    init(_ bytes: UnsafeBufferPointer<UInt8>)
    /// Whether the chunk ended early or held an impossible value.
    var failed: Bool { get }
}

public struct XORIterator: IteratorProtocol, ChunkIterator {
    static var encoding: UInt8 { XORChunk.encoding }

    private let bytes: UnsafeBufferPointer<UInt8>
    private let total: Int
    private let bitCount: Int
    private var read = 0
    private var bitPosition: Int
    private var timestamp: Int64 = 0
    private var valueBits: UInt64 = 0
    private var delta: UInt64 = 0
    private var leading: UInt8 = 0
    private var trailing: UInt8 = 0
    public private(set) var failed = false

    /// `bytes` must stay valid while iterating (a mapped file or a pinned array).
    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        total = XORChunk.sampleCount(bytes)
        bitCount = bytes.count * 8
        bitPosition = 16
    }

    @inline(__always)
    public mutating func next() -> (timestamp: Int64, valueBits: UInt64)? {
        guard read < total, !failed else { return nil }
        guard decodeNext(), bitPosition <= bitCount else {
            failed = true
            return nil
        }
        read += 1
        return (timestamp, valueBits)
    }

    /// How a run of `decode(into:capacity:through:)` ended.
    enum RunEnd {
        /// `capacity` samples were written.
        case full
        /// The next sample lies past `maxTime`; it was decoded and is given here.
        case later(Sample)
        /// The chunk has no more samples (or failed: see `failed`).
        case ended
    }

    /// Decodes samples into `out`, at most `capacity`, while their times are at most `maxTime`;
    /// gives how many it wrote and why it stopped. The loop runs on a copy of the iterator's state,
    /// which the compiler keeps in registers: through `next()`, every field went to memory and
    /// back for each sample.
    ///
    /// Samples that repeat the interval and the value before them, two zero bits each, are taken
    /// as many at a time as one window holds: series of prices and allocations on a regular
    /// scrape grid are mostly such runs.
    mutating func decode(into out: UnsafeMutablePointer<Sample>, capacity: Int, through maxTime: Int64) -> (count: Int, end: RunEnd) {
        var state = self
        defer { self = state }
        var count = 0
        while count < capacity {
            let repeats = state.repeatedSamples(limit: capacity - count)
            if repeats > 0 {
                let step = Int64(bitPattern: state.delta), v = state.valueBits
                for _ in 0..<repeats {
                    state.timestamp = state.timestamp &+ step
                    state.bitPosition += 2
                    state.read += 1
                    let sample = Sample(timestamp: state.timestamp, valueBits: v)
                    if sample.timestamp > maxTime { return (count, .later(sample)) }
                    (out + count).initialize(to: sample)
                    count += 1
                }
                continue
            }
            guard let (t, v) = state.next() else { return (count, .ended) }
            if t > maxTime { return (count, .later(Sample(timestamp: t, valueBits: v))) }
            (out + count).initialize(to: Sample(timestamp: t, valueBits: v))
            count += 1
        }
        return (count, .full)
    }

    /// How many samples from the read position on, at most `limit`, are each the two zero bits of
    /// an unchanged interval and an unchanged value, as far as one window shows. Never more than
    /// the chunk counts or its bits hold, so a chunk cut short fails at the same sample as through
    /// `next()`.
    @inline(__always)
    private func repeatedSamples(limit: Int) -> Int {
        guard read >= 2, read < total, !failed else { return 0 }
        let window = peek()
        guard window >> 62 == 0 else { return 0 }
        return min(window.leadingZeroBitCount / 2, limit, total - read, (bitCount - bitPosition) / 2)
    }

    @inline(__always)
    private mutating func decodeNext() -> Bool {
        switch read {
        case 0:
            guard let raw = readUvarint() else { return false }
            timestamp = Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
            valueBits = readBits(64)
        case 1:
            guard let d = readUvarint() else { return false }
            delta = d
            timestamp = timestamp &+ Int64(bitPattern: d)
            return readValue(peek(), valid: 64)
        default:
            // Up to four one bits, ended by a zero bit unless there are four, then the delta of
            // delta in 0, 14, 17, 20 or 64 bits. All but the last fit in one window with room
            // left, which the value is read from when it fits too.
            let window = peek()
            var dod: Int64 = 0
            var used = 1
            // A zero bit first (the same interval as before, the usual case) is tested on its own:
            // through the switch, it cost an indirect jump a sample.
            if window >> 63 != 0 {
                let ones = min((~window).leadingZeroBitCount, 4)
                if ones == 4 {
                    bitPosition += 4
                    dod = Int64(bitPattern: readBits(64))
                    used = 0
                } else {
                    let width = ones == 1 ? 14 : ones == 2 ? 17 : 20
                    let raw = (window &<< UInt64(ones + 1)) &>> UInt64(64 - width)
                    dod = raw > (1 << (width - 1)) ? Int64(raw) - (1 << width) : Int64(raw)
                    used = ones + 1 + width
                }
            }
            delta = delta &+ UInt64(bitPattern: dod)
            timestamp = timestamp &+ Int64(bitPattern: delta)
            guard used > 0 else { return readValue(peek(), valid: 64) }
            bitPosition += used
            return readValue(window &<< UInt64(used), valid: 64 - used)
        }
        return true
    }

    /// Reads the next value from `window`, the bits from the read position on, of which the first
    /// `valid` are the stream's (beyond them, the stream is read again).
    @inline(__always)
    private mutating func readValue(_ window: UInt64, valid: Int) -> Bool {
        guard window >> 63 != 0 else {
            bitPosition += 1
            return true
        }
        if window & (1 << 62) != 0 {
            // A new window: 5 bits of leading zeros, 6 of significant bits (0 meaning 64).
            let l = UInt8(truncatingIfNeeded: window >> 57) & 0x1f
            let s = UInt8(truncatingIfNeeded: window >> 51) & 0x3f
            let significant = s == 0 ? 64 : s
            guard Int(l) + Int(significant) <= 64 else { return false }
            leading = l
            trailing = 64 - l - significant
            if 13 + Int(significant) <= valid {
                valueBits ^= ((window &<< 13) &>> UInt64(64 - significant)) &<< trailing
                bitPosition += 13 + Int(significant)
                return true
            }
            bitPosition += 13
        } else {
            let significant = 64 - Int(leading) - Int(trailing)
            if 2 + significant <= valid {
                valueBits ^= ((window &<< 2) &>> UInt64(64 - significant)) &<< UInt64(trailing)
                bitPosition += 2 + significant
                return true
            }
            bitPosition += 2
        }
        valueBits ^= readBits(64 - Int(leading) - Int(trailing)) << trailing
        return true
    }

    /// The 64 bits from the read position on, zeros past the end.
    @inline(__always)
    private func peek() -> UInt64 {
        let byte = bitPosition >> 3
        let shift = UInt64(bitPosition & 7)
        let high: UInt64, low: UInt64
        if byte + 9 <= bytes.count {
            let raw = UnsafeRawPointer(bytes.baseAddress! + byte)
            high = UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self))
            low = UInt64(raw.load(fromByteOffset: 8, as: UInt8.self))
        } else {
            (high, low) = tail(from: byte)
        }
        return shift == 0 ? high : high &<< shift | low &>> (8 &- shift)
    }

    /// The nine bytes from `byte` on as `peek` takes them, with zeros past the end.
    private func tail(from byte: Int) -> (UInt64, UInt64) {
        var high: UInt64 = 0
        for i in byte..<byte + 8 { high = high << 8 | (i < bytes.count ? UInt64(bytes[i]) : 0) }
        return (high, byte + 8 < bytes.count ? UInt64(bytes[byte + 8]) : 0)
    }

    /// The next `n` bits (0 to 64), high bit first.
    @inline(__always)
    private mutating func readBits(_ n: Int) -> UInt64 {
        guard n > 0 else { return 0 }
        let bits = peek() &>> UInt64(64 - n)
        bitPosition += n
        return bits
    }

    private mutating func readUvarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            guard bitPosition + 8 <= bitCount else { return nil }
            let byte = readBits(8)
            result |= (byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }
}

/// Prometheus' `xorRead`, the reading side of `XORValueWriter`.
struct XORValueReader {
    private var leading: UInt8 = 0
    private var trailing: UInt8 = 0

    /// Applies the next value's XOR to `valueBits`; false when the bits run out or are impossible.
    mutating func read(_ valueBits: inout UInt64, from reader: inout BitReader) -> Bool {
        guard let changed = reader.readBit() else { return false }
        if !changed { return true }
        guard let newWindow = reader.readBit() else { return false }
        if newWindow {
            guard let l = reader.readBits(5), let s = reader.readBits(6) else { return false }
            leading = UInt8(l)
            let significant = s == 0 ? 64 : UInt8(s)
            guard Int(leading) + Int(significant) <= 64 else { return false }
            trailing = 64 - leading - significant
        }
        let significant = 64 - Int(leading) - Int(trailing)
        guard let bits = reader.readBits(significant) else { return false }
        valueBits ^= bits << trailing
        return true
    }
}

/// Bits MSB first from a chunk's bytes, bounds-checked: nil past the end.
struct BitReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private(set) var bitPosition: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, bitPosition: Int) {
        self.bytes = bytes
        self.bitPosition = bitPosition
    }

    var bitsLeft: Int { max(0, bytes.count * 8 - bitPosition) }

    mutating func readBit() -> Bool? {
        guard bitPosition < bytes.count * 8 else { return nil }
        let bit = bytes[bitPosition >> 3] & (0x80 >> UInt8(bitPosition & 7)) != 0
        bitPosition += 1
        return bit
    }

    mutating func readBits(_ n: Int) -> UInt64? {
        guard n > 0 else { return 0 }
        guard bitPosition + n <= bytes.count * 8 else { return nil }
        var result: UInt64 = 0
        var remaining = n
        while remaining > 0 {
            let byte = bytes[bitPosition >> 3]
            let offset = bitPosition & 7
            let available = 8 - offset
            let take = min(available, remaining)
            let chunk = (UInt64(byte) >> UInt64(available - take)) & ((1 << UInt64(take)) - 1)
            result = result << UInt64(take) | chunk
            bitPosition += take
            remaining -= take
        }
        return result
    }

    mutating func readUvarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            guard let byte = readBits(8) else { return nil }
            result |= (byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }
}
