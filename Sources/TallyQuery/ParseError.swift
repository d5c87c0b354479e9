/// A query the parser refuses: what is wrong, and where. `description` reads as Prometheus 2.42's
/// (`1:6: parse error: expected type range vector in call to function "rate", got instant vector`).
public struct PromQLParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    /// Byte offsets of the part of the query the error is about.
    public let position: PositionRange
    /// 1-based line, and 1-based byte column within it, of `position.start`.
    public let line: Int
    public let column: Int

    init(_ message: String, at position: PositionRange, in query: [UInt8]) {
        self.message = message
        self.position = position
        var line = 1
        var lastLineBreak = -1
        for (index, byte) in query.prefix(max(0, min(position.start, query.count))).enumerated() where byte == UInt8(ascii: "\n") {
            line += 1
            lastLineBreak = index
        }
        self.line = line
        self.column = position.start - lastLineBreak
    }

    public var description: String { "\(line):\(column): parse error: \(message)" }
}

/// An error message without a position yet; the parser places it.
struct PromQLParseMessage: Error, Equatable {
    let text: String

    init(_ text: String) {
        self.text = text
    }
}
