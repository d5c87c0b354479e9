import Foundation
import NIOCore
import TallyStorage
import TallyWire

/// The answer to one HTTP request, independent of the transport.
public struct HTTPAnswer: Sendable, Error {
    public var status: Int
    public var body: [UInt8]
    public var contentType = "text/plain; charset=utf-8"
    /// Further response headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: [(String, String)] = []

    public init(status: Int, body: String, contentType: String = "text/plain; charset=utf-8") {
        self.init(status: status, bytes: Array(body.utf8), contentType: contentType)
    }

    public init(status: Int, bytes: [UInt8], contentType: String) {
        self.status = status
        self.body = bytes
        self.contentType = contentType
    }

    /// The same answer with its Content-Type sent even when the body is empty (an empty answer goes
    /// without one otherwise), where Prometheus names the format of an empty answer too.
    func typedWhenEmpty() -> HTTPAnswer {
        guard body.isEmpty else { return self }
        var answer = self
        answer.headers.append(("Content-Type", contentType))
        return answer
    }

    /// `message` with paths named from the storage `root`.
    static func withoutStorageRoot(_ message: String, root: String) -> String {
        message.replacingOccurrences(of: root.hasSuffix("/") ? root : root + "/", with: "")
    }

    /// 503 with Retry-After when the process ran out of descriptors, which closing connections and
    /// other tenants' WAL segments gives back, else 500. Paths are named from the storage `root`
    /// (`acme/wal/00000006`): a client is not told where the storage lies.
    static func storageFailure(_ failure: StorageIOError, _ message: String, root: String) -> HTTPAnswer {
        let message = withoutStorageRoot(message, root: root)
        guard failure.isOutOfDescriptors else { return HTTPAnswer(status: 500, body: message) }
        var answer = HTTPAnswer(status: 503, body: message)
        answer.headers.append(("Retry-After", "1"))
        return answer
    }
}

/// Remote-Write 1.0 and 2.0 ingestion: decoding, limits, validation, append, and the status code the sender
/// must see (2xx stored; 4xx never retried; 429 and 5xx only when a retry can succeed).
public final class RemoteWriteIngester: Sendable {
    let configuration: ServerConfiguration
    let registry: TenantRegistry
    let metrics: ServerMetrics
    let limits: LimitsStore
    let exemplars: TenantExemplars
    let metadata = TenantMetadata()
    private let rateLimiter = IngestionRateLimiter()

    init(configuration: ServerConfiguration, registry: TenantRegistry, metrics: ServerMetrics, limits: LimitsStore) {
        self.configuration = configuration
        self.registry = registry
        self.metrics = metrics
        self.limits = limits
        self.exemplars = TenantExemplars(capacity: configuration.maxExemplars)
    }

    /// Request headers that matter to ingestion.
    public struct RequestHeaders: Sendable {
        public var contentType: String?
        public var contentEncoding: String?
    }

