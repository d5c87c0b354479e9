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
            let step = subquery.step == 0 ? "" : PromQLDuration.format(milliseconds: subquery.step)
            return "\(subquery.expr)[\(PromQLDuration.format(milliseconds: subquery.range)):\(step)]"
                + Self.modifiersText(offset: subquery.offset, at: subquery.at)
        case .aggregate(let aggregate):
            var text = aggregate.op.rawValue
            if aggregate.without {
                text += " without (\(aggregate.grouping.joined(separator: ", "))) "
            } else if !aggregate.grouping.isEmpty {
                text += " by (\(aggregate.grouping.joined(separator: ", "))) "
            }
            let parameter = aggregate.parameter.map { "\($0), " } ?? ""
            return text + "(\(parameter)\(aggregate.expr))"
        case .binary(let binary):
            return "\(binary.lhs) \(binary.op.rawValue)\(binary.returnBool ? " bool" : "")\(Self.matchingText(binary.matching)) \(binary.rhs)"
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
    private static func modifiersText(offset: Int64, at: AtModifier?) -> String {
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

    private static func matchingText(_ matching: VectorMatching?) -> String {
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

extension LabelMatcher: CustomStringConvertible {
    /// `name="value"`, the value quoted as Go quotes it.
    public var description: String { name + kind.rawValue + GoQuoting.quote(value) }
}
