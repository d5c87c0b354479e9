/// The PromQL form of each daily cost category of the cost semantics: the per-identity average
/// (`avg by`) of price and quantity, their product, summed over the day's one-minute grid,
/// evaluated at the day's last millisecond. Asked of Prometheus (and VictoriaMetrics) as the
/// oracle and the peer of Tally's cost API.
public enum CostPromQL {
    public static let categories = ["cpu", "ram", "gpu", "pv", "load_balancer", "management", "network_zone", "network_region", "network_internet"]

    public static func form(_ category: String) -> String {
        func priced(_ price: String, _ quantity: String?, by identity: String, scale: String = "") -> String {
            let p = "avg by (cluster_id,\(identity)) (\(price))"
            let rate = quantity.map { "\(p) * on(cluster_id,\(identity)) avg by (cluster_id,\(identity)) (\($0))\(scale)" } ?? p
            return "sum by (cluster_id) (sum_over_time((\(rate))[1d:1m])) / 60"
        }
        func network(_ selector: String, _ price: String) -> String {
            let counter = "kubecost_pod_network_egress_bytes_total\(selector)"
            // The increase between consecutive one-minute samples; a drop is a reset (the later value).
            let increase = "((\(counter) - \(counter) offset 1m) >= 0 or (\(counter) and \(counter) offset 1m))"
            return "sum by (cluster_id) (sum_over_time((sum by (cluster_id) (\(increase)) * on(cluster_id) avg by (cluster_id) (\(price)))[1d:1m])) / 1073741824"
        }
        switch category {
        case "cpu": return priced("node_cpu_hourly_cost", "kube_node_status_capacity_cpu_cores", by: "node")
        case "ram": return priced("node_ram_hourly_cost", "kube_node_status_capacity_memory_bytes", by: "node", scale: " / 1073741824")
        case "gpu": return priced("node_gpu_hourly_cost", "node_gpu_count", by: "node")
        case "pv": return priced("pv_hourly_cost", "kube_persistentvolume_capacity_bytes", by: "persistentvolume", scale: " / 1073741824")
        case "load_balancer": return priced("kubecost_load_balancer_cost", nil, by: "namespace,service_name,ingress_ip")
        case "management": return priced("kubecost_cluster_management_cost", nil, by: "provisioner_name")
        case "network_zone": return network("{internet=\"false\",same_zone=\"false\",same_region=\"true\"}", "kubecost_network_zone_egress_cost")
        case "network_region": return network("{internet=\"false\",same_zone=\"false\",same_region=\"false\"}", "kubecost_network_region_egress_cost")
        case "network_internet": return network("{internet=\"true\"}", "kubecost_network_internet_egress_cost")
        default: preconditionFailure("unknown category \(category)")
        }
    }
}