    /// Stores what is valid of a request for `tenant` (already resolved and authorised) and calls
    /// `answer` once it is durable.
    public func ingest(tenant: String, _ headers: RequestHeaders, body: ByteBuffer, now: Int64 = wallClockMilliseconds(),
                       answer reply: @escaping @Sendable (HTTPAnswer) -> Void) {
        let version: RemoteWriteMessage
        switch RemoteWriteMessage.of(headers) {
        case let .success(found): version = found
        case let .failure(refusal):
            metrics.rejected(.unsupportedMediaType)
            return reply(refusal)
        }
        // Remote-Write 2.0 wants the counts written on every answer, failures included; a sample
        // counts once it is durable, so only answers after the WAL sync carry a count above 0. A
        // sample already stored with the same value counts as written, as Prometheus counts it: a
        // resent request is not "nothing written".
        let respond: @Sendable (HTTPAnswer, _ samples: Int, _ histograms: Int, _ exemplars: Int) -> Void = { answer, samples, histograms, exemplars in
            var answer = answer
            if version == .v2 { answer.headers += RemoteWriteMessage.writtenHeaders(samples: samples, histograms: histograms, exemplars: exemplars) }
            reply(answer)
        }
        let answer: @Sendable (HTTPAnswer) -> Void = { respond($0, 0, 0, 0) }
        let limits = self.limits.limits(for: tenant)
        var view: WriteRequestView
        do {
            // Labels are validated per series in `appendSeries`, and only for series not known already.
            let maxDecodedBytes = configuration.maxDecodedBytes
            view = try body.withUnsafeReadableBytes { (compressed) throws(WireError) in
                try version == .v2
                    ? RemoteWriteV2Decoder.decode(compressed: compressed, maxDecodedBytes: maxDecodedBytes)
                    : RemoteWriteDecoder.decode(compressed: compressed, maxDecodedBytes: maxDecodedBytes, validatingLabels: false)
            }
        } catch {
            switch error {
            case .decodedTooLarge:
                metrics.rejected(.bodyTooLarge)
                return answer(HTTPAnswer(status: 413, body: error.description))
            case .invalidHistogram, .histogramCustomBuckets:
                metrics.rejected(.invalidHistogram)
            case .framedSnappy, .corruptSnappy, .invalidProtobuf:
                metrics.rejected(.malformedBody)
            }
            return answer(HTTPAnswer(status: 400, body: error.description))
        }
        let received = view.sampleCount + view.histogramCount
        // Refusals before the tenant is opened name it only if it exists: new names make no series.
        func refusedBeforeOpen(_ reason: String) { metrics.rejected(tenant: registry.hasTenant(tenant) ? tenant : "", reason: reason, samples: received) }
        if received > limits.maxSamplesPerRequest {
            refusedBeforeOpen("max_samples_per_request")
            return answer(HTTPAnswer(status: 400, body: "max_samples_per_request: \(received) samples in one request, at most \(limits.maxSamplesPerRequest); nothing stored\n"))
        }
        if let wait = rateLimiter.admit(received, tenant: tenant, rate: limits.ingestionRate, burst: limits.ingestionBurst) {
            refusedBeforeOpen("rate_limited")
            var refusal = HTTPAnswer(status: 429, body: "rate_limited: tenant \(tenant) is over its ingestion rate of \(limits.ingestionRate) samples/s; retry in \(wait) s\n")
            refusal.headers.append(("Retry-After", String(wait)))
            return answer(refusal)
        }
        let accepted = SampleWindow(now: now, limits: limits)
        // A tenant that does not exist yet is made only for a request that may store a sample: a
        // refused write, or one of metadata alone, uses up no tenant slot and leaves no directory
        // behind. Its metadata is kept as any tenant's is (in memory, within the same bounds).
        if !registry.hasTenant(tenant), let refusals = Self.refusalsStoringNothing(&view, limits: limits, window: accepted) {
            for (reason, count) in refusals.counts where count > 0 { metrics.rejected(tenant: "", reason: reason, samples: count) }
            metrics.notStored(tenant: "", kind: "metadata", count: view.metadataCount - metadata.store(view, tenant: tenant))
            metrics.notStored(tenant: "", kind: "exemplar", count: view.exemplarCount)
            return answer(refusals.total == 0 ? HTTPAnswer(status: 204, body: "") : HTTPAnswer(status: 400, body: refusals.message(stored: 0, received: received)))
        }
        let db: TenantDatabase
        do {
            db = try registry.database(for: tenant)
        } catch {
            switch error {
            case let .io(failure): return answer(HTTPAnswer.storageFailure(failure, error.description + "\n", root: registry.root))
            case .tooManyTenants: metrics.rejected(tenant: "", reason: "max_tenants", samples: received)
            case .invalidName, .reservedName: metrics.rejected(.invalidTenant)
            }
            return answer(HTTPAnswer(status: 400, body: error.description + "\n"))
        }
        let outcome: AppendOutcome
        let commit: AppendCommit
        do {
            (outcome, commit) = try append(&view, to: db, limits: limits, window: accepted)
        } catch {
            if case .closed = error { return answer(HTTPAnswer(status: 503, body: "shutting down\n")) }
            if case let .io(failure) = error { return answer(HTTPAnswer.storageFailure(failure, "storage: \(error)\n", root: registry.root)) }
            return answer(HTTPAnswer(status: 500, body: "storage: \(error)\n"))
        }
        let tally = outcome.tally
        // Exemplars are kept in memory only, once their series' samples are in the WAL.
        let stored = exemplars.store(view, seriesAt: outcome.seriesWithExemplars, tenant: tenant, window: accepted)
        metrics.appended(tenant: tenant, samples: commit.appendedSamples + commit.appendedHistograms, series: commit.createdSeries)
        metrics.exemplars(tenant: tenant, appended: stored.appended, outOfOrder: stored.outOfOrder)
        metrics.notStored(tenant: tenant, kind: "metadata", count: view.metadataCount - metadata.store(view, tenant: tenant))
        metrics.notStored(tenant: tenant, kind: "exemplar", count: view.exemplarCount - stored.written)
        for (reason, count) in tally.counts where count > 0 { metrics.rejected(tenant: tenant, reason: reason, samples: count) }
        let root = registry.root
        db.whenDurable(commit.position) { error in
            if let error { return answer(HTTPAnswer(status: 500, body: HTTPAnswer.withoutStorageRoot("WAL sync failed, retry: \(error)\n", root: root))) }
            let (samples, histograms) = (commit.appendedSamples + outcome.duplicateSamples, commit.appendedHistograms + outcome.duplicateHistograms)
            if tally.total == 0 { return respond(HTTPAnswer(status: 204, body: ""), samples, histograms, stored.written) }
            let storedCount = commit.appendedSamples + commit.appendedHistograms
            respond(HTTPAnswer(status: 400, body: tally.message(stored: storedCount, received: received)), samples, histograms, stored.written)
        }
    }

