/// Prometheus 2.42's type rules for a parsed query (`checkAST` in `promql/parser/parse.go`): argument
/// types and counts of functions and aggregations, which operands binary operators take, where `bool`,
/// `on`/`ignoring` and `group_left`/`group_right` may stand, and that a selector can select something.
/// Checks run depth first, left to right, and the first failure is the error, as in Prometheus.
struct TypeChecker {
    let input: [UInt8]

    /// The tree with Prometheus' adjustments: set operators match many-to-many, and a binary
    /// expression that is not between two instant vectors carries no vector matching.
    func check(_ expr: Expr) throws(PromQLParseError) -> Expr {
        switch expr {
        case .number, .string:
            return expr
        case .vectorSelector(let selector):
            try checkSelector(selector)
            return expr
        case .matrixSelector(let matrix):
            try checkSelector(matrix.selector)
            return expr
        case .subquery(var subquery):
            subquery.expr = try check(subquery.expr)
            let type = subquery.expr.type
            guard type == .vector else {
                throw error("subquery is only allowed on instant vector, got \(type.internalName) instead", at: expr.position)
            }
            return .subquery(subquery)
        case .aggregate(var aggregate):
            aggregate.expr = try expect(aggregate.expr, .vector, in: "aggregation expression")
            if let parameterType = aggregate.op.parameterType, let parameter = aggregate.parameter {
                aggregate.parameter = try expect(parameter, parameterType, in: "aggregation parameter")
            }
            return .aggregate(aggregate)
        case .binary(let binary):
            return .binary(try checkBinary(binary, at: expr.position))
        case .call(var call):
            call.args = try checkCall(call)
            return .call(call)
        case .paren(var paren):
            paren.expr = try check(paren.expr)
            return .paren(paren)
        case .unary(var unary):
            unary.expr = try check(unary.expr)
            let type = unary.expr.type
            guard type == .scalar || type == .vector else {
                throw error("unary expression only allowed on expressions of type scalar or instant vector, got \(GoQuoting.quote(type.documentedName))",
                            at: expr.position)
            }
            return .unary(unary)
        }
    }

    private func expect(_ expr: Expr, _ wanted: ValueType, in context: String) throws(PromQLParseError) -> Expr {
        let checked = try check(expr)
        let type = checked.type
        guard type == wanted else {
            throw error("expected type \(wanted.documentedName) in \(context), got \(type.documentedName)", at: expr.position)
        }
        return checked
    }

    private func checkSelector(_ selector: VectorSelector) throws(PromQLParseError) {
        if let name = selector.name {
            if let second = selector.matchers.first(where: { $0.name == LabelMatcher.metricNameLabel }) {
                throw error("metric name must not be set twice: \(GoQuoting.quote(name)) or \(GoQuoting.quote(second.value))", at: selector.position)
            }
            return
        }
        for matcher in selector.matchers {
            if try !matchesEmptyString(matcher, at: selector.position) { return }
        }
        throw error("vector selector must contain at least one non-empty matcher", at: selector.position)
    }

    private func matchesEmptyString(_ matcher: LabelMatcher, at position: PositionRange) throws(PromQLParseError) -> Bool {
        switch matcher.kind {
        case .equal: return matcher.value.isEmpty
        case .notEqual: return !matcher.value.isEmpty
        case .regexMatch, .regexNoMatch:
            switch RegexSyntax.matchesEmptyString(matcher.value) {
            case .success(let matches): return matches == (matcher.kind == .regexMatch)
            case .failure(let message): throw error(message.text, at: position)
            }
        }
    }

    private func checkCall(_ call: Call) throws(PromQLParseError) -> [Expr] {
        let function = call.function
        let declared = function.argTypes.count
        let name = GoQuoting.quote(function.name)
        if function.variadic == 0 {
            if declared != call.args.count {
                throw error("expected \(declared) argument(s) in call to \(name), got \(call.args.count)", at: call.position)
            }
        } else if declared - 1 > call.args.count {
            throw error("expected at least \(declared - 1) argument(s) in call to \(name), got \(call.args.count)", at: call.position)
        } else if function.variadic > 0, declared - 1 + function.variadic < call.args.count {
            throw error("expected at most \(declared - 1 + function.variadic) argument(s) in call to \(name), got \(call.args.count)", at: call.position)
        }
        var args = call.args
        // The last declared type stands for every optional or repeated argument.
        for index in args.indices {
            args[index] = try expect(args[index], function.argTypes[min(index, declared - 1)], in: "call to function \(name)")
        }
        return args
    }

    private func checkBinary(_ binary: BinaryExpr, at position: PositionRange) throws(PromQLParseError) -> BinaryExpr {
        var binary = binary
        binary.lhs = try check(binary.lhs)
        binary.rhs = try check(binary.rhs)
        let (lhsType, rhsType) = (binary.lhs.type, binary.rhs.type)
        let op = binary.op
        if binary.returnBool && !op.isComparison {
            throw error("bool modifier can only be used on comparison operators", at: operatorPosition(binary))
        }
        if op.isComparison && !binary.returnBool && lhsType == .scalar && rhsType == .scalar {
            throw error("comparisons between scalars must use BOOL modifier", at: operatorPosition(binary))
        }
        if var matching = binary.matching {
            if op.isSetOperator && matching.cardinality == .oneToOne { matching.cardinality = .manyToMany }
            let included = Set(matching.include)
            if matching.on, let label = matching.matchingLabels.first(where: included.contains) {
                throw error("label \(GoQuoting.quote(label)) must not occur in ON and GROUP clause at once", at: operatorPosition(binary))
            }
            binary.matching = matching
        }
        for (type, side) in [(lhsType, binary.lhs), (rhsType, binary.rhs)] where type != .scalar && type != .vector {
            throw error("binary expression must contain only scalar and instant vector types", at: side.position)
        }
        if lhsType != .vector || rhsType != .vector {
            if let matching = binary.matching, !matching.matchingLabels.isEmpty {
                throw error("vector matching only allowed between instant vectors", at: position)
            }
            binary.matching = nil
        } else if op.isSetOperator, let matching = binary.matching {
            if matching.cardinality == .oneToMany || matching.cardinality == .manyToOne {
                throw error("no grouping allowed for \(GoQuoting.quote(op.rawValue)) operation", at: position)
            }
            if matching.cardinality != .manyToMany {
                throw error("set operations must always be many-to-many", at: position)
            }
        }
        if (lhsType == .scalar || rhsType == .scalar) && op.isSetOperator {
            throw error("set operator \(GoQuoting.quote(op.rawValue)) not allowed in binary scalar expression", at: position)
        }
        return binary
    }

    /// Where Prometheus places an error about the operator: from the end of the left operand, past
    /// whitespace, to the start of the right one.
    private func operatorPosition(_ binary: BinaryExpr) -> PositionRange {
        var start = binary.lhs.position.end
        while start < input.count, Self.isSpace(input[start]) { start += 1 }
        var end = binary.rhs.position.start - 1
        while end > start, Self.isSpace(input[end]) { end -= 1 }
        return PositionRange(start: start, end: end)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    private func error(_ message: String, at position: PositionRange) -> PromQLParseError {
        PromQLParseError(message, at: position, in: input)
    }
}
