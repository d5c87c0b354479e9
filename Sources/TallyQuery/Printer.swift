import Foundation

/// The canonical text of an expression, as Prometheus 2.42 prints it (`String()` in
/// `promql/parser/printer.go`): the form `/api/v1/rules` and `format_query` show. Parsing the text
/// again gives the same text.
extension Expr: CustomStringConvertible {
    public var description: String { oneLine(children: operands.map(\.description)) }

    /// The node's operands, in the order they are printed.
    var operands: [Expr] {
        switch self {
        case .number, .string, .vectorSelector, .matrixSelector: []
        case .subquery(let subquery): [subquery.expr]
        case .aggregate(let aggregate): (aggregate.parameter.map { [$0] } ?? []) + [aggregate.expr]
        case .binary(let binary): [binary.lhs, binary.rhs]
        case .call(let call): call.args
        case .paren(let paren): [paren.expr]
        case .unary(let unary): [unary.expr]
        }
    }

    /// This node's one-line text, given its `operands`' one-line texts in order: a printer that is
    /// handed each text once, so that a caller laying the tree out (`prettified`) prints every node
    /// once, not once per ancestor.
    func oneLine(children lines: [String]) -> String {
        switch self {
        case .number(let literal):
            return GoNumbers.format(literal.value)
        case .string(let literal):
            return GoQuoting.quote(literal.value)
        case .vectorSelector(let selector):
            return Self.selectorText(selector) + Self.modifiersText(offset: selector.offset, at: selector.at)
        case .matrixSelector(let matrix):
            return Self.selectorText(matrix.selector) + "[\(PromQLDuration.format(milliseconds: matrix.range))]"
                + Self.modifiersText(offset: matrix.selector.offset, at: matrix.selector.at)
        case .subquery(let subquery):
            return lines[0] + subquery.suffixText
        case .aggregate(let aggregate):
            return aggregate.operatorText + "(" + lines.joined(separator: ", ") + ")"
        case .binary(let binary):
            return lines[0] + " " + binary.operatorText + " " + lines[1]
        case .call(let call):
            return call.function.name + "(" + lines.joined(separator: ", ") + ")"
        case .paren:
            return "(" + lines[0] + ")"
        case .unary(let unary):
            return unary.op.rawValue + lines[0]
        }
    }

    /// `name{a="b",c=~"d"}`: matchers sorted by their text, the name's own matcher left out.
    private static func selectorText(_ selector: VectorSelector) -> String {
        let matchers = selector.matchers
            .filter { !($0.name == LabelMatcher.metricNameLabel && $0.kind == .equal && $0.value == selector.name) }
            .map(\.description)
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let name = selector.name ?? ""
        return matchers.isEmpty ? name : "\(name){\(matchers.joined(separator: ","))}"
    }

    /// ` @ 10.000 offset 5m`: `@` first, then `offset`, whichever order they were written in.
    fileprivate static func modifiersText(offset: Int64, at: AtModifier?) -> String {
        var text = ""
        switch at {
        case .timestamp(let milliseconds): text += String(format: " @ %.3f", Double(milliseconds) / 1000)
        case .start: text += " @ start()"
        case .end: text += " @ end()"
        case nil: break
        }
        if offset > 0 {
            text += " offset " + PromQLDuration.format(milliseconds: offset)
        } else if offset < 0 {
            text += " offset -" + PromQLDuration.format(milliseconds: -offset)
        }
        return text
    }

    fileprivate static func matchingText(_ matching: VectorMatching?) -> String {
        guard let matching, matching.on || !matching.matchingLabels.isEmpty else { return "" }
        var text = " \(matching.on ? "on" : "ignoring") (\(matching.matchingLabels.joined(separator: ", ")))"
        switch matching.cardinality {
        case .manyToOne: text += " group_left (\(matching.include.joined(separator: ", ")))"
        case .oneToMany: text += " group_right (\(matching.include.joined(separator: ", ")))"
        case .oneToOne, .manyToMany: break
        }
        return text
    }
}

extension SubqueryExpr {
    /// `[30m:1m] @ 10.000 offset 5m`: what follows the inner expression.
    var suffixText: String {
        let step = step == 0 ? "" : PromQLDuration.format(milliseconds: step)
        return "[\(PromQLDuration.format(milliseconds: range)):\(step)]" + Expr.modifiersText(offset: offset, at: at)
    }
}

extension AggregateExpr {
    /// `sum by (job) `: the operator and its grouping, up to the opening parenthesis.
    var operatorText: String {
        if without { return op.rawValue + " without (\(grouping.joined(separator: ", "))) " }
        if !grouping.isEmpty { return op.rawValue + " by (\(grouping.joined(separator: ", "))) " }
        return op.rawValue
    }
}

extension BinaryExpr {
    /// `/ bool on (job) group_left (node)`: the operator with its modifiers.
    var operatorText: String { op.rawValue + (returnBool ? " bool" : "") + Expr.matchingText(matching) }
}

extension LabelMatcher: CustomStringConvertible {
    /// `name="value"`, the value quoted as Go quotes it.
    public var description: String { name + kind.rawValue + GoQuoting.quote(value) }
}
