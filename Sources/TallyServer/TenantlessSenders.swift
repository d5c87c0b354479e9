import Synchronization

/// The addresses whose writes named no tenant, so the log tells each sender once. At most `capacity`
/// are remembered, whatever the number of senders; past that, writes are counted, not logged.
final class TenantlessSenders: Sendable {
    static let capacity = 1024

    enum Note: Equatable {
        /// The address's first write without a tenant: log it.
        case new
        case known
        /// The first address that finds the set full: say once that later ones go unlogged.
        case full
        case unremembered
    }

    private struct State {
        var addresses: Set<String> = []
        var full = false
    }

    private let state = Mutex(State())

    func note(_ address: String) -> Note {
        state.withLock { state in
            if state.addresses.contains(address) { return .known }
            guard state.addresses.count < Self.capacity else {
                if state.full { return .unremembered }
                state.full = true
                return .full
            }
            state.addresses.insert(address)
            return .new
        }
    }
}