    /// The refusals of a request none of whose samples a new tenant could take (invalid labels, or
    /// every time outside the window), by reason, as the append would count them; nil when one could.
    private static func refusalsStoringNothing(_ view: inout WriteRequestView, limits: TenantLimits, window: SampleWindow) -> RejectionTally? {
        var tally = RejectionTally()
        for index in view.series.indices {
            let series = view.series[index]
            let storable = Int(series.sampleCount) + Int(series.histogramCount)
            guard storable > 0 else { continue }
            if let rejection = view.validateLabels(ofSeriesAt: index, limits: limits.labels) {
                tally.add(rejection.rawValue, storable)
            } else if window.containsAny(of: series, in: view) {
                return nil
            } else {
                tally.add("timestamp_out_of_bounds", storable)
            }
        }
        return tally
    }

    /// What the append made of a request's series: refusals by reason, and the series whose
    /// exemplars may be kept (valid labels, held by the head).
    struct AppendOutcome {
        var tally = RejectionTally()
        /// Samples and histograms already stored with the same value.
        var duplicateSamples = 0
        var duplicateHistograms = 0
        var seriesWithExemplars: [Int] = []
    }

    private func append(_ view: inout WriteRequestView, to db: TenantDatabase, limits: TenantLimits,
                        window: SampleWindow) throws(StorageError) -> (AppendOutcome, AppendCommit) {
        let body = view.body
        return try body.withUnsafeBytes { base in
            Result { () throws(StorageError) in try appendSeries(&view, base, to: db, limits: limits, window: window) }
        }.get()
    }

