import ArgumentParser
import TallyServer
import TallyStorage

/// `tally serve`'s limits, authentication, TLS and admin flags; the defaults are `TenantLimits`' (docs/security.md).
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("limits.max-future"), help: "Samples newer than now plus this get 400 timestamp_out_of_bounds.")
    var maxFuture = "10m"

    @Option(name: .customLong("limits.max-past"),
            help: "Samples older than now minus this get 400 timestamp_out_of_bounds. With 0s no age is refused for itself: a series' samples in time order (a new series' first one too) are taken however old, and only samples older than their series' newest are bounded, by --ooo-window.")
    var maxPast = "0s"

    @Option(name: .customLong("limits.max-samples-per-request"), help: "Larger requests get 400 max_samples_per_request; nothing of them is stored.")
    var maxSamplesPerRequest = TenantLimits().maxSamplesPerRequest

    @Option(name: .customLong("limits.max-series-per-tenant"), help: "Head series per tenant; samples of further new series get 400 max_series_per_tenant.")
    var maxSeriesPerTenant = TenantLimits().series.maxSeries

    @Option(name: .customLong("limits.max-series-per-metric"), help: "Head series per metric name and tenant (400 max_series_per_metric).")
    var maxSeriesPerMetric = TenantLimits().series.maxSeriesPerMetric

    @Option(name: .customLong("limits.ingestion-rate"), help: "Samples per second per tenant (token bucket); over it, 429 with Retry-After.")
    var ingestionRate = TenantLimits().ingestionRate

    @Option(name: .customLong("limits.ingestion-burst"), help: "Samples a tenant may send at once above its rate.")
    var ingestionBurst = TenantLimits().ingestionBurst

    @Option(name: .customLong("limits.max-label-names-per-series"), help: "Labels per series (400 max_label_names_per_series).")
    var maxLabelNames = TenantLimits().labels.maxLabelNamesPerSeries

    @Option(name: .customLong("limits.max-label-name-length"), help: "Bytes in a label name (400 max_label_name_length).")
    var maxLabelNameLength = TenantLimits().labels.maxLabelNameLength

    @Option(name: .customLong("limits.max-label-value-length"), help: "Bytes in a label value (400 max_label_value_length).")
    var maxLabelValueLength = TenantLimits().labels.maxLabelValueLength

    @Option(name: .customLong("limits.max-tenants"), help: "Tenants this server may hold; a write creating one more gets 400 max_tenants.")
    var maxTenants = ServerConfiguration().maxTenants

    @Option(name: .customLong("limits.config-file"),
            help: "YAML with defaults: and per-tenant tenants: limits over these flags; reloaded when it changes and on SIGHUP.")
    var configFile: String?

    @Option(name: .customLong("auth.config-file"),
            help: "YAML of credentials (bearer tokens, basic users), each with its tenants and scopes (write, read, admin); without it every request is let in. Reloaded on change and on SIGHUP.")
    var authConfigFile: String?

    @Option(name: .customLong("tls.cert-file"), help: "PEM certificate chain: serve HTTPS instead of HTTP (with --tls.key-file).")
    var tlsCertFile: String?

    @Option(name: .customLong("tls.key-file"), help: "PEM private key of --tls.cert-file.")
    var tlsKeyFile: String?

    @Option(name: .customLong("tls.client-ca-file"), help: "PEM CA bundle: clients must present a certificate it signed.")
    var tlsClientCAFile: String?

    @Flag(name: .customLong("web.enable-admin-api"),
          help: "Answer the admin endpoints (compact, retention, delete_series) from the network; the tally CLI reaches them with the storage's admin token regardless.")
    var enableAdminAPI = false

    func validate() throws {
        guard (tlsCertFile == nil) == (tlsKeyFile == nil) else { throw ValidationError("--tls.cert-file and --tls.key-file go together") }
        guard tlsClientCAFile == nil || tlsCertFile != nil else { throw ValidationError("--tls.client-ca-file needs --tls.cert-file and --tls.key-file") }
        guard ServerConfiguration.milliseconds(maxFuture) != nil else { throw ValidationError("--limits.max-future must be a duration like 10m") }
        guard ServerConfiguration.milliseconds(maxPast) != nil else { throw ValidationError("--limits.max-past must be a duration like 400d, or 0s") }
        for (name, value) in [("max-samples-per-request", maxSamplesPerRequest), ("max-series-per-tenant", maxSeriesPerTenant),
                              ("max-series-per-metric", maxSeriesPerMetric), ("ingestion-rate", ingestionRate),
                              ("ingestion-burst", ingestionBurst), ("max-label-names-per-series", maxLabelNames),
                              ("max-label-name-length", maxLabelNameLength), ("max-label-value-length", maxLabelValueLength),
                              ("max-tenants", maxTenants)] where value <= 0 {
            throw ValidationError("--limits.\(name) must be positive")
        }
    }

    /// The flags written into a server configuration.
    func apply(to config: inout ServerConfiguration) {
        var limits = TenantLimits()
        limits.maxFuture = ServerConfiguration.milliseconds(maxFuture) ?? limits.maxFuture
        limits.maxPast = ServerConfiguration.milliseconds(maxPast) ?? limits.maxPast
        limits.maxSamplesPerRequest = maxSamplesPerRequest
        limits.series = SeriesLimits(maxSeries: maxSeriesPerTenant, maxSeriesPerMetric: maxSeriesPerMetric)
        limits.ingestionRate = ingestionRate
        limits.ingestionBurst = ingestionBurst
        limits.labels.maxLabelNamesPerSeries = maxLabelNames
        limits.labels.maxLabelNameLength = maxLabelNameLength
        limits.labels.maxLabelValueLength = maxLabelValueLength
        config.limits = limits
        config.limitsConfigFile = configFile
        config.maxTenants = maxTenants
        config.enableAdminAPI = enableAdminAPI
        config.authConfigFile = authConfigFile
        if let tlsCertFile, let tlsKeyFile {
            config.tls = TLSFiles(certificateChain: tlsCertFile, privateKey: tlsKeyFile, clientCA: tlsClientCAFile)
        }
    }
}
