import Dispatch
import TallyStorage
import XCTest

// Appends to a tenant for the storage and integration tests, through the same path the server uses.

/// Appends samples of `name` through the same path the server uses, and waits until durable.
@discardableResult
public func appendSamples(_ db: TenantDatabase, _ name: String, _ samples: [(Int64, UInt64)]) throws -> [SampleVerdict] {
    let (verdicts, commit) = try appendSamplesNotWaiting(db, name, samples)
    waitDurable(db, commit)
    return verdicts
}

/// Appends samples of `name` as `appendSamples` does, without waiting for durability.
public func appendSamplesNotWaiting(_ db: TenantDatabase, _ name: String, _ samples: [(Int64, UInt64)]) throws -> ([SampleVerdict], AppendCommit) {
    let nameBytes = Array("__name__".utf8), valueBytes = Array(name.utf8)
    return try nameBytes.withUnsafeBytes { n in
        try valueBytes.withUnsafeBytes { v in
            try db.append { batch -> [SampleVerdict] in
                let handle = [RawLabel(name: n, value: v)].withUnsafeBufferPointer { try! batch.series($0) }
                return samples.map { batch.add(handle, timestamp: $0.0, valueBits: $0.1) }
            }
        }
    }
}

/// Waits (at most 10 s) until `commit` is durable, failing the test on an error.
public func waitDurable(_ db: TenantDatabase, _ commit: AppendCommit) {
    let done = DispatchSemaphore(value: 0)
    db.whenDurable(commit.position) { error in
        XCTAssertNil(error)
        done.signal()
    }
    XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
}
