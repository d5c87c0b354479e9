/// Why a whole request body could not be decoded. Every case is the sender's fault (a 4xx).
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case framedSnappy
    case corruptSnappy
    case decodedTooLarge(Int, limit: Int)
    case invalidProtobuf(String)
    /// A native histogram that breaks one of Prometheus' rules (`HistogramValidator`).
    case invalidHistogram(String)
    /// A native histogram with custom buckets (schema -53), which Tally does not take; names where.
    case histogramCustomBuckets(String)

    public var description: String {
        switch self {
        case .framedSnappy: "snappy: framed format is not allowed, send the block format"
        case .corruptSnappy: "snappy: corrupt input"
        case let .decodedTooLarge(size, limit): "decoded body is \(size) bytes, over the limit of \(limit)"
        case let .invalidProtobuf(why): "invalid protobuf: \(why)"
        case let .invalidHistogram(why): "invalid native histogram: \(why); nothing stored"
        case let .histogramCustomBuckets(place): "custom buckets not supported: \(place) has schema -53 (custom bucket bounds), which Tally does not take; nothing stored"
        }
    }
}
