import TallyStorage

/// The line format of `promtool tsdb dump` (2.42): `{labels} %g-value timestamp`.
enum DumpFormat {
    static func write(_ series: [SeriesSamples], to output: (String) -> Void) {
        for s in series {
            let prefix = s.labels.description + " "
            for sample in s.samples {
                output(prefix + GoFormat.float(Double(bitPattern: sample.valueBits)) + " " + String(sample.timestamp) + "\n")
            }
        }
    }
}