    private func appendSeries(_ view: inout WriteRequestView, _ base: UnsafeRawBufferPointer, to db: TenantDatabase,
                              limits: TenantLimits, window: SampleWindow) throws(StorageError) -> (AppendOutcome, AppendCommit) {
            try db.append(limits: limits.series) { batch in
                var outcome = AppendOutcome()
                var scratch: [RawLabel] = []
                var symbols = RequestSymbols(view, base)
                for index in view.series.indices {
                    let series = view.series[index]
                    // Floats, integer and float histograms alike.
                    let storable = Int(series.sampleCount) + Int(series.histogramCount)
                    let exemplars = series.exemplarCount > 0
                    // A series seen before with the same label bytes (1.0) or symbols (2.0) was valid
                    // then and is the same series now: it skips label validation and the
                    // label-by-label lookup.
                    let encoded = UnsafeRawBufferPointer(rebasing: base[series.encodedLabels.range])
                    var (known, key): (SeriesHandle?, EncodedLabelsKey?) = (nil, nil)
                    if storable > 0 {
                        if !encoded.isEmpty {
                            switch batch.knownSeries(encodedLabels: encoded) {
                            case let .known(handle): known = handle
                            case let .unknown(unknownKey): key = unknownKey
                            }
                        } else if series.rejection == nil && !view.labelSymbols.isEmpty {
                            known = symbols.knownSeries(series, in: batch)
                        }
                    }
                    let handle: SeriesHandle
                    if let known {
                        handle = known
                        // Exemplars are kept by the series' labels, which the shortcut left unread.
                        if exemplars && view.validateLabels(ofSeriesAt: index, limits: limits.labels) == nil { outcome.seriesWithExemplars.append(index) }
                    } else {
                        if let rejection = view.validateLabels(ofSeriesAt: index, limits: limits.labels) {
                            outcome.tally.add(rejection.rawValue, storable)
                            continue
                        }
                        if storable == 0 && !exemplars { continue }
                        scratch.removeAll(keepingCapacity: true)
                        for label in view.labels(of: view.series[index]) {
                            scratch.append(RawLabel(name: UnsafeRawBufferPointer(rebasing: base[label.name.range]),
                                                    value: UnsafeRawBufferPointer(rebasing: base[label.value.range])))
                        }
                        if storable == 0 {
                            // Exemplars alone: kept only for a series the head holds, as in Prometheus.
                            if scratch.withUnsafeBufferPointer({ batch.existingSeries($0) }) != nil { outcome.seriesWithExemplars.append(index) }
                            continue
                        }
                        // A new series none of whose samples may be stored is not made: it would
                        // count against the series limits, holding nothing, until a restart.
                        guard window.containsAny(of: series, in: view) || scratch.withUnsafeBufferPointer({ batch.existingSeries($0) }) != nil else {
                            outcome.tally.add("timestamp_out_of_bounds", storable)
                            continue
                        }
                        let found = scratch.withUnsafeBufferPointer { labels in
                            Result { () throws(SeriesLimitExceeded) in
                                if let key { return try batch.series(labels, encodedLabels: encoded, key: key) }
                                return try batch.series(labels)
                            }
                        }
                        switch found {
                        case let .success(created): handle = created
                        case let .failure(limit):
                            outcome.tally.add(limit.rawValue, storable)
                            continue
                        }
                        if exemplars { outcome.seriesWithExemplars.append(index) }
                    }
                    for sample in view.samples(of: series) {
                        guard window.contains(sample.timestamp) else {
                            outcome.tally.add("timestamp_out_of_bounds", 1)
                            continue
                        }
                        let verdict = batch.add(handle, timestamp: sample.timestamp, valueBits: sample.valueBits)
                        if verdict == .duplicate { outcome.duplicateSamples += 1 }
                        outcome.tally.add(verdict)
                    }
                    for histogram in view.histograms(of: series) {
                        guard window.contains(histogram.timestamp) else {
                            outcome.tally.add("timestamp_out_of_bounds", 1)
                            continue
                        }
                        let verdict = batch.add(handle, timestamp: histogram.timestamp, histogram: view.storedHistogram(histogram))
                        if verdict == .duplicate { outcome.duplicateHistograms += 1 }
                        outcome.tally.add(verdict)
                    }
                }
                return outcome
            }
    }
}

/// A Remote-Write 2.0 request's symbols as the head's symbol ids, each resolved once per request
/// (under the tenant lock, where the ids hold): a series is then found by its labels' ids alone.
struct RequestSymbols {
    private static let unresolved = UInt32.max
    /// A symbol the head does not hold: no series it has carries it.
    private static let absent = UInt32.max - 1
    /// The request's (not the view's: its labels are validated in place meanwhile).
    private let symbols: [ByteSpan]
    private let labelSymbols: [LabelSymbols]
    private let base: UnsafeRawBufferPointer
    private var headIds: [UInt32]

    init(_ view: WriteRequestView, _ base: UnsafeRawBufferPointer) {
        symbols = view.symbols
        labelSymbols = view.labelSymbols
        self.base = base
        headIds = [UInt32](repeating: Self.unresolved, count: labelSymbols.isEmpty ? 0 : symbols.count)
    }

    /// The series the head holds with exactly this series' labels, if any; nil when one of its
    /// symbols is new to the head.
    mutating func knownSeries(_ series: WireSeries, in batch: AppendBatch) -> SeriesHandle? {
        let labels = Int(series.labelStart)..<Int(series.labelStart + series.labelCount)
        // Name then value ids per label, as the head takes them.
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2 * labels.count) { ids in
            for (k, label) in zip(0..., labelSymbols[labels]) {
                ids[2 * k] = headId(label.name, batch)
                ids[2 * k + 1] = headId(label.value, batch)
                if ids[2 * k] == Self.absent || ids[2 * k + 1] == Self.absent { return nil }
            }
            return batch.knownSeries(labelIds: UnsafeBufferPointer(ids))
        }
    }

    @inline(__always)
    private mutating func headId(_ symbol: UInt32, _ batch: AppendBatch) -> UInt32 {
        let id = headIds[Int(symbol)]
        guard id == Self.unresolved else { return id }
        let resolved = batch.symbolId(of: UnsafeRawBufferPointer(rebasing: base[symbols[Int(symbol)].range])) ?? Self.absent
        headIds[Int(symbol)] = resolved
        return resolved
    }
}

