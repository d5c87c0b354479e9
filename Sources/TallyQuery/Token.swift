/// One lexical item of a PromQL query, with the kinds Prometheus 2.42's lexer emits.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case eof
        case identifier, metricIdentifier, number, string, duration
        case leftParen, rightParen, leftBrace, rightBrace, leftBracket, rightBracket
        case comma, equal, colon
        case binary(BinaryOp)
        /// `=~` and `!~`, which only appear inside braces.
        case equalRegex, notEqualRegex
        case at
        case aggregator(AggregateOp)
        case keyword(Keyword)
        /// `start` and `end`, the `@` preprocessors.
        case atPreprocessor(AtModifier)
    }

    enum Keyword: String, Sendable {
        case bool, by, groupLeft = "group_left", groupRight = "group_right", ignoring, offset, on, without
    }

    let kind: Kind
    /// Byte offsets of the item in the query.
    let start: Int
    let end: Int
    /// The item's bytes, as written.
    let text: String

    var range: PositionRange { PositionRange(start: start, end: end) }

    /// How a parse error names this item ("unexpected <op:*>", "unexpected identifier \"foo\""):
    /// Prometheus' `Item.desc()`.
    var errorDescription: String {
        switch kind {
        case .eof: return "end of input"
        case .identifier: return "identifier " + GoQuoting.quote(text)
        case .metricIdentifier: return "metric identifier " + GoQuoting.quote(text)
        case .number: return "number " + shortened
        case .string: return "string " + shortened
        case .duration: return "duration " + shortened
        case .binary, .equalRegex, .notEqualRegex: return "<op:\(text)>"
        // Prometheus has no display name for `@` and prints its internal token number.
        case .at: return "\"<Item 57385>\" <op:\(text)>"
        case .aggregator: return "<aggr:\(text)>"
        case .keyword: return "<\(text)>"
        case .leftParen, .rightParen, .leftBrace, .rightBrace, .leftBracket, .rightBracket,
             .comma, .equal, .colon, .atPreprocessor:
            return GoQuoting.quote(text)
        }
    }

    /// Items longer than 10 bytes are shown by their first 10 characters.
    private var shortened: String {
        text.utf8.count > 10 ? GoQuoting.quote(text, runes: 10) + "..." : GoQuoting.quote(text)
    }

    /// Words the lexer turns into something other than an identifier, by their lowercase spelling.
    static let words: [String: Kind] = {
        var words: [String: Kind] = [
            "and": .binary(.and), "or": .binary(.or), "unless": .binary(.unless), "atan2": .binary(.atan2),
            "start": .atPreprocessor(.start), "end": .atPreprocessor(.end),
            "inf": .number, "nan": .number,
        ]
        for op in AggregateOp.allCases { words[op.rawValue] = .aggregator(op) }
        for keyword in [Keyword.bool, .by, .groupLeft, .groupRight, .ignoring, .offset, .on, .without] {
            words[keyword.rawValue] = .keyword(keyword)
        }
        return words
    }()
}
