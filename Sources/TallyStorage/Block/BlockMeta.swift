import Foundation

/// `meta.json` of a Prometheus block (version 1), with Thanos' section so Thanos tools accept it.
public struct BlockMeta: Codable, Sendable, Equatable {
    public struct Stats: Codable, Sendable, Equatable {
        public var numSamples: UInt64
        public var numSeries: UInt64
        public var numChunks: UInt64
        public var numTombstones: UInt64?
    }

    public struct Parent: Codable, Sendable, Equatable {
        public var ulid: String
        public var minTime: Int64
        public var maxTime: Int64
    }

    public struct Compaction: Codable, Sendable, Equatable {
        public var level: Int
        public var sources: [String]
        public var parents: [Parent]?
        public var hints: [String]?
    }

    public struct Thanos: Codable, Sendable, Equatable {
        public struct Downsample: Codable, Sendable, Equatable { public var resolution: Int64 }
        public var labels: [String: String]
        public var downsample: Downsample
        public var source: String
        public var version: Int?
    }

    /// Tally's own section (readers of the format ignore unknown keys): facts the planner needs
    /// that the Prometheus fields do not hold.
    public struct Tally: Codable, Sendable, Equatable {
        /// Samples the tombstones cover, counted when they were written.
        public var deletedSamples: UInt64
    }

    public var ulid: String
    /// Inclusive.
    public var minTime: Int64
    /// Exclusive: one past the newest sample.
    public var maxTime: Int64
    public var stats: Stats
    public var compaction: Compaction
    public var version: Int
    public var thanos: Thanos?
    public var tally: Tally?

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(self)) + [0x0a]
    }

    public static func decode(_ bytes: [UInt8]) throws -> BlockMeta {
        try JSONDecoder().decode(BlockMeta.self, from: Data(bytes))
    }

    /// The `meta.json` of the block at `directory`; `block` names it in errors.
    static func read(directory: String, block: String) throws -> BlockMeta {
        let bytes = try FileSystem.readFile(directory + "/meta.json")
        let meta: BlockMeta
        do {
            meta = try decode(bytes)
        } catch let error as DecodingError {
            throw BlockError(block: block, section: "meta.json", problem: Self.describe(error))
        }
        let times = StorableTime.blockRange
        guard meta.minTime <= meta.maxTime, times.contains(meta.minTime), times.contains(meta.maxTime) else {
            throw BlockError(block: block, section: "meta.json", problem: "time range [\(meta.minTime), \(meta.maxTime)) is reversed or beyond ±2^54 ms")
        }
        // A compaction adds one to the highest parent's level: a level no compactor reaches is
        // corruption, refused here rather than overflowing there.
        guard (0...Self.maxCompactionLevel).contains(meta.compaction.level) else {
            throw BlockError(block: block, section: "meta.json", problem: "compaction level \(meta.compaction.level) is negative or over \(Self.maxCompactionLevel)")
        }
        return meta
    }

    /// Far above any level a compactor writes (Prometheus' and Tally's reach single digits).
    static let maxCompactionLevel = 1_000_000

    /// The decoder's own words and where it stopped, without the context dump of its description.
    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .dataCorrupted(context), let .keyNotFound(_, context), let .typeMismatch(_, context), let .valueNotFound(_, context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