/// The sample times a request may carry: up to `maxFuture` ahead of now and, when `maxPast` is
/// set, that far behind it, and never outside `StorableTime.range` (no series can hold such a time,
/// so none is made for it). Computed once per request with saturating arithmetic.
struct SampleWindow {
    let oldest: Int64
    let newest: Int64

    init(now: Int64, limits: TenantLimits) {
        newest = min(StorableTime.adding(limits.maxFuture, to: now), StorableTime.range.upperBound)
        oldest = max(limits.maxPast > 0 ? StorableTime.subtracting(limits.maxPast, from: now) : .min, StorableTime.range.lowerBound)
    }

    /// Whether any of the series' samples or histograms is inside.
    func containsAny(of series: WireSeries, in view: WriteRequestView) -> Bool {
        view.samples(of: series).contains { contains($0.timestamp) } || view.histograms(of: series).contains { contains($0.timestamp) }
    }

    func contains(_ t: Int64) -> Bool { t >= oldest && t <= newest }
}

/// The wall clock in milliseconds since the epoch.
public func wallClockMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// Counts of refused samples by reason, and the one-line message a sender logs.
struct RejectionTally: Sendable {
    private(set) var counts: [(String, Int)] = []

    /// A refused sample's or histogram's reason, by its verdict.
    mutating func add(_ verdict: SampleVerdict) {
        switch verdict {
        case .accepted, .duplicate: break
        case .conflict: add("duplicate_timestamp_different_value", 1)
        case .outOfOrder: add("out_of_order", 1)
        case .tooOld: add("too_old", 1)
        case .outOfBounds: add("timestamp_out_of_bounds", 1)
        case .malformedHistogram: add("invalid_histogram", 1)
        }
    }

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

/// The Remote-Write message of a request, from its headers: `proto=io.prometheus.write.v2.Request` is
/// 2.0; `proto=prometheus.WriteRequest` or none is 1.0; anything else, or a body not snappy-compressed
/// protobuf, is 415.
enum RemoteWriteMessage: Sendable {
    case v1, v2

    static let v2Name = "io.prometheus.write.v2.Request"

    static func of(_ headers: RemoteWriteIngester.RequestHeaders) -> Result<RemoteWriteMessage, HTTPAnswer> {
        if let encoding = headers.contentEncoding, encoding.lowercased() != "snappy" {
            return .failure(HTTPAnswer(status: 415, body: "unsupported Content-Encoding \(encoding): send snappy\n"))
        }
        guard let type = headers.contentType else { return .success(.v1) }
        let parts = type.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
        guard parts.first?.lowercased() == "application/x-protobuf" else {
            return .failure(HTTPAnswer(status: 415, body: "unsupported Content-Type \(type): send application/x-protobuf\n"))
        }
        var message = RemoteWriteMessage.v1
        for parameter in parts.dropFirst() where parameter.lowercased().hasPrefix("proto=") {
            switch parameter.dropFirst("proto=".count) {
            case "prometheus.WriteRequest": message = .v1
            case Substring(v2Name): message = .v2
            case let other:
                return .failure(HTTPAnswer(status: 415, body: "unsupported remote-write message \(other): Tally accepts prometheus.WriteRequest (Remote-Write 1.0) and \(v2Name) (2.0)\n"))
            }
        }
        return .success(message)
    }

    /// What a 2.0 answer says was written: durable float samples, integer histograms, exemplars kept.
    static func writtenHeaders(samples: Int, histograms: Int, exemplars: Int) -> [(String, String)] {
        [("X-Prometheus-Remote-Write-Samples-Written", String(samples)),
         ("X-Prometheus-Remote-Write-Histograms-Written", String(histograms)),
         ("X-Prometheus-Remote-Write-Exemplars-Written", String(exemplars))]
    }
}
