@testable import TallyStorage
import TallyTestSupport
import XCTest

/// `IndexMap` against a `Dictionary` as the model, through seeded random operations, and its edge
/// cases: tag collisions, probing that wraps around the table, growth. It has no removal: the head
/// rebuilds its maps instead (its doc comment), so there is none to test.
final class IndexMapTests: XCTestCase {
    /// Every key of the model reads its value, and keys never set read nil.
    private func assertMatches(_ map: IndexMap, _ model: [UInt64: Int32], absent: [UInt64], _ context: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(map.count, model.count, context, file: file, line: line)
        let wrong = model.filter { map[$0.key] != $0.value }
        XCTAssertTrue(wrong.isEmpty, "\(context): \(wrong.count) keys read wrong, e.g. \(wrong.first.map { "\($0.key) -> \(map[$0.key].map(String.init) ?? "nil")" } ?? "")",
                      file: file, line: line)
        XCTAssertEqual(absent.filter { model[$0] == nil && map[$0] != nil }, [], "\(context): keys never set", file: file, line: line)
    }

    /// Refs as the head hands them out, and as a hostile or corrupt WAL could: dense, sparse, spread
    /// over the 32 bits of the tag. `set` adds or replaces; `add` adds a key not yet in the map.
    func testSequentialKeysAgainstADictionary() {
        var random = SeededGenerator(test: "IndexMapTests.sequential", fixedSeed: 2026)
        let pools: [(String, [UInt64])] = [
            ("dense refs", (0..<3000).map { UInt64($0) }),
            ("refs with gaps", (0..<3000).map { UInt64($0) * 7 + 1 }),
            ("refs on one slot of every table size up to 2^16", (0..<500).map { UInt64($0) << 16 }),
            ("the whole tag range", (0..<3000).map { _ in UInt64.random(in: 0...UInt64(UInt32.max), using: &random) }),
        ]
        for (name, pool) in pools {
            for capacity in [0, 100, 5000] {
                var map = IndexMap(.sequential, capacity: capacity)
                var model: [UInt64: Int32] = [:]
                for step in 0..<6000 {
                    let key = pool.randomElement(using: &random)!
                    let value = Int32.random(in: 0...Int32.max, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0 where model[key] == nil:
                        map.add(key, value)
                        model[key] = value
                    case 1:
                        map.set(key, value)
                        model[key] = value
                    default:
                        XCTAssertEqual(map[key], model[key], "\(name), capacity \(capacity), step \(step): key \(key)")
                    }
                }
                assertMatches(map, model, absent: pool, "\(name), capacity \(capacity)")
            }
        }
    }

    /// Label hashes: the map keeps a 32-bit tag of a scrambled key, and the caller tells keys with the
    /// same tag apart by what their values stand for, as the head compares labels along a chain.
    func testHashedKeysAgainstADictionary() {
        var random = SeededGenerator(test: "IndexMapTests.hashed", fixedSeed: 14)
        var map = IndexMap(.hashed)
        var keys: [UInt64] = []
        var model: [UInt64: Int32] = [:]
        func lookup(_ key: UInt64) -> Int32? { map.first(key) { keys[Int($0)] == key } }
        for _ in 0..<20_000 {
            let key = Bool.random(using: &random) || keys.isEmpty ? UInt64.random(in: 0...UInt64.max, using: &random) : keys.randomElement(using: &random)!
            if let known = model[key] {
                XCTAssertEqual(lookup(key), known, "key \(key)")
            } else {
                XCTAssertNil(lookup(key), "key \(key) is new")
                map.add(key, Int32(keys.count))
                model[key] = Int32(keys.count)
                keys.append(key)
            }
        }
        XCTAssertEqual(map.count, model.count)
        XCTAssertEqual(model.filter { lookup($0.key) != $0.value }.count, 0, "keys read wrong")
        for _ in 0..<1000 {
            let key = UInt64.random(in: 0...UInt64.max, using: &random)
            if model[key] == nil { XCTAssertNil(lookup(key), "key \(key) was never added") }
        }
    }

