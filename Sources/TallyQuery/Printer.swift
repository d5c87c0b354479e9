import Foundation

/// The canonical text of an expression, as Prometheus 2.42 prints it (`String()` in
/// `promql/parser/printer.go`): the form `/api/v1/rules` and `format_query` show. Parsing the text
/// again gives the same text.
extension Expr: CustomStringConvertible {
    public var description: String {
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
            return "\(subquery.expr)" + subquery.suffixText
        case .aggregate(let aggregate):
            let parameter = aggregate.parameter.map { "\($0), " } ?? ""
            return aggregate.operatorText + "(\(parameter)\(aggregate.expr))"
        case .binary(let binary):
            return "\(binary.lhs) \(binary.operatorText) \(binary.rhs)"
        case .call(let call):
            return "\(call.function.name)(\(call.args.map(\.description).joined(separator: ", ")))"
        case .paren(let paren):
            return "(\(paren.expr))"
        case .unary(let unary):
            return unary.op.rawValue + unary.expr.description
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
