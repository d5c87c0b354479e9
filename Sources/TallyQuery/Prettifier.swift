/// The text `/api/v1/format_query` answers, laid out as Prometheus 2.42's `Prettify`
/// (`promql/parser/prettier.go`) lays it out: a node whose one-line text is longer than 100 bytes is
/// split, each operand on lines of its own indented two spaces a level deeper; a node that fits keeps
/// its one-line text (`description`). Prometheus' quirks are kept, since clients compare the text:
/// a split binary expression puts its operator on a line of its own at the parent's indent, a
/// subquery that fits is not indented, and a unary operator sits directly before its operand's text.
///
/// Each node's one-line text is built once, from its operands' (Prometheus prints a node's whole
/// subtree again at every level to measure it, which grows with the square of the depth).
extension Expr {
    public var prettified: String { layout(level: 0).text }

    static let maxCharactersPerLine = 100

    /// This node's one-line text and its text laid out at `level`.
    private func layout(level: Int) -> (line: String, text: String) {
        let indent = String(repeating: "  ", count: level)
        let operandLevel: Int
        switch self {
        case .subquery, .unary: operandLevel = level
        default: operandLevel = level + 1
        }
        let operands = self.operands.map { $0.layout(level: operandLevel) }
        let line = oneLine(children: operands.map(\.line))
        if case .unary(let unary) = self { return (line, indent + unary.op.rawValue + Self.trimmingGoSpace(operands[0].text)) }
        guard line.utf8.count > Self.maxCharactersPerLine else {
            if case .subquery = self { return (line, line) }
            return (line, indent + line)
        }
        let texts = operands.map(\.text)
        switch self {
        case .number, .string, .vectorSelector, .matrixSelector, .unary:
            return (line, indent + line)
        case .aggregate(let aggregate):
            return (line, indent + aggregate.operatorText + "(\n" + texts.joined(separator: ",\n") + "\n" + indent + ")")
        case .binary(let binary):
            return (line, texts[0] + "\n" + indent + binary.operatorText + "\n" + texts[1])
        case .call(let call):
            return (line, indent + call.function.name + "(\n" + texts.joined(separator: ",\n") + "\n" + indent + ")")
        case .paren:
            return (line, indent + "(\n" + texts[0] + "\n" + indent + ")")
        case .subquery(let subquery):
            return (line, texts[0] + subquery.suffixText)
        }
    }

    /// `strings.TrimSpace`: the operand's own indent (and any space at its end) goes.
    private static func trimmingGoSpace(_ text: String) -> Substring {
        let isSpace: (Character) -> Bool = { $0.unicodeScalars.allSatisfy(\.properties.isWhitespace) }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else { return "" }
        return text[first...last]
    }
}
