import NIOCore
import TallyStorage
import TallyWire

/// `POST /api/v1/read`: Prometheus' Remote-Read, as its `remote_read` client asks (2.42 sends one
/// query a request and takes raw samples): the tenant's samples in each query's closed range of
/// the series its matchers select, in label order, one `QueryResult` per query. Errors are plain
/// text, as Prometheus' handler writes them: 400 for what the client sent (a body that does not
/// decode, a regex that does not compile, only streamed chunks accepted, more samples than
/// `--query.max-samples`), 500 for storage that cannot be read.
enum RemoteReadAPI {
    static func answer(_ body: ByteBuffer, database: TenantDatabase, sampleLimit: Int, maxDecodedBytes: Int) -> HTTPAnswer {
        let request: RemoteReadRequest
        do {
            request = try RemoteReadRequest.decode(compressed: Array(buffer: body), maxDecodedBytes: maxDecodedBytes)
        } catch {
            return HTTPAnswer(status: 400, body: "\(error)\n")
        }
        let accepted = request.acceptedResponseTypes.isEmpty ? [RemoteReadRequest.samplesResponseType] : request.acceptedResponseTypes
        guard accepted.contains(RemoteReadRequest.samplesResponseType) else {
            return HTTPAnswer(status: 400, body: "server does not support any of the requested response types: \(accepted); supported: [0 (SAMPLES)]\n")
        }
        var encoder = ReadResponseEncoder()
        var total = 0
        for query in request.queries {
            let matchers: [LabelMatcher]
            do {
                matchers = try query.matchers.map { (m) throws(SelectorError) in try LabelMatcher(m.name, kind(m.kind), m.value) }
            } catch {
                return HTTPAnswer(status: 400, body: "\(error)\n")
            }
            // No matcher selects nothing, as in Prometheus (its postings intersect no list).
            guard query.start <= query.end, !matchers.isEmpty else {
                encoder.endResult()
                continue
            }
            let selected: [QueriedSeries]
            do {
                selected = try database.querier(minTime: query.start, maxTime: query.end).select(matchers, minTime: query.start, maxTime: query.end)
            } catch {
                return HTTPAnswer(status: 500, body: "reading the tenant failed: \(error)\n")
            }
            for series in selected {
                var samples: [(timestamp: Int64, valueBits: UInt64)] = []
                var iterator = series.makeIterator()
                if iterator.seek(query.start) {
                    repeat {
                        guard iterator.timestamp <= query.end else { break }
                        total += 1
                        guard total <= sampleLimit else { return HTTPAnswer(status: 400, body: "exceeded sample limit (\(sampleLimit))\n") }
                        samples.append((iterator.timestamp, iterator.valueBits))
                    } while iterator.advance()
                }
                // A chunk can reach into the range with no sample inside it.
                if !samples.isEmpty { encoder.addSeries(labels: series.labels.pairs.map { ($0.name, $0.value) }, samples: samples) }
            }
            encoder.endResult()
        }
        var answer = HTTPAnswer(status: 200, bytes: encoder.compressed, contentType: "application/x-protobuf")
        answer.headers.append(("Content-Encoding", "snappy"))
        return answer
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
