/// The cost categories of a daily row, in the order they are reported.
public enum CostCategory: String, CaseIterable, Sendable {
    case cpu, ram, gpu, pv
    case loadBalancer = "load_balancer"
    case management, network

    /// The FOCUS 1.0 `ServiceCategory` of this category's charges.
    var focusServiceCategory: String {
        switch self {
        case .cpu, .ram, .gpu: "Compute"
        case .pv: "Storage"
        case .loadBalancer, .network: "Networking"
        case .management: "Management and Governance"
        }
    }

    /// What is charged, in words, for a FOCUS `ChargeDescription`.
    var charge: String {
        switch self {
        case .cpu: "Node CPU"
        case .ram: "Node memory"
        case .gpu: "Node GPUs"
        case .pv: "Persistent volume storage"
        case .loadBalancer: "Load balancers"
        case .management: "Cluster management fee"
        case .network: "Network egress (zone, region and internet)"
        }
    }
}

/// One number per category.
public struct CategoryValues: Sendable, Equatable {
    private var values = [Double](repeating: 0, count: CostCategory.allCases.count)

    public init() {}

    public subscript(category: CostCategory) -> Double {
        get { values[Self.position(category)] }
        set { values[Self.position(category)] = newValue }
    }

    private static func position(_ category: CostCategory) -> Int {
        CostCategory.allCases.firstIndex(of: category)!
    }

    /// The compensated sum over all categories.
    public var total: Double {
        var sum = NeumaierSum()
        for v in values { sum.add(v) }
        return sum.value
    }
}

/// The network categories of section 3 of the cost semantics.
public enum NetworkCategory: String, CaseIterable, Sendable {
    case zone, region, internet

    /// The price gauge of this category, $ per GiB.
    var priceMetric: String { "kubecost_network_\(rawValue)_egress_cost" }

    /// Which category an egress counter series counts in. Internet traffic also carries
    /// `same_zone="false", same_region="false"`; Kubecost's own queries count it only as internet,
    /// and so does Tally (otherwise it would be billed twice). Older exporters spell the labels
    /// `sameZone`/`sameRegion`.
    static func of(_ labels: [String: String]) -> NetworkCategory? {
        if labels["internet"] == "true" { return .internet }
        let sameZone = labels["same_zone"] ?? labels["sameZone"], sameRegion = labels["same_region"] ?? labels["sameRegion"]
        guard sameZone == "false" else { return nil }
        switch sameRegion {
        case "true": return .zone
        case "false": return .region
        default: return nil
        }
    }
}

/// What a daily cluster row holds: dollars and covered minutes per category.
public struct DailyClusterCost: Sendable, Equatable {
    public let cluster: String
    public let day: CostDay
    public var costs = CategoryValues()
    public var coveredMinutes = CategoryValues()
    public var network: [NetworkCategory: Double] = [:]
    /// The day has ended and the grace period for late data has passed.
    public var complete = false
    /// When the numbers were computed, milliseconds since the epoch.
    public var computedAt: Int64 = 0

    public init(cluster: String, day: CostDay) {
        self.cluster = cluster
        self.day = day
    }

    public var total: Double { costs.total }
}

/// How costs are computed; the defaults are those of the cost semantics.
public struct CostOptions: Sendable {
    /// How long a sample holds its value without a newer one (PromQL's lookback).
    public var lookback: Int64 = 5 * 60_000
    /// How long after a day ends late remote-write data is still expected.
    public var grace: Int64 = 2 * 3_600_000
    /// How far before a day the earlier sample of a network counter pair is looked for.
    public var counterReach: Int64 = 86_400_000
    /// The longest question, in days.
    public var maximumDays = 400

    public init() {}

    /// The days from `first` to `last` inclusive, checked against the documented maximum.
    public func days(from first: CostDay, to last: CostDay) throws(CostQueryError) -> [CostDay] {
        guard first <= last else { throw CostQueryError("start \(first.date) is after end \(last.date)") }
        let count = last.index - first.index + 1
        guard count <= maximumDays else {
            throw CostQueryError("\(count) days asked, at most \(maximumDays) per question")
        }
        return (0..<count).map { first.advanced(by: $0) }
    }
}

/// Label values that name one priced item.
struct ItemKey: Hashable {
    let values: [String]
    var cluster: String { values[0] }
}

/// The cluster of a series; a series without it is in no cluster (`LeftOutSeries`).
let clusterLabel = "cluster_id"
let bytesPerGiB = 1_073_741_824.0
