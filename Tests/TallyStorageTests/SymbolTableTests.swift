@testable import TallyStorage
import XCTest

/// `SymbolTable` tells symbols apart by their bytes alone: every length a word comparison splits
/// differently (empty, under a word, whole words, a word and a tail), each byte position changed,
/// and byte order where it matters (labels sort by bytes, as Prometheus sorts them).
final class SymbolTableTests: XCTestCase {
    func testASymbolEqualsExactlyItsOwnBytesAtEveryLengthAndPosition() {
        var table = SymbolTable()
        for count in 0...41 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: 0x61 + ($0 * 7 + count) % 26) }
            let id = bytes.withUnsafeBytes { table.intern($0) }
            bytes.withUnsafeBytes { XCTAssertTrue(table.equals(id, $0), "length \(count)") }
            XCTAssertEqual(bytes.withUnsafeBytes { table.id(of: $0) }, id, "length \(count)")
            for position in 0..<count {
                var changed = bytes
                changed[position] ^= 0x20
                changed.withUnsafeBytes { XCTAssertFalse(table.equals(id, $0), "length \(count), byte \(position) changed") }
            }
            if count > 0 {
                Array(bytes.dropLast()).withUnsafeBytes { XCTAssertFalse(table.equals(id, $0), "length \(count), one byte short") }
            }
            (bytes + [0]).withUnsafeBytes { XCTAssertFalse(table.equals(id, $0), "length \(count), one byte more") }
        }
        XCTAssertEqual(table.count, 42)
    }

    func testLabelSetsSortByTheirBytes() {
        // "é" as one scalar (C3 A9) sorts after "e" + U+0301 (65 CC 81), and after "z"; "a" before "ab".
        let sets: [[(String, String)]] = [[("a", "\u{E9}")], [("a", "e\u{301}")], [("a", "z")], [("a", "ab")], [("a", "a")], [("a", "a"), ("b", "")]]
        let sorted = sets.sorted(by: Labels.pairsPrecede).map { $0.map { Array($0.1.utf8) } }
        XCTAssertEqual(sorted, [[Array("a".utf8)], [Array("a".utf8), []], [Array("ab".utf8)], [Array("e\u{301}".utf8)], [Array("z".utf8)], [[0xC3, 0xA9]]])
        XCTAssertFalse(Labels.pairsEqual([("a", "\u{E9}")], [("a", "e\u{301}")]))
        XCTAssertTrue(Labels.pairsEqual([("a", "\u{E9}")], [("a", "\u{E9}")]))
    }
}
