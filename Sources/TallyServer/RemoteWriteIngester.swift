import NIOCore
import TallyStorage
import TallyWire

/// The answer to one HTTP request, independent of the transport.
public struct HTTPAnswer: Sendable, Equatable, Error {
    public var status: Int
    public var body: [UInt8]
    public var contentType = "text/plain; charset=utf-8"
    /// `gzip` when the body is compressed.
    public var contentEncoding: String?

    public init(status: Int, body: String, contentType: String = "text/plain; charset=utf-8") {
        self.status = status
        self.body = Array(body.utf8)
        self.contentType = contentType
    }
}

/// Remote-Write 1.0 ingestion: tenant resolution, decoding, validation, append, and the status code
/// the sender must see (2xx stored; 4xx never retried; 5xx only when a retry can succeed).
public final class RemoteWriteIngester: Sendable {
    let configuration: ServerConfiguration
    let registry: TenantRegistry
    let metrics: ServerMetrics

    init(configuration: ServerConfiguration, registry: TenantRegistry, metrics: ServerMetrics) {
        self.configuration = configuration
        self.registry = registry
        self.metrics = metrics
    }

    /// Request headers that matter to ingestion.
    public struct RequestHeaders: Sendable {
        public var tenant: String?
        /// `?tenant=` on the write URL, for senders that cannot set headers (Debian's Prometheus
        /// 2.42 drops `remote_write.headers`, prometheus/prometheus#13030).
        public var tenantParameter: String?
        public var contentType: String?
        public var contentEncoding: String?
    }

    /// Stores what is valid of a request and calls `answer` once it is durable.
    public func ingest(_ headers: RequestHeaders, body: [UInt8], answer: @escaping @Sendable (HTTPAnswer) -> Void) {
        if let refusal = checkMediaType(headers) { return answer(refusal) }
        let tenant: String
        switch configuration.tenant(header: headers.tenant, parameter: headers.tenantParameter) {
        case let .success(name): tenant = name
        case let .failure(refusal): return answer(refusal)
        }
        var view: WriteRequestView
        do {
            // Labels are validated per series in `appendSeries`, and only for series not known already.
            view = try RemoteWriteDecoder.decode(compressed: body, maxDecodedBytes: configuration.maxDecodedBytes, validatingLabels: false)
        } catch {
            if case .decodedTooLarge = error { return answer(HTTPAnswer(status: 413, body: error.description)) }
            return answer(HTTPAnswer(status: 400, body: error.description))
        }
        let db: TenantDatabase
        do {
            db = try registry.database(for: tenant)
        } catch {
            if case .io = error { return answer(HTTPAnswer(status: 500, body: error.description)) }
            return answer(HTTPAnswer(status: 400, body: error.description))
        }
        let tally: RejectionTally
        let commit: AppendCommit
        do {
            (tally, commit) = try append(&view, to: db)
        } catch {
            if case .closed = error { return answer(HTTPAnswer(status: 503, body: "shutting down\n")) }
            return answer(HTTPAnswer(status: 500, body: "storage: \(error)\n"))
        }
        metrics.appended(tenant: tenant, samples: commit.appendedSamples, series: commit.createdSeries, headSeries: db.seriesCount,
                         outOfOrderBytes: db.outOfOrderBytes)
        metrics.notStored(tenant: tenant, kind: "metadata", count: view.metadataCount)
        metrics.notStored(tenant: tenant, kind: "exemplar", count: view.exemplarCount)
        for (reason, count) in tally.counts where count > 0 { metrics.rejected(tenant: tenant, reason: reason, samples: count) }
        let received = view.sampleCount + view.histogramCount
        db.whenDurable(commit.position) { error in
            if let error { return answer(HTTPAnswer(status: 500, body: "WAL sync failed, retry: \(error)\n")) }
            if tally.total == 0 { return answer(HTTPAnswer(status: 204, body: "")) }
            answer(HTTPAnswer(status: 400, body: tally.message(stored: commit.appendedSamples, received: received)))
        }
    }

