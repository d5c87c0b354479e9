import Foundation
import TallyStorage

/// When `TALLY_FUZZ_SEEDS` names a directory, writes `seeds` there (file name to bytes) and exits.
/// `make fuzz-seeds` regenerates the committed corpora this way, from the project's own writers, so
/// the seeds follow the formats as they change. Call it from `LLVMFuzzerInitialize`.
public func writeSeedsIfAsked(_ seeds: () throws -> [String: [UInt8]]) {
    guard let directory = ProcessInfo.processInfo.environment["TALLY_FUZZ_SEEDS"] else { return }
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, bytes) in try seeds() {
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
    } catch {
        fatalError("writing seeds to \(directory): \(error)")
    }
    exit(0)
}

/// A new empty directory under `$TMPDIR` for readers that take a path; `make fuzz` points `TMPDIR`
/// at a directory it removes afterwards.
public func scratchDirectory(_ purpose: String) -> String {
    var template = Array((NSTemporaryDirectory() + "/tally-fuzz-\(purpose)-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp for \(purpose): errno \(errno)") }
    return String(cString: made)
}

/// Replaces the file's contents in place: Foundation's writes go through a temporary file and
/// fsync, which made the file-based targets a hundred times slower.
public func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot open \(path): errno \(errno)") }
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { fatalError("cannot write \(path): errno \(errno)") }
}

public func readFile(_ path: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { fatalError("cannot read \(path)") }
    return [UInt8](data)
}

/// A few series as a Kubecost scrape has them, with the values XOR chunks and WAL records encode
/// differently: integers, fractions, NaN, the staleness marker, and timestamps whose deltas change
/// (each delta-of-delta width of the XOR encoding).
public let sampleSeries: [(labels: [(String, String)], samples: [(timestamp: Int64, valueBits: UInt64)])] = {
    let stale: UInt64 = 0x7ff0_0000_0000_0002
    let times: [Int64] = [0, 15_000, 30_000, 45_001, 60_000, 75_000, 140_000, 141_000, 3_000_000, 3_015_000]
    let values: [[Double]] = [
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 4],
        [0.25, 0.5, 1e-9, 1e300, -0.0, .infinity, 0.1, 0.2, 0.3, 7],
    ]
    let labels: [[(String, String)]] = [
        [("__name__", "container_cpu_usage_seconds_total"), ("namespace", "kube-system"), ("pod", "coredns-5d78c9869d-x")],
        [("__name__", "node_total_hourly_cost"), ("instance", "ip-10-0-0-1"), ("provider_id", "aws:///us-east-1a/i-0abc")],
        [("__name__", "kube_pod_labels"), ("label_app", "ünïcödé"), ("namespace", "default")],
    ]
    return labels.enumerated().map { i, labels in
        let samples = times.enumerated().map { k, t in
            (timestamp: t, valueBits: i == 2 ? (k % 3 == 2 ? stale : Double.nan.bitPattern) : values[i][k].bitPattern)
        }
        return (labels, samples)
    }
}()

/// Appends `series` to `db` in one batch, as the receiver does.
public func append(_ series: [(labels: [(String, String)], samples: [(timestamp: Int64, valueBits: UInt64)])], to db: TenantDatabase) throws {
    let text = series.map { $0.labels.map { (Array($0.0.utf8), Array($0.1.utf8)) } }
    _ = try db.append { batch in
        for (labels, s) in zip(text, series) {
            let handle = withRawLabels(labels) { try! batch.series($0) }
            for sample in s.samples { _ = batch.add(handle, timestamp: sample.timestamp, valueBits: sample.valueBits) }
        }
    }
}

/// `body` over the labels as `RawLabel`s borrowing the bytes.
private func withRawLabels<R>(_ labels: [([UInt8], [UInt8])], _ body: (UnsafeBufferPointer<RawLabel>) -> R) -> R {
    var raw: [RawLabel] = []
    func borrow(_ k: Int) -> R {
        guard k < labels.count else { return raw.withUnsafeBufferPointer(body) }
        return labels[k].0.withUnsafeBytes { name in
            labels[k].1.withUnsafeBytes { value in
                raw.append(RawLabel(name: name, value: value))
                return borrow(k + 1)
            }
        }
    }
    return borrow(0)
}
