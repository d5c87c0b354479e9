import Synchronization
import TallyStorage

/// Series an answer leaves out because a label they are joined on (`cluster_id`, `node`,
/// `namespace`, ...) is missing. Billing them to a cluster named `""` would hide the fault at its
/// source, so the answer leaves them out, says so in its warnings, and the server counts them.
public final class LeftOutSeries: Sendable {
    /// One left-out series: which, of which metric and cluster, and the first label it lacks.
    struct Entry: Codable, Hashable {
        var series: String
        var metric: String
        var cluster: String
        var missing: String
    }

    private let entries = Mutex<Set<Entry>>([])

    public init() {}

    /// The series left out so far, each counted once whatever the number of days asked.
    public var count: Int { entries.withLock { $0.count } }

    /// One line per metric and missing label, sorted.
    public var warnings: [String] {
        let groups = entries.withLock { all in Dictionary(grouping: all) { entry in [entry.metric, entry.missing] } }
        return groups.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { key in
            let example = groups[key]!.map(\.series).min()!
            return "left out \(groups[key]!.count) series of \(key[0]) without a \(key[1]) label, e.g. \(example)"
        }
    }

    func add(_ found: some Sequence<Entry>, cluster: String?) {
        entries.withLock { all in for entry in found where cluster == nil || entry.cluster == cluster { all.insert(entry) } }
    }

    /// The entry of a series lacking `cluster_id` or one of `identity`, nil when it has them all.
    static func entry(_ labels: Labels, metric: String, identity: [String]) -> Entry? {
        guard let missing = ([clusterLabel] + identity).first(where: { (labels[$0] ?? "").isEmpty }) else { return nil }
        return Entry(series: labels.description, metric: metric, cluster: labels[clusterLabel] ?? "", missing: missing)
    }
}