    private func checkMediaType(_ headers: RequestHeaders) -> HTTPAnswer? {
        if let encoding = headers.contentEncoding, encoding.lowercased() != "snappy" {
            return HTTPAnswer(status: 415, body: "unsupported Content-Encoding \(encoding): send snappy\n")
        }
        guard let type = headers.contentType else { return nil }
        let parts = type.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
        guard parts.first?.lowercased() == "application/x-protobuf" else {
            return HTTPAnswer(status: 415, body: "unsupported Content-Type \(type): send application/x-protobuf\n")
        }
        for parameter in parts.dropFirst() where parameter.lowercased().hasPrefix("proto=") {
            let proto = parameter.dropFirst("proto=".count)
            if proto != "prometheus.WriteRequest" {
                return HTTPAnswer(status: 415, body: "unsupported remote-write message \(proto): Tally accepts prometheus.WriteRequest (Remote-Write 1.0)\n")
            }
        }
        return nil
    }

    private func append(_ view: inout WriteRequestView, to db: TenantDatabase) throws(StorageError) -> (RejectionTally, AppendCommit) {
        let body = view.body
        return try body.withUnsafeBytes { base in Result { () throws(StorageError) in try appendSeries(&view, base, to: db) } }.get()
    }

    private func appendSeries(_ view: inout WriteRequestView, _ base: UnsafeRawBufferPointer, to db: TenantDatabase) throws(StorageError) -> (RejectionTally, AppendCommit) {
            try db.append { batch in
                var tally = RejectionTally()
                var scratch: [RawLabel] = []
                for index in view.series.indices {
                    let series = view.series[index]
                    if series.histogramCount > 0 { tally.add("native_histogram_unsupported", Int(series.histogramCount)) }
                    // A series seen before with the same label bytes was valid then and is the same
                    // series now: it skips label validation and the label-by-label lookup.
                    let encoded = UnsafeRawBufferPointer(rebasing: base[series.encodedLabels.range])
                    let (known, key) = encoded.isEmpty || series.sampleCount == 0 ? (nil, nil) : batch.knownSeries(encodedLabels: encoded)
                    let handle: SeriesHandle
                    if let known {
                        handle = known
                    } else {
                        if let rejection = view.validateLabels(ofSeriesAt: index) {
                            tally.add(rejection.rawValue, Int(series.sampleCount))
                            continue
                        }
                        if series.sampleCount == 0 { continue }
                        scratch.removeAll(keepingCapacity: true)
                        for label in view.labels(of: view.series[index]) {
                            scratch.append(RawLabel(name: UnsafeRawBufferPointer(rebasing: base[label.name.range]),
                                                    value: UnsafeRawBufferPointer(rebasing: base[label.value.range])))
                        }
                        handle = scratch.withUnsafeBufferPointer { labels in
                            key.map { batch.series(labels, encodedLabels: encoded, key: $0) } ?? batch.series(labels)
                        }
                    }
                    for sample in view.samples(of: series) {
                        switch batch.add(handle, timestamp: sample.timestamp, valueBits: sample.valueBits) {
                        case .accepted, .duplicate: break
                        case .conflict: tally.add("duplicate_timestamp_different_value", 1)
                        case .outOfOrder: tally.add("out_of_order", 1)
                        case .tooOld: tally.add("too_old", 1)
                        }
                    }
                }
                return tally
            }
    }
}

/// Counts of refused samples by reason, and the one-line message a sender logs.
struct RejectionTally: Sendable {
    private(set) var counts: [(String, Int)] = []

    mutating func add(_ reason: String, _ n: Int) {
        if let i = counts.firstIndex(where: { $0.0 == reason }) { counts[i].1 += n } else { counts.append((reason, n)) }
    }

    var total: Int { counts.reduce(0) { $0 + $1.1 } }

    func message(stored: Int, received: Int) -> String {
        let reasons = counts.filter { $0.1 > 0 }.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        return "stored \(stored) of \(received) samples; rejected \(total): \(reasons)"
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
