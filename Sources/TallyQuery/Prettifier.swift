/// The text `/api/v1/format_query` answers, laid out as Prometheus 2.42's `Prettify`
/// (`promql/parser/prettier.go`) lays it out: a node whose one-line text is longer than 100 bytes is
/// split, each operand on lines of its own indented two spaces a level deeper; a node that fits keeps
/// its one-line text (`description`). Prometheus' quirks are kept, since clients compare the text:
/// a split binary expression puts its operator on a line of its own at the parent's indent, a
/// subquery that fits is not indented, and a unary operator sits directly before its operand's text.
extension Expr {
    public var prettified: String { pretty(level: 0) }

    static let maxCharactersPerLine = 100

    private var needsSplit: Bool { description.utf8.count > Self.maxCharactersPerLine }

    private func pretty(level: Int) -> String {
        let indent = String(repeating: "  ", count: level)
        switch self {
        case .number, .string, .vectorSelector, .matrixSelector:
            return indent + description
        case .aggregate(let aggregate):
            guard needsSplit else { return indent + description }
            let parameter = aggregate.parameter.map { $0.pretty(level: level + 1) + ",\n" } ?? ""
            return indent + aggregate.operatorText + "(\n" + parameter + aggregate.expr.pretty(level: level + 1) + "\n" + indent + ")"
        case .binary(let binary):
            guard needsSplit else { return indent + description }
            return binary.lhs.pretty(level: level + 1) + "\n" + indent + binary.operatorText + "\n" + binary.rhs.pretty(level: level + 1)
        case .call(let call):
            guard needsSplit else { return indent + description }
            let arguments = call.args.map { $0.pretty(level: level + 1) }.joined(separator: ",\n")
            return indent + call.function.name + "(\n" + arguments + "\n" + indent + ")"
        case .paren(let paren):
            guard needsSplit else { return indent + description }
            return indent + "(\n" + paren.expr.pretty(level: level + 1) + "\n" + indent + ")"
        case .subquery(let subquery):
            guard needsSplit else { return description }
            return subquery.expr.pretty(level: level) + subquery.suffixText
        case .unary(let unary):
            return indent + unary.op.rawValue + Self.trimmingGoSpace(unary.expr.pretty(level: level))
        }
    }

    /// `strings.TrimSpace`: the operand's own indent (and any space at its end) goes.
    private static func trimmingGoSpace(_ text: String) -> Substring {
        let isSpace: (Character) -> Bool = { $0.unicodeScalars.allSatisfy(\.properties.isWhitespace) }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else { return "" }
        return text[first...last]
    }
}
