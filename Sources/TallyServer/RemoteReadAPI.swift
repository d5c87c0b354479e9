import NIOCore
import TallyStorage
import TallyWire

/// `POST /api/v1/read`: Prometheus' Remote-Read. Each query's samples in its closed range, of the
/// series its matchers select, in label order, as raw samples (one `QueryResult` per query, what
/// Prometheus' `remote_read` client asks for) or as streamed XOR chunks (what Thanos' sidecar asks
/// for), whichever the client lists first. Errors are plain text, as Prometheus' handler writes
/// them: 400 for what the client sent (a body that does not decode, a regex that does not compile,
/// no response type this server writes, more samples than `--query.max-samples`), 500 for storage
/// that cannot be read.
enum RemoteReadAPI {
    static func answer(_ body: ByteBuffer, database: TenantDatabase, sampleLimit: Int, maxDecodedBytes: Int) -> HTTPAnswer {
        let request: RemoteReadRequest
        do {
            request = try RemoteReadRequest.decode(compressed: Array(buffer: body), maxDecodedBytes: maxDecodedBytes)
        } catch {
            return HTTPAnswer(status: 400, body: "\(error)\n")
        }
        switch request.responseType {
        case RemoteReadRequest.samplesResponseType?:
            var encoder = ReadResponseEncoder()
            if let refusal = forEachSeries(request, database, sampleLimit, series: { _, labels, samples in encoder.addSeries(labels: labels, samples: samples) },
                                           queryEnd: { encoder.endResult() }) { return refusal }
            var answer = HTTPAnswer(status: 200, bytes: encoder.compressed, contentType: "application/x-protobuf")
            answer.headers.append(("Content-Encoding", "snappy"))
            return answer
        case RemoteReadRequest.streamedChunksResponseType?:
            var stream = ChunkStream()
            if let refusal = forEachSeries(request, database, sampleLimit, series: { stream.addSeries(labels: $1, samples: $2, queryIndex: $0) },
                                           queryEnd: {}) { return refusal }
            return HTTPAnswer(status: 200, bytes: stream.bytes, contentType: "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse").typedWhenEmpty()
        default:
            return HTTPAnswer(status: 400, body: "server does not support any of the requested response types: \(request.acceptedResponseTypes); "
                + "supported: [0 (SAMPLES) 1 (STREAMED_XOR_CHUNKS)]\n")
        }
    }

    /// Hands `series` every selected series with samples in its query's range (the query's index,
    /// the labels, the samples), then calls `queryEnd` after each query. Returns the refusal that
    /// stopped it, if any; the samples of all queries together count against `sampleLimit`.
    private static func forEachSeries(_ request: RemoteReadRequest, _ database: TenantDatabase, _ sampleLimit: Int,
                                      series: (Int, [(name: String, value: String)], [(timestamp: Int64, valueBits: UInt64)]) -> Void,
                                      queryEnd: () -> Void) -> HTTPAnswer? {
        var total = 0
        for (index, query) in request.queries.enumerated() {
            defer { queryEnd() }
            let matchers: [LabelMatcher]
            do {
                matchers = try query.matchers.map { (m) throws(SelectorError) in try LabelMatcher(m.name, kind(m.kind), m.value) }
            } catch {
                return HTTPAnswer(status: 400, body: "\(error)\n")
            }
            // No matcher selects nothing, as in Prometheus (its postings intersect no list).
            guard query.start <= query.end, !matchers.isEmpty else { continue }
            let selected: [QueriedSeries]
            do {
                selected = try database.querier(minTime: query.start, maxTime: query.end).select(matchers, minTime: query.start, maxTime: query.end)
            } catch {
                return HTTPAnswer(status: 500, body: "reading the tenant failed: \(error)\n")
            }
            for selectedSeries in selected {
                var samples: [(timestamp: Int64, valueBits: UInt64)] = []
                var iterator = selectedSeries.makeIterator()
                if iterator.seek(query.start) {
                    repeat {
                        guard iterator.timestamp <= query.end else { break }
                        total += 1
                        guard total <= sampleLimit else { return HTTPAnswer(status: 400, body: "exceeded sample limit (\(sampleLimit))\n") }
                        samples.append((iterator.timestamp, iterator.valueBits))
                    } while iterator.advance()
                }
                // A chunk can reach into the range with no sample inside it.
                if !samples.isEmpty { series(index, selectedSeries.labels.pairs.map { ($0.name, $0.value) }, samples) }
            }
        }
        return nil
    }

    private static func kind(_ kind: RemoteReadRequest.Matcher.Kind) -> LabelMatcher.Kind {
        switch kind {
        case .equal: .equal
        case .notEqual: .notEqual
        case .regex: .regex
        case .notRegex: .notRegex
        }
    }
}

/// The body of a streamed Remote-Read answer: for each series, its samples in the query's range as
/// XOR chunks of at most 120 samples (what Prometheus' head cuts), in frames of one series each.
/// A frame is the message's length (uvarint), its CRC32C (big-endian) and a `ChunkedReadResponse`.
/// A series whose chunks pass `maxBytesInFrame` goes on in the next frame, counted as Prometheus
/// counts it (its labels, then each chunk, a frame ending at the chunk that crosses the budget).
struct ChunkStream {
    /// Prometheus' default `--storage.remote.read-max-bytes-in-frame`.
    static let maxBytesInFrame = 1_048_576
    static let samplesPerChunk = 120

    private(set) var bytes: [UInt8] = []

    mutating func addSeries(labels: [(name: String, value: String)], samples: [(timestamp: Int64, valueBits: UInt64)], queryIndex: Int) {
        let budget = Self.maxBytesInFrame - labels.reduce(0) { $0 + ChunkedReadResponse.encodedSize(name: $1.name, value: $1.value) }
        var bytesLeft = budget
        var chunks: [ChunkedReadResponse.Chunk] = []
        var start = 0
        while start < samples.count {
            let end = min(start + Self.samplesPerChunk, samples.count)
            var chunk = XORChunk()
            for sample in samples[start..<end] { chunk.append(timestamp: sample.timestamp, valueBits: sample.valueBits) }
            chunks.append(ChunkedReadResponse.Chunk(minTime: samples[start].timestamp, maxTime: samples[end - 1].timestamp,
                                                    encoding: UInt64(XORChunk.encoding), data: chunk.bytes))
            bytesLeft -= chunks[chunks.count - 1].encodedSize
            start = end
            if bytesLeft > 0 && start < samples.count { continue }
            frame(ChunkedReadResponse.message(labels: labels, chunks: chunks, queryIndex: Int64(queryIndex)))
            chunks.removeAll(keepingCapacity: true)
            bytesLeft = budget
        }
    }

    private mutating func frame(_ message: [UInt8]) {
        var length = UInt64(message.count)
        while length >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        bytes.append(UInt8(length))
        let checksum = CRC32C.checksum(message)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: checksum >> UInt32(shift))) }
        bytes.append(contentsOf: message)
    }
}
