import TallyLoad
import TallyWire
import XCTest

/// The benchmark's second corpus is what `docs/benchmarks.md` says it is: every request read back by
/// the receiver's own decoder.
final class TenantCorpusTests: XCTestCase {
    private struct Sent {
        var requestSizes: [[Int]] = []
        /// Per tenant, per label set: the samples in order.
        var series: [[String: [WireSample]]] = []
    }

    private func decode(_ corpus: TenantCorpus) throws -> Sent {
        var sent = Sent(requestSizes: Array(repeating: [], count: corpus.senders), series: Array(repeating: [:], count: corpus.tenants))
        for sender in 0..<corpus.senders {
            let tenant = Int(corpus.tenant(ofSender: sender).dropFirst("tenant-".count))!
            try corpus.forEachRequest(sender: sender) { body in
                let view = try RemoteWriteDecoder.decode(compressed: body, maxDecodedBytes: 1 << 26)
                sent.requestSizes[sender].append(view.series.count)
                for series in view.series {
                    let labels = view.labels(of: series).map {
                        (String(decoding: view.body[$0.name.range], as: UTF8.self), String(decoding: view.body[$0.value.range], as: UTF8.self))
                    }
                    XCTAssertEqual(labels.first?.0, "__name__")
                    XCTAssertTrue(corpus.labelsPerSeries.contains(labels.count - 1), "\(labels)")
                    XCTAssertEqual(labels.map(\.0), labels.map(\.0).sorted(), "label names in order")
                    XCTAssertTrue(labels.contains { $0.0 == "cluster_id" && $0.1.hasPrefix("cluster-\(tenant)-") }, "\(labels)")
                    for (name, value) in labels where name != "__name__" && name != "cluster_id" {
                        XCTAssertTrue(corpus.valueLength.contains(value.utf8.count), "\(name)=\(value)")
                    }
                    let samples = view.samples(of: series)
                    XCTAssertEqual(samples.count, 1, "one sample a series entry")
                    sent.series[tenant][labels.map { "\($0.0)=\($0.1)" }.joined(separator: ","), default: []] += samples
                }
            }
        }
        return sent
    }

    func testRequestsCarryTheDescribedSeriesAndSamples() throws {
        var corpus = TenantCorpus()
        (corpus.tenants, corpus.seriesPerTenant, corpus.scrapes, corpus.start) = (3, 1_500, 4, 1_700_000_000_000)
        let sent = try decode(corpus)
        for sizes in sent.requestSizes {
            XCTAssertTrue(sizes.dropLast().allSatisfy(corpus.samplesPerRequest.contains), "\(sizes)")
            XCTAssertLessThanOrEqual(sizes.last ?? 0, corpus.samplesPerRequest.upperBound)
        }
        XCTAssertEqual(sent.requestSizes.joined().reduce(0, +), corpus.sampleCount)
        // A request ends where it fills, inside a scrape more often than not.
        XCTAssertGreaterThan(Set(sent.requestSizes.joined()).count, 2)
        for (tenant, series) in sent.series.enumerated() {
            XCTAssertEqual(series.count, corpus.seriesPerTenant, "tenant \(tenant): distinct label sets")
            for samples in series.values {
                XCTAssertEqual(samples.count, corpus.scrapes)
                XCTAssertEqual(zip(samples, samples.dropFirst()).map { ($1.timestamp - $0.timestamp + 5) / corpus.scrapeInterval }, [1, 1, 1])
            }
        }
        XCTAssertTrue(Set(sent.series[0].keys).isDisjoint(with: sent.series[1].keys), "tenants share no series")
        // The same bytes every time.
        var first: [[UInt8]] = [], second: [[UInt8]] = []
        corpus.forEachRequest(sender: 1) { first.append($0) }
        corpus.forEachRequest(sender: 1) { second.append($0) }
        XCTAssertEqual(first, second)
    }

    func testSendersShareATenantsSeriesAndNoiseShapesTheValues() throws {
        var corpus = TenantCorpus()
        (corpus.tenants, corpus.seriesPerTenant, corpus.scrapes, corpus.sendersPerTenant) = (1, 400, 6, 4)
        corpus.samplesPerRequest = 100...120
        var samplesBySender: [Int] = []
        for sender in 0..<corpus.senders {
            var count = 0
            try corpus.forEachRequest(sender: sender) { count += try RemoteWriteDecoder.decode(compressed: $0, maxDecodedBytes: 1 << 26).sampleCount }
            samplesBySender.append(count)
        }
        XCTAssertEqual(samplesBySender, [600, 600, 600, 600], "each of 4 senders owns a quarter of the series")
        XCTAssertEqual(try decode(corpus).series[0].count, 400, "and together they send each series once a scrape")

        func distinctValues(_ noise: TenantCorpus.ValueNoise) throws -> [Int] {
            corpus.noise = noise
            return try decode(corpus).series[0].values.map { Set($0.map(\.valueBits)).count }
        }
        XCTAssertTrue(try distinctValues(.constant).allSatisfy { $0 == 1 })
        XCTAssertTrue(try distinctValues(.random).allSatisfy { $0 == corpus.scrapes })
        let kubecost = try distinctValues(.kubecost)
        XCTAssertTrue(kubecost.contains(1) && kubecost.contains(corpus.scrapes), "constants and prices beside counters")
    }
}
