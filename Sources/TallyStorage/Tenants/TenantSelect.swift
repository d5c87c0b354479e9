/// Reads of head and blocks together under the tenant lock: `select` (every reader's path, as
/// `SeriesQuerier`) and `seriesSpans` (`tally analyze`); and of the head alone, `headCardinality`
/// (`/api/v1/status/tsdb`).
extension TenantDatabase {
    /// The head's size and its `limit` largest cardinality counts of each kind.
    public func headCardinality(limit: Int = 10) -> HeadCardinality {
        lock.withLock { _ in head.cardinality(limit: limit) }
    }

    /// Every series with its sample count and time span, from the blocks' indexes and the head's
    /// chunk headers (no sample is decoded): what `tally analyze` needs. A sample held in two
    /// overlapping blocks counts twice until they are compacted.
    public func seriesSpans() throws -> [SeriesSpan] {
        var spans: [Labels: SeriesSpan] = [:]
        func add(_ labels: Labels, _ minTime: Int64, _ maxTime: Int64, _ samples: Int) {
            var span = spans[labels] ?? SeriesSpan(labels: labels, samples: 0, minTime: .max, maxTime: .min)
            span.samples += samples
            span.minTime = min(span.minTime, minTime)
            span.maxTime = max(span.maxTime, maxTime)
            spans[labels] = span
        }
        let (fromHead, blocks) = lock.withLock { _ in
            var fromHead: [(Labels, Int64, Int64, Int)] = []
            for index in 0..<Int32(head.seriesCount) {
                var samples = 0, lo = Int64.max, hi = Int64.min
                head.forEachChunk(index, includingOutOfOrder: true) { minTime, maxTime, bytes in
                    samples += XORChunk.sampleCount(bytes)
                    lo = min(lo, minTime)
                    hi = max(hi, maxTime)
                }
                head.forEachHistogramChunk(index) { minTime, maxTime, _, bytes in
                    samples += XORChunk.sampleCount(bytes)
                    lo = min(lo, minTime)
                    hi = max(hi, maxTime)
                }
                for sample in head.outOfOrderBuffer(index) {
                    samples += 1
                    lo = min(lo, sample.timestamp)
                    hi = max(hi, sample.timestamp)
                }
                if samples > 0 { fromHead.append((head.labels(index), lo, hi, samples)) }
            }
            return (fromHead, self.blocks)
        }
        for block in blocks {
            for ref in block.seriesRefs {
                let (pairs, chunks) = try block.series(ref)
                let labels = Labels(pairs.map { Label($0.0, $0.1) })
                for chunk in chunks {
                    // Float and histogram chunks alike start with their sample count.
                    let bytes = try block.chunk(chunk.ref).bytes
                    add(labels, chunk.minTime, chunk.maxTime, XORChunk.sampleCount(bytes))
                }
            }
        }
        for (labels, lo, hi, samples) in fromHead { add(labels, lo, hi, samples) }
        return spans.values.sorted { $0.labels < $1.labels }
    }

    /// Series matching `matchers` with their samples in [minTime, maxTime] from blocks and head,
    /// merged by timestamp (a timestamp held twice is returned once), sorted by labels.
    public func select(_ matchers: [LabelMatcher], minTime: Int64 = .min, maxTime: Int64 = .max) throws -> [SeriesSamples] {
        try querier(minTime: minTime, maxTime: maxTime).select(matchers, minTime: minTime, maxTime: maxTime).compactMap { series in
            var samples: [Sample] = []
            var iterator = series.makeIterator()
            while iterator.advance() { samples.append(Sample(timestamp: iterator.timestamp, valueBits: iterator.valueBits)) }
            return samples.isEmpty ? nil : SeriesSamples(labels: series.labels, samples: samples)
        }
    }

    /// As `select`; with `skipUnreadable`, a block's series entry or chunk that cannot be read is
    /// handed to it and left out, and everything else is returned: what `tally dump` prints.
    public func select(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64,
                       skipUnreadable: ((BlockError) -> Void)?) throws -> [SeriesSamples] {
        let (fromHead, blocks) = lock.withLock { _ in (selectHead(matchers, minTime: minTime, maxTime: maxTime), self.blocks) }
        var sources = try blocks.map { try $0.select(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable: skipUnreadable) }
        sources.append(fromHead)
        return SeriesMerger.merge(sources)
    }

    /// Series matching `matchers` with their native histograms in [minTime, maxTime] from blocks
    /// and head, merged as `select` merges samples; `skipUnreadable` as there.
    public func selectHistograms(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64,
                                 skipUnreadable: ((BlockError) -> Void)?) throws -> [SeriesHistograms] {
        let (fromHead, blocks) = lock.withLock { _ in
            let fromHead = head.select(matchers).compactMap { index -> SeriesHistograms? in
                var histograms: [HistogramSample] = []
                head.forEachHistogramChunk(index) { chunkMin, chunkMax, encoding, bytes in
                    guard chunkMax >= minTime, chunkMin <= maxTime else { return }
                    _ = HistogramValue.forEach(inChunk: bytes, encoding: encoding) { t, h in
                        if t >= minTime && t <= maxTime { histograms.append(HistogramSample(timestamp: t, histogram: h)) }
                        return t <= maxTime
                    }
                }
                return histograms.isEmpty ? nil : SeriesHistograms(labels: head.labels(index), histograms: histograms)
            }
            return (fromHead, self.blocks)
        }
        var sources = try blocks.map { try $0.selectHistograms(matchers, minTime: minTime, maxTime: maxTime, skipUnreadable: skipUnreadable) }
        sources.append(fromHead)
        return SeriesMerger.merge(sources)
    }

    private func selectHead(_ matchers: [LabelMatcher], minTime: Int64, maxTime: Int64) -> [SeriesSamples] {
        head.select(matchers).compactMap { index -> SeriesSamples? in
            var samples: [Sample] = []
            head.forEachChunk(index, includingOutOfOrder: true) { chunkMin, chunkMax, bytes in
                guard chunkMax >= minTime, chunkMin <= maxTime else { return }
                var it = XORIterator(bytes)
                while let (t, v) = it.next(), t <= maxTime {
                    if t >= minTime { samples.append(Sample(timestamp: t, valueBits: v)) }
                }
            }
            if head.hasOutOfOrder(index) {
                samples += head.outOfOrderBuffer(index).filter { $0.timestamp >= minTime && $0.timestamp <= maxTime }
                samples = SeriesMerger.sortedUnique(samples)
            }
            return samples.isEmpty ? nil : SeriesSamples(labels: head.labels(index), samples: samples)
        }
    }
}
