import Foundation
import TallyStorage

// The JSON a maintenance run reports, the same from the command line (`--json`) and the admin
// endpoints; storage returns the values.

extension CompactionReport {
    /// `{"tenant", "by", "blocks_before", "blocks_after", "merged": [{"reason", "parents", "child",
    /// "min_time", "max_time"}]}`: the same from `tally compact --json` and the admin endpoint.
    public func json(tenant: String, by: String) -> String {
        let merged = zip(groups, written).map { group, child in
            "{\"reason\":\"\(group.reason.rawValue)\",\"parents\":[\(group.parents.map { "\"\($0.ulid)\"" }.joined(separator: ","))],"
                + (child.map { "\"child\":\"\($0.ulid)\"," } ?? "\"child\":null,")
                + "\"min_time\":\(child?.minTime ?? group.minTime),\"max_time\":\(child?.maxTime ?? group.maxTime)}"
        }
        let failed = (try? JSONEncoder().encode(failures)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        return "{\"tenant\":\"\(tenant)\",\"by\":\"\(by)\",\"blocks_before\":\(blocksBefore),\"blocks_after\":\(blocksAfter),\"merged\":[\(merged.joined(separator: ","))],"
            + "\"failed\":\(failed)}"
    }
}

extension DeletionReport {
    /// `{"tenant", "by", "dry_run", "samples", "parts": [{"place", "series", "samples"}]}`.
    public func json(tenant: String, by: String) -> String {
        let parts = parts.map { "{\"place\":\"\($0.place)\",\"series\":\($0.series),\"samples\":\($0.samples)}" }
        return "{\"tenant\":\"\(tenant)\",\"by\":\"\(by)\",\"dry_run\":\(dryRun),\"samples\":\(samples),\"parts\":[\(parts.joined(separator: ","))]}"
    }
}

extension RetentionPolicy {
    /// `{"tenant", "by", "dropped": [ulid], "ranges": [{"ulid", "min_time", "max_time"}]}`: the
    /// same from `tally retention --json` and the admin endpoint.
    public static func json(_ dropped: [BlockMeta], tenant: String, by: String) -> String {
        let ranges = dropped.map { "{\"ulid\":\"\($0.ulid)\",\"min_time\":\($0.minTime),\"max_time\":\($0.maxTime)}" }
        return "{\"tenant\":\"\(tenant)\",\"by\":\"\(by)\",\"dropped\":[\(dropped.map { "\"\($0.ulid)\"" }.joined(separator: ","))],"
            + "\"ranges\":[\(ranges.joined(separator: ","))]}"
    }
}
