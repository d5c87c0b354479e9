import TallyStorage

/// The line format of `promtool tsdb dump`: `{labels} %g-value timestamp` for a float (2.42), and
/// `{labels} histogram timestamp` for a native histogram in Prometheus' `Histogram.String()` or
/// `FloatHistogram.String()` form
/// (what later promtool versions print; 2.42's stops at a series' first histogram). Series in label
/// order, each one's samples in time order.
enum DumpFormat {
    static func write(_ series: [SeriesSamples], histograms: [SeriesHistograms] = [], to output: (String) -> Void) {
        var f = 0, h = 0
        while f < series.count || h < histograms.count {
            let floatsFirst = h == histograms.count || (f < series.count && series[f].labels <= histograms[h].labels)
            let labels = floatsFirst ? series[f].labels : histograms[h].labels
            let samples = floatsFirst ? series[f].samples : []
            let held = h < histograms.count && histograms[h].labels == labels ? histograms[h].histograms : []
            if floatsFirst { f += 1 }
            if !held.isEmpty || !floatsFirst { h += 1 }
            write(labels.description + " ", samples, held, to: output)
        }
    }

    /// One series' floats and histograms merged by time.
    private static func write(_ prefix: String, _ samples: [Sample], _ histograms: [HistogramSample], to output: (String) -> Void) {
        var i = 0, k = 0
        while i < samples.count || k < histograms.count {
            if k == histograms.count || (i < samples.count && samples[i].timestamp <= histograms[k].timestamp) {
                output(prefix + GoFormat.float(Double(bitPattern: samples[i].valueBits)) + " " + String(samples[i].timestamp) + "\n")
                i += 1
            } else {
                output(prefix + histograms[k].histogram.promtoolText + " " + String(histograms[k].timestamp) + "\n")
                k += 1
            }
        }
    }
}
