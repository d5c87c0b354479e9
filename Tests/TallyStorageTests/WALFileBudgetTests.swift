import TallyTestSupport
import Dispatch
import Synchronization
import XCTest
@testable import TallyStorage

/// More tenants than the budget lets keep a WAL segment open: descriptors stay bounded, every write
/// stays durable and in order, and a reopened registry holds no descriptor per tenant.
final class WALFileBudgetTests: XCTestCase {
    private var root = ""
    private let tenants = (0..<10).map { "t\($0)" }

    override func setUpWithError() throws {
        root = try temporaryDirectory()
        // Dispatch sets up its own descriptors on first use: before the baseline is taken.
        let warmUp = try TenantDatabase.open(directory: root + "-warm-up", tenant: "w")
        try appendSamples(warmUp, "m", [(1, 1)])
        try warmUp.close()
    }

    override func tearDown() {
        try? FileSystem.removeTree(root)
        try? FileSystem.removeTree(root + "-warm-up")
    }

    /// Descriptors this process holds now (the listing's own included, in every count alike).
    private func openDescriptors() throws -> Int { try FileSystem.listDirectory("/proc/self/fd").count }

    private func contents(_ registry: TenantRegistry, _ tenant: String) throws -> [Sample] {
        try registry.database(for: tenant).select([try LabelMatcher("__name__", .equal, "m")]).first?.samples ?? []
    }

    func testTenantsPastTheBudgetCloseTheirSegmentsAndEveryWriteStaysDurable() throws {
        let closedForBudget = Atomic<Int>(0)
        let budget = WALFileBudget(limit: 2, closedForBudget: { closedForBudget.add(1, ordering: .relaxed) })
        let options = StorageOptions(walFileBudget: budget)
        var registry = try TenantRegistry(root: root, options: options)
        let baseline = try openDescriptors()
        let rounds = 5
        var commits: [(TenantDatabase, AppendCommit)] = []
        var mostAboveBaseline = 0
        for round in 0..<rounds {
            for tenant in tenants {
                let db = try registry.database(for: tenant)
                let (verdicts, commit) = try appendSamplesNotWaiting(db, "m", [(Int64(round) * 1000, UInt64(round))])
                XCTAssertEqual(verdicts, [.accepted])
                commits.append((db, commit))
                mostAboveBaseline = max(mostAboveBaseline, try openDescriptors() - baseline)
                XCTAssertLessThanOrEqual(budget.openFiles, 2)
            }
        }
        print("WAL file budget 2, \(tenants.count) tenants round-robin: at most \(mostAboveBaseline) descriptors above the baseline of \(baseline)")
        XCTAssertLessThanOrEqual(mostAboveBaseline, 2)
        XCTAssertEqual(closedForBudget.load(ordering: .relaxed), rounds * tenants.count - 2, "every append but the last two closed a segment")
        // Waited for only now: most of these segments were closed (and synced) before the waiter came.
        for (db, commit) in commits { waitDurable(db, commit) }

        // Each reopening started a new segment; every segment closed for the budget is whole pages.
        for tenant in tenants.dropLast(2) {
            let wal = root + "/" + tenant + "/wal"
            XCTAssertEqual(try WALFormat.segments(in: wal), Array(0..<rounds))
            for segment in 0..<rounds {
                XCTAssertEqual(FileSystem.fileSize(wal + "/" + WALFormat.segmentName(segment)), WALFormat.pageSize)
            }
        }
        XCTAssertEqual(registry.closeAll(), [])
        XCTAssertEqual(budget.openFiles, 0)
        XCTAssertEqual(try openDescriptors(), baseline, "closing every tenant leaves no descriptor behind")

        // A restart replays every tenant without keeping a descriptor for it.
        registry = try TenantRegistry(root: root, options: options)
        try registry.openExisting { XCTAssertEqual($0.replay.problems, []) }
        XCTAssertEqual(registry.all.count, tenants.count)
        XCTAssertEqual(try openDescriptors(), baseline, "opening tenants holds no descriptor")
        for tenant in tenants {
            XCTAssertEqual(try contents(registry, tenant), (0..<rounds).map { Sample(timestamp: Int64($0) * 1000, valueBits: UInt64($0)) }, tenant)
        }
        XCTAssertEqual(registry.closeAll(), [])
    }

