import XCTest
@testable import TallyStorage

/// A block opened beside another of the same tenant holds one copy of the symbols both have: the
/// same string storage, found by a forward walk in byte order. Reuse never changes what a block
/// reads, whatever the neighbour holds.
final class SymbolSharingTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws { root = try temporaryDirectory() }
    override func tearDown() { try? FileSystem.removeTree(root) }

    /// Where a string's UTF-8 bytes live; equal addresses mean one copy. Nil for strings of 15 bytes
    /// or fewer, which Swift keeps inline, so their bytes have no lasting address.
    private func storage(_ string: String) -> UnsafeRawPointer? {
        guard string.utf8.count > 15 else { return nil }
        var string = string
        return string.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    }

    private func block(_ pods: [String], at start: Int64) throws -> String {
        var chunk = XORChunk()
        chunk.append(timestamp: start, valueBits: 1.0.bitPattern)
        let series = pods.map { pod in
            BlockSeries(labels: [("__name__", "container_memory_allocation_bytes"), ("pod", pod)],
                        chunks: [EncodedChunk(minTime: start, maxTime: start, bytes: chunk.bytes)])
        }
        let meta = try BlockWriter.write(series: series, minTime: start, maxTime: start + 7_200_000, into: root, tenant: "t")
        return root + "/" + meta.ulid
    }

    func testABlockOpenedBesideAnotherSharesTheSymbolsBothHoldAndReadsTheSame() throws {
        // Long values (over 15 bytes, so each String has storage of its own), some in one block only.
        let pods = (0..<200).map { "deployment-\($0 * 7)-7d9f8b6c5-x\($0)" }
        let first = try block(Array(pods[0..<150]), at: 1_700_006_400_000)
        let second = try block(Array(pods[50..<200]) + ["zz-only-in-the-second-block-\(UUID())"], at: 1_700_013_600_000)

        let alone = try BlockReader(directory: second)
        let neighbour = try BlockReader(directory: first)
        let beside = try BlockReader(directory: second, sharingSymbolsWith: neighbour)

        XCTAssertEqual(beside.symbols, alone.symbols)
        XCTAssertEqual(beside.symbolHashes, alone.symbolHashes)
        XCTAssertEqual(beside.postingsOffsets.mapValues { $0.map(\.value) }, alone.postingsOffsets.mapValues { $0.map(\.value) })
        XCTAssertEqual(beside.postingsOffsets.mapValues { $0.map(\.offset) }, alone.postingsOffsets.mapValues { $0.map(\.offset) })
        for ref in beside.seriesRefs {
            let (a, b) = (try beside.series(ref), try alone.series(ref))
            XCTAssertEqual(a.labels.map { [$0.0, $0.1] }, b.labels.map { [$0.0, $0.1] })
            XCTAssertEqual(a.chunks, b.chunks)
        }

        let neighbourStorage = Set(neighbour.symbols.compactMap(storage))
        let shared = beside.symbols.filter { storage($0).map(neighbourStorage.contains) ?? false }
        XCTAssertEqual(Set(shared), Set(pods[50..<150]).union(["container_memory_allocation_bytes"]), "exactly the long symbols both hold")
        XCTAssertTrue(alone.symbols.allSatisfy { storage($0).map { !neighbourStorage.contains($0) } ?? true }, "opened alone, nothing shared")
        // The postings offset table takes its values from the block's own symbols.
        let ownStorage = Set(beside.symbols.compactMap(storage))
        XCTAssertTrue((beside.postingsOffsets["pod"] ?? []).allSatisfy { storage($0.value).map(ownStorage.contains) ?? false })
    }

    func testTheWalkFindsOnlyEqualBytesWhateverOrderTheHeldStringsAreIn() {
        func find(_ held: [String], _ wanted: [String]) -> [String?] {
            var sharing = SymbolSharing(held, hashes: held.map { _ in 0 })
            return wanted.map { word in Array(word.utf8).withUnsafeBytes { sharing.match($0)?.string } }
        }
        XCTAssertEqual(find(["", "a", "ab", "b", "é"], ["", "ab", "b", "c", "é"]), ["", "ab", "b", nil, "é"])
        XCTAssertEqual(find(["a", "b"], ["a", "aa", "b"]), ["a", nil, "b"], "a prefix sorts first")
        // Unsorted (a corrupt neighbour): less is found, never a wrong string.
        let found = find(["c", "a", "b"], ["a", "b", "c"])
        XCTAssertTrue(zip(found, ["a", "b", "c"]).allSatisfy { $0 == nil || $0 == $1 }, "\(found)")
        XCTAssertEqual(find([], ["a"]), [nil])
    }
}