    /// Keys that share a tag (the low 32 bits of a sequential key): `add` keeps both, the subscript
    /// reads the first in probe order, `first(_:where:)` finds the other, and `set` replaces the value
    /// under the tag, whichever key put it there (as documented).
    func testKeysSharingATag() {
        var map = IndexMap(.sequential)
        let low: UInt64 = 5, high: UInt64 = 5 | 1 << 32
        map.add(low, 10)
        map.add(high, 20)
        XCTAssertEqual(map.count, 2)
        XCTAssertEqual(map[low], 10)
        XCTAssertEqual(map[high], 10, "the subscript sees tags, not keys")
        XCTAssertEqual(map.first(high) { $0 == 20 }, 20)
        XCTAssertNil(map.first(high) { $0 == 30 })
        XCTAssertNil(map.first(6) { _ in true })
        map.set(high, 30)
        XCTAssertEqual(map.count, 2, "set replaced a value, added nothing")
        XCTAssertEqual(map.first(low) { _ in true }, 30)
        XCTAssertEqual(map.first(low) { $0 != 30 }, 20)
    }

    /// Keys on the table's last slot probe on at its first. A table of 16 slots holds 12 keys before
    /// it grows; keys 15, 31, 47, ... all start at slot 15.
    func testProbingWrapsAroundTheTable() {
        var map = IndexMap(.sequential)
        let keys = (0..<12).map { UInt64($0) * 16 + 15 }
        let before = map.heapBytes
        for (k, key) in keys.enumerated() { map.add(key, Int32(k)) }
        XCTAssertEqual(map.heapBytes, before, "12 of 16 slots: no growth yet")
        XCTAssertEqual(keys.map { map[$0] }, (0..<12).map { Int32($0) })
        XCTAssertEqual((0..<16).map { map[UInt64($0)] }, Array(repeating: nil, count: 15) + [0], "only key 15 is itself in the table")
        map.add(1000, 12)
        XCTAssertGreaterThan(map.heapBytes, before, "the 13th key grows the table")
        XCTAssertEqual((keys + [1000]).map { map[$0] }, (0...12).map { Int32($0) })
    }

    /// Growth keeps every entry, at every doubling; a capacity given up front sizes the table so
    /// that that many keys need no growth.
    func testGrowthKeepsEveryEntry() {
        for keys in [IndexMap.Keys.sequential, .hashed] {
            var map = IndexMap(keys)
            var sizes: [Int] = [map.heapBytes]
            for k in 0..<100_000 {
                map.add(UInt64(k) &* 0x1_0000_0001, Int32(k))
                if map.heapBytes != sizes.last { sizes.append(map.heapBytes) }
            }
            XCTAssertEqual(map.count, 100_000)
            XCTAssertGreaterThanOrEqual(sizes.count, 13, "\(keys): 16 slots doubled at least 12 times")
            XCTAssertEqual(sizes, sizes.sorted())
            let lost = (0..<100_000).filter { k in map.first(UInt64(k) &* 0x1_0000_0001) { $0 == Int32(k) } == nil }
            XCTAssertEqual(lost, [], "\(keys)")

            var sized = IndexMap(keys, capacity: 100_000)
            let bytes = sized.heapBytes
            for k in 0..<100_000 { sized.add(UInt64(k), Int32(k)) }
            XCTAssertEqual(sized.heapBytes, bytes, "\(keys): a capacity of 100,000 holds 100,000 keys")
            XCTAssertEqual(sized.heapBytes, map.heapBytes, "\(keys): and is the table growth reaches")
        }
    }

    func testEmptyMap() {
        let map = IndexMap(.hashed)
        XCTAssertEqual(map.count, 0)
        XCTAssertNil(map[0])
        XCTAssertNil(map[.max])
        XCTAssertNil(map.first(42) { _ in true })
    }
}