    func testConcurrentWritersPastTheBudgetAreAllDurable() throws {
        let budget = WALFileBudget(limit: 2)
        let registry = try TenantRegistry(root: root, options: StorageOptions(walFileBudget: budget))
        let writers = 4, appendsPerWriter = 50
        let mostOpen = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let tenants = self.tenants
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            do {
                for i in 0..<appendsPerWriter {
                    // Writers share tenants; timestamps are unique, so a sample arriving after a newer
                    // one is accepted late, never a duplicate.
                    let tenant = tenants[(writer + i * writers) % tenants.count]
                    let db = try registry.database(for: tenant)
                    let (verdicts, commit) = try appendSamplesNotWaiting(db, "m", [(Int64(i * writers + writer), UInt64(writer))])
                    if verdicts != [.accepted] { failures.withLock { $0.append("\(tenant) at \(i): \(verdicts)") } }
                    mostOpen.max(budget.openFiles, ordering: .relaxed)
                    waitDurable(db, commit)
                }
            } catch {
                failures.withLock { $0.append("writer \(writer): \(error)") }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertLessThanOrEqual(mostOpen.load(ordering: .relaxed), 2 + writers, "over the budget by at most the appends in flight")
        XCTAssertEqual(registry.closeAll(), [])
        let stored = try tenants.reduce(0) { $0 + (try TenantDatabase.open(directory: root + "/" + $1, tenant: $1, readOnly: true)
            .select([try LabelMatcher("__name__", .equal, "m")]).first?.samples.count ?? 0) }
        XCTAssertEqual(stored, writers * appendsPerWriter)
    }

    /// A segment the budget cannot finish (its padding fails) poisons its tenant, as a failed sync
    /// does, and is never emptied: the acknowledged sample in it is replayed.
    func testASegmentThatFailsToFinishIsKeptAndItsTenantRefusesWrites() throws {
        let reports = Mutex<[String]>([])
        let options = StorageOptions(walFileBudget: WALFileBudget(limit: 1), report: { event in reports.withLock { $0.append(event.description) } })
        let registry = try TenantRegistry(root: root, options: options)
        let a = try registry.database(for: "a")
        try appendSamples(a, "m", [(1, 1)])
        let segment = root + "/a/wal/" + WALFormat.segmentName(0)
        let written = try FileSystem.readFile(segment)
        let size = written.count
        // No file may grow past a few hundred bytes: b's record fits, padding a's segment to a page fails with EFBIG.
        signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &old)
        var limit = rlimit(rlim_cur: rlim_t(size + 200), rlim_max: old.rlim_max)
        setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit)
        try appendSamples(registry.database(for: "b"), "m", [(1, 1)])
        setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &old)

        XCTAssertTrue(reports.withLock { $0 }.contains { $0.hasPrefix("closing a WAL segment for the descriptor budget failed") && $0.contains("tenant=a") }, "\(reports.withLock { $0 })")
        XCTAssertThrowsError(try appendSamplesNotWaiting(a, "m", [(2, 2)]), "a poisoned tenant refuses writes until restart")
        let kept = try FileSystem.readFile(segment)
        XCTAssertEqual(Array(kept.prefix(size)), written, "the segment keeps its records")
        XCTAssertTrue(kept.dropFirst(size).allSatisfy { $0 == 0 }, "followed by what of the padding was written")
        XCTAssertEqual(registry.closeAll(), [])
        let replayed = try TenantDatabase.open(directory: root + "/a", tenant: "a", readOnly: true)
        XCTAssertEqual(replayed.replay.problems, [])
        XCTAssertEqual(try replayed.select([try LabelMatcher("__name__", .equal, "m")]).first?.samples, [Sample(timestamp: 1, valueBits: 1)])
    }
}
