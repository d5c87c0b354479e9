extension PromQL {
    /// A PromQL duration (`5m`, `1h30m`, `1y`) in milliseconds, as Prometheus' `model.ParseDuration`
    /// reads it; nil for text it refuses or a duration past Go's `time.Duration`.
    public static func parseDuration(_ text: String) -> Int64? {
        try? PromQLDuration.parse(text).get()
    }
}
