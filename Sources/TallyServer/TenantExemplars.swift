import Synchronization
import TallyStorage
import TallyWire

/// Each tenant's exemplars in memory: a `CircularExemplarStorage` of `--max-exemplars` entries per
/// tenant, made at the tenant's first exemplar. Not persisted: a restart starts empty.
final class TenantExemplars: Sendable {
    let capacity: Int
    private let stores = Mutex<[String: CircularExemplarStorage]>([:])

    init(capacity: Int) { self.capacity = capacity }

    /// The tenant's storage, nil if it has never been sent an exemplar.
    func storage(of tenant: String) -> CircularExemplarStorage? { stores.withLock { $0[tenant] } }

    /// Every tenant's count of exemplars held, for /metrics.
    var counts: [(tenant: String, exemplars: Int)] {
        stores.withLock { $0.map { ($0.key, $0.value.count) } }
    }

    /// What storing a request's exemplars came to.
    struct Outcome {
        /// Appended, or equal to their series' newest (a no-op that Prometheus counts as written).
        var written = 0
        var appended = 0
        var outOfOrder = 0
    }

    /// Stores the exemplars of the series at `seriesIndexes` (valid labels, held by the head) of
    /// `view` for `tenant` whose times are inside `window`, as samples' are: one far ahead would be
    /// its series' newest and leave every later one out of order.
    func store(_ view: WriteRequestView, seriesAt seriesIndexes: [Int], tenant: String, window: SampleWindow) -> Outcome {
        var outcome = Outcome()
        guard capacity > 0, !seriesIndexes.isEmpty else { return outcome }
        let storage = stores.withLock { stores in
            if let known = stores[tenant] { return known }
            let made = CircularExemplarStorage(capacity: capacity)
            stores[tenant] = made
            return made
        }
        view.body.withUnsafeBufferPointer { bytes in
            func text(_ span: ByteSpan) -> String { String(decoding: bytes[span.range], as: UTF8.self) }
            func labels(_ wire: ArraySlice<WireLabel>) -> Labels {
                // As Prometheus reads them: empty values dropped, sorted by name.
                Labels(wire.filter { $0.value.count > 0 }.map { Label(text($0.name), text($0.value)) })
            }
            for index in seriesIndexes {
                let series = view.series[index]
                let seriesLabels = labels(view.labels(of: series))
                for wire in view.exemplars(of: series) where window.contains(wire.timestamp) {
                    let exemplar = Exemplar(labels: labels(view.labels(of: wire)), valueBits: wire.valueBits, timestamp: wire.timestamp)
                    switch storage.add(exemplar, to: seriesLabels) {
                    case .appended:
                        outcome.appended += 1
                        outcome.written += 1
                    case .duplicate: outcome.written += 1
                    case .outOfOrder: outcome.outOfOrder += 1
                    case .labelSetTooLong, .disabled: break
                    }
                }
            }
        }
        return outcome
    }
}
