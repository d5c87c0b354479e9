import Synchronization
import TallyWire

/// Each tenant's metric metadata (type, help, unit) as senders sent it with remote write, in memory,
/// for `/api/v1/metadata`: per metric name, the distinct entries in the order they first came. Not
/// persisted: a restart starts empty, and senders send it again (Prometheus every minute).
///
/// Bounded, since any sender can send any text: at most `entriesPerMetric` entries a metric (the
/// oldest goes first), `bytesPerTenant` bytes of names and text a tenant and `bytesInAll` for all
/// tenants together; past that, new entries are not kept (and counted as not stored).
final class TenantMetadata: Sendable {
    static let entriesPerMetric = 8
    static let bytesPerTenant = 4 << 20
    static let bytesInAll = 64 << 20

    struct Entry: Equatable, Sendable {
        let type: String
        let help: String
        let unit: String

        var bytes: Int { type.utf8.count + help.utf8.count + unit.utf8.count }
    }

    private struct Store {
        var byMetric: [String: [Entry]] = [:]
        var bytes = 0

        /// Keeps `entry` for `metric` if the tenant's budget and `room` (what all tenants have
        /// left) allow; returns the bytes it added (negative when it replaced a larger entry), nil
        /// when not kept.
        mutating func keep(_ entry: Entry, for metric: String, room: Int) -> Int? {
            var entries = byMetric[metric] ?? []
            if entries.contains(entry) { return 0 }
            let full = entries.count == TenantMetadata.entriesPerMetric
            let growth = entry.bytes + (entries.isEmpty ? metric.utf8.count : 0) - (full ? entries[0].bytes : 0)
            guard bytes + growth <= TenantMetadata.bytesPerTenant, growth <= room else { return nil }
            if full { entries.removeFirst() }
            entries.append(entry)
            bytes += growth
            byMetric[metric] = entries
            return growth
        }
    }

    private struct Stores {
        var byTenant: [String: Store] = [:]
        var bytes = 0
    }

    private let stores = Mutex(Stores())

    /// Keeps the metadata of `view` for `tenant`; returns how many entries are kept (new, or held
    /// already).
    func store(_ view: WriteRequestView, tenant: String) -> Int {
        guard !view.metadata.isEmpty else { return 0 }
        let received: [(String, Entry)] = view.body.withUnsafeBufferPointer { bytes in
            func text(_ span: ByteSpan) -> String { String(decoding: bytes[span.range], as: UTF8.self) }
            return view.metadata.map { (text($0.name), Entry(type: $0.typeName, help: text($0.help), unit: text($0.unit))) }
        }
        return stores.withLock { stores in
            var kept = 0
            for (metric, entry) in received {
                guard let growth = stores.byTenant[tenant, default: Store()].keep(entry, for: metric, room: Self.bytesInAll - stores.bytes) else { continue }
                stores.bytes += growth
                kept += 1
            }
            return kept
        }
    }

    /// The tenant's metadata by metric name, in name order: only `metric`'s when given, at most
    /// `limit` metrics when not negative.
    func metadata(of tenant: String, metric: String?, limit: Int) -> [(metric: String, entries: [Entry])] {
        let byMetric = stores.withLock { $0.byTenant[tenant]?.byMetric ?? [:] }
        let found = byMetric.filter { metric == nil || $0.key == metric }.sorted { $0.key < $1.key }
        return Array(found.prefix(limit < 0 ? found.count : limit)).map { ($0.key, $0.value) }
    }
}
