/// The PromQL form of each daily cost category of the cost semantics: the per-identity average
/// (`avg by`) of price and quantity, their product, summed over the day's one-minute grid,
/// evaluated at the day's last millisecond. Asked of Prometheus (and VictoriaMetrics) as the
/// oracle and the peer of Tally's cost API; the allocation forms are the same per namespace.
public enum CostPromQL {
    public static let categories = ["cpu", "ram", "gpu", "pv", "load_balancer", "management", "network_zone", "network_region", "network_internet"]
    /// What allocation gives a namespace (management is the shared row's, and the daily form).
    public static let allocationCategories = ["cpu", "ram", "gpu", "pv", "load_balancer", "network_zone", "network_region", "network_internet"]

    public static func form(_ category: String) -> String {
        func priced(_ price: String, _ quantity: String?, by identity: String, scale: String = "") -> String {
            let p = "avg by (cluster_id,\(identity)) (\(price))"
            let rate = quantity.map { "\(p) * on(cluster_id,\(identity)) avg by (cluster_id,\(identity)) (\($0))\(scale)" } ?? p
            return daySum(rate, by: "cluster_id")
        }
        switch category {
        case "cpu": return priced("node_cpu_hourly_cost", "kube_node_status_capacity_cpu_cores", by: "node")
        case "ram": return priced("node_ram_hourly_cost", "kube_node_status_capacity_memory_bytes", by: "node", scale: " / 1073741824")
        case "gpu": return priced("node_gpu_hourly_cost", "node_gpu_count", by: "node")
        case "pv": return priced("pv_hourly_cost", "kube_persistentvolume_capacity_bytes", by: "persistentvolume", scale: " / 1073741824")
        case "load_balancer": return priced("kubecost_load_balancer_cost", nil, by: "namespace,service_name,ingress_ip")
        case "management": return priced("kubecost_cluster_management_cost", nil, by: "provisioner_name")
        default: return network(category, by: "cluster_id")
        }
    }

    /// A category's cost per `cluster_id, namespace`, as allocation by namespace gives it: each
    /// container's (pod's) allocation times its node's (volume's) price, load balancers by their
    /// namespace, egress by its counter's namespace.
    public static func namespaceForm(_ category: String) -> String {
        func allocated(_ usage: String, scale: String = "", _ price: String, on item: String) -> String {
            let identity = usage == "pod_pvc_allocation" ? "namespace,pod,persistentvolumeclaim,persistentvolume" : "namespace,pod,container,node"
            let rate = "avg by (cluster_id,\(identity)) (\(usage))\(scale) * on(cluster_id,\(item)) group_left() avg by (cluster_id,\(item)) (\(price))"
            return daySum(rate, by: "cluster_id,namespace")
        }
        switch category {
        case "cpu": return allocated("container_cpu_allocation", "node_cpu_hourly_cost", on: "node")
        case "ram": return allocated("container_memory_allocation_bytes", scale: " / 1073741824", "node_ram_hourly_cost", on: "node")
        case "gpu": return allocated("container_gpu_allocation", "node_gpu_hourly_cost", on: "node")
        case "pv": return allocated("pod_pvc_allocation", scale: " / 1073741824", "pv_hourly_cost", on: "persistentvolume")
        case "load_balancer": return daySum("avg by (cluster_id,namespace,service_name,ingress_ip) (kubecost_load_balancer_cost)", by: "cluster_id,namespace")
        default: return network(category, by: "cluster_id,namespace")
        }
    }

    /// Dollars of a $/h `rate` over the day's one-minute grid, summed by `grouping`.
    private static func daySum(_ rate: String, by grouping: String) -> String {
        "sum by (\(grouping)) (sum_over_time((\(rate))[1d:1m])) / 60"
    }

    /// The increase between consecutive one-minute samples (a drop is a reset: the later value),
    /// summed by `grouping`, times the category's $/GiB price.
    private static func network(_ category: String, by grouping: String) -> String {
        let selector: String
        switch category {
        case "network_zone": selector = "{internet=\"false\",same_zone=\"false\",same_region=\"true\"}"
        case "network_region": selector = "{internet=\"false\",same_zone=\"false\",same_region=\"false\"}"
        case "network_internet": selector = "{internet=\"true\"}"
        default: preconditionFailure("unknown category \(category)")
        }
        let counter = "kubecost_pod_network_egress_bytes_total\(selector)"
        let increase = "((\(counter) - \(counter) offset 1m) >= 0 or (\(counter) and \(counter) offset 1m))"
        let price = "kubecost_network_\(category.dropFirst("network_".count))_egress_cost"
        return "sum by (\(grouping)) (sum_over_time((sum by (\(grouping)) (\(increase)) * on(cluster_id) group_left() avg by (cluster_id) (\(price)))[1d:1m])) / 1073741824"
    }
}
