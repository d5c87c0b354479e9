import Foundation
import Synchronization

/// Daily rows computed once from immutable blocks and kept beside them in
/// `<tenant>/rollups/daily<offset>.json`, keyed by day and by the version of the data they were
/// computed from (`SeriesQuerier.immutableVersion`). A new block over a day (late data flushed,
/// an import, a compaction) or a deletion in one changes the version, so that day is computed again.
///
/// The file is a cache: written with a temporary file and a rename so readers never see half of
/// it, not fsynced, and ignored when it does not parse or was computed with other options.
public final class CostRollupStore: Sendable {
    let path: String
    let readOnly: Bool
    private let state: Mutex<State>

    struct State {
        var days: [Int64: Entry] = [:]
        var dirty = false
    }

    struct Entry: Codable {
        var version: String
        var computedAt: Int64
        var leftOut: [LeftOutSeries.Entry]
        var rows: [Row]
    }

    /// One cluster's figures, each Float64 as its bit pattern in hex so it reads back exactly.
    struct Row: Codable {
        var cluster: String
        var costs: [String]
        var covered: [String]
        var network: [String]
    }

    /// 2: series without a join label are left out (and listed) rather than put in cluster "".
    static let format = 2

    struct File: Codable {
        var format = CostRollupStore.format
        var lookback: Int64
        var counterReach: Int64
        var offsetMinutes: Int
        var days: [String: Entry]
    }

    private let fingerprint: (lookback: Int64, counterReach: Int64, offsetMinutes: Int)

    /// `readOnly` stores answer from the file but never write it (`tally costs` beside a server).
    public init(tenantDirectory: String, calendar: CostCalendar, options: CostOptions, readOnly: Bool = false) {
        let label = calendar.offsetMinutes == 0 ? "" : calendar.label.replacingOccurrences(of: ":", with: "")
        path = tenantDirectory + "/rollups/daily\(label).json"
        self.readOnly = readOnly
        fingerprint = (options.lookback, options.counterReach, calendar.offsetMinutes)
        var state = State()
        if let data = FileManager.default.contents(atPath: path), let file = try? JSONDecoder().decode(File.self, from: data),
           file.format == Self.format, file.lookback == options.lookback, file.counterReach == options.counterReach,
           file.offsetMinutes == calendar.offsetMinutes {
            for (key, entry) in file.days { if let day = Int64(key) { state.days[day] = entry } }
        }
        self.state = Mutex(state)
    }

    /// The rows of `day` if they were computed from data of this version.
    func rows(_ day: CostDay, version: String) -> (rows: [DailyClusterCost], leftOut: [LeftOutSeries.Entry], computedAt: Int64)? {
        guard let entry = state.withLock({ $0.days[day.index] }), entry.version == version else { return nil }
        let rows = entry.rows.compactMap { row -> DailyClusterCost? in
            var out = DailyClusterCost(cluster: row.cluster, day: day)
            guard row.costs.count == CostCategory.allCases.count, row.covered.count == CostCategory.allCases.count,
                  row.network.count == NetworkCategory.allCases.count else { return nil }
            for (i, category) in CostCategory.allCases.enumerated() {
                out.costs[category] = Self.decode(row.costs[i])
                out.coveredMinutes[category] = Self.decode(row.covered[i])
            }
            for (i, category) in NetworkCategory.allCases.enumerated() { out.network[category] = Self.decode(row.network[i]) }
            out.computedAt = entry.computedAt
            return out
        }
        return rows.count == entry.rows.count ? (rows, entry.leftOut, entry.computedAt) : nil
    }

    func store(_ day: CostDay, version: String, rows: [DailyClusterCost], leftOut: [LeftOutSeries.Entry], computedAt: Int64) {
        let entry = Entry(version: version, computedAt: computedAt, leftOut: leftOut, rows: rows.map { row in
            Row(cluster: row.cluster,
                costs: CostCategory.allCases.map { Self.encode(row.costs[$0]) },
                covered: CostCategory.allCases.map { Self.encode(row.coveredMinutes[$0]) },
                network: NetworkCategory.allCases.map { Self.encode(row.network[$0] ?? 0) })
        })
        state.withLock {
            $0.days[day.index] = entry
            $0.dirty = true
        }
    }

    /// Writes what changed since the last save; a failure only costs recomputation later.
    public func save() {
        guard !readOnly else { return }
        let snapshot: [Int64: Entry]? = state.withLock { state in
            guard state.dirty else { return nil }
            state.dirty = false
            return state.days
        }
        guard let days = snapshot else { return }
        let file = File(lookback: fingerprint.lookback, counterReach: fingerprint.counterReach, offsetMinutes: fingerprint.offsetMinutes,
                        days: Dictionary(uniqueKeysWithValues: days.map { (String($0.key), $0.value) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let data = try? encoder.encode(file) else { return }
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).\(UInt64.random(in: 0...UInt64.max)).tmp"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, path) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
    }

    static func encode(_ x: Double) -> String { String(x.bitPattern, radix: 16) }
    static func decode(_ s: String) -> Double { UInt64(s, radix: 16).map { Double(bitPattern: $0) } ?? .nan }
}
