import Foundation

/// Builds the syntax tree of a PromQL query following Prometheus 2.42's grammar
/// (`promql/parser/generated_parser.y`), and stops at the first error with the message and position
/// Prometheus gives. Type rules are the `TypeChecker`'s, run afterwards, as Prometheus runs `checkAST`
/// only on a tree that parsed.
///
/// Precedence climbing stands in for the LALR tables: `or` < `and unless` < comparisons < `+ -` <
/// `* / % atan2` < `^` (right-associative); unary `+ -` bind like `*` except against `^`; `[...]`,
/// `offset` and `@` bind tightest, to the expression just before them.
///
/// Recursion follows nesting, so nesting is bounded (`maxDepth`), as is the height of the tree
/// (a long `a + b + c ...` chain is built in a loop but checked, printed and freed recursively).
struct Parser {
    /// A subtree with its height, so depth is checked as the tree is built.
    private struct Parsed {
        var expr: Expr
        var height: Int
    }

    private let input: [UInt8]
    private var lexer: Lexer
    /// Tokens read ahead: the grammar needs two at most (an identifier before `(` is a call).
    private var lookahead: [Token] = []
    private let maxDepth: Int
    private var depth = 0
    /// Inside an aggregation's arguments, Prometheus' error recovery names "aggregation" as the
    /// context of a misplaced token that no nearer rule claims.
    private var aggregationDepth = 0

    init(_ input: [UInt8], maxDepth: Int) {
        self.input = input
        self.lexer = Lexer(input)
        self.maxDepth = maxDepth
    }

    mutating func parseQuery() throws(PromQLParseError) -> Expr {
        if try peek().kind == .eof { throw error("no expression found in input", at: PositionRange(start: 0, end: 0)) }
        let parsed = try parseExpr(minPrecedence: 1)
        let next = try peek()
        guard next.kind == .eof else { throw unexpected(next) }
        return parsed.expr
    }

    /// `ParseMetricSelector`'s grammar (what `match[]` holds): a metric name (any word that can
    /// name one, aggregation names and `offset` included), label matchers, or both, and nothing
    /// after them. The type checker does not run, as Prometheus runs none there.
    mutating func parseMetricSelector() throws(PromQLParseError) -> VectorSelector {
        let first = try peek()
        let parsed: Parsed
        switch first.kind {
        case .leftBrace: parsed = try parseVectorSelector(name: nil)
        case .identifier, .aggregator: parsed = try parseVectorSelector(name: advance())
        case let kind where Self.namesMetric(kind): parsed = try parseVectorSelector(name: advance())
        default: throw unexpected(first)
        }
        let next = try peek()
        guard next.kind == .eof, case .vectorSelector(let selector) = parsed.expr else { throw unexpected(next) }
        return selector
    }

    // MARK: expressions

    // The functions on the path of nesting (parseExpr, parseUnary, parsePrimary and what they call
    // for parentheses, calls and aggregations) keep their frames small and hand everything else to
    // helpers: a debug build gives every temporary its own stack slot.

    private mutating func parseExpr(minPrecedence: Int) throws(PromQLParseError) -> Parsed {
        depth += 1
        defer { depth -= 1 }
        if depth > maxDepth { throw tooDeep(at: try peek().range) }
        var lhs = try parseUnary()
        while let op = try binaryOperator(atLeast: minPrecedence) {
            let opToken = try advance()
            let modifiers = try parseBinaryModifiers()
            let rhs = try parseExpr(minPrecedence: op.isRightAssociative ? op.precedence : op.precedence + 1)
            lhs = try binaryNode(op, lhs, rhs, modifiers, at: opToken.range)
        }
        return lhs
    }

    private mutating func binaryOperator(atLeast minPrecedence: Int) throws(PromQLParseError) -> BinaryOp? {
        guard case .binary(let op) = try peek().kind, op.precedence >= minPrecedence else { return nil }
        return op
    }

    private func binaryNode(_ op: BinaryOp, _ lhs: Parsed, _ rhs: Parsed, _ modifiers: (VectorMatching, Bool),
                            at position: PositionRange) throws(PromQLParseError) -> Parsed {
        let binary = BinaryExpr(op: op, lhs: lhs.expr, rhs: rhs.expr, matching: modifiers.0, returnBool: modifiers.1)
        return try node(.binary(binary), children: [lhs, rhs], at: position)
    }

    private mutating func parseUnary() throws(PromQLParseError) -> Parsed {
        guard let sign = try signToken() else { return try parsePostfix(parsePrimary()) }
        let operand = try parseExpr(minPrecedence: BinaryOp.pow.precedence)
        return try signed(operand, by: sign)
    }

    /// A leading `+` or `-`, read.
    private mutating func signToken() throws(PromQLParseError) -> Token? {
        guard case .binary(let op) = try peek().kind, op == .add || op == .sub else { return nil }
        return try advance()
    }

    private func signed(_ operand: Parsed, by sign: Token) throws(PromQLParseError) -> Parsed {
        let minus = sign.kind == .binary(.sub)
        // A sign on a number literal is folded into it, as Prometheus does.
        if case .number(var literal) = operand.expr {
            if minus { literal.value = -literal.value }
            literal.position.start = sign.start
            return Parsed(expr: .number(literal), height: operand.height)
        }
        let unary = UnaryExpr(op: minus ? .minus : .plus, expr: operand.expr, start: sign.start)
        return try node(.unary(unary), children: [operand], at: sign.range)
    }

    private mutating func parsePrimary() throws(PromQLParseError) -> Parsed {
        switch try peek().kind {
        case .number, .string:
            return try parseLiteral()
        case .leftParen:
            return try parseParenthesized()
        case .leftBrace:
            return try parseVectorSelector(name: nil)
        case .identifier:
            return try peek(1).kind == .leftParen ? parseCall() : parseVectorSelector(name: advance())
        case .aggregator(let op):
            switch try peek(1).kind {
            case .leftParen, .keyword(.by), .keyword(.without): return try parseAggregation(op)
            default: return try parseVectorSelector(name: advance())
            }
        case let kind where Self.namesMetric(kind):
            return try parseVectorSelector(name: advance())
        default:
            throw unexpected(try peek())
        }
    }

    private mutating func parseLiteral() throws(PromQLParseError) -> Parsed {
        let token = try advance()
        if token.kind == .number {
            return Parsed(expr: .number(NumberLiteral(value: try number(token), position: token.range)), height: 1)
        }
        return Parsed(expr: .string(StringLiteral(value: try stringValue(token).value, position: token.range)), height: 1)
    }

    private mutating func parseParenthesized() throws(PromQLParseError) -> Parsed {
        let open = try advance()
        let inner = try parseExpr(minPrecedence: 1)
        return try closeParenthesized(inner, openedAt: open.start)
    }

    private mutating func closeParenthesized(_ inner: Parsed, openedAt start: Int) throws(PromQLParseError) -> Parsed {
        let close = try advance()
        guard close.kind == .rightParen else { throw unexpected(close) }
        let paren = ParenExpr(expr: inner.expr, position: PositionRange(start: start, end: close.end))
        return try node(.paren(paren), children: [inner], at: paren.position)
    }

    /// Words that are keywords elsewhere name a metric where an expression starts.
    private static func namesMetric(_ kind: Token.Kind) -> Bool {
        switch kind {
        case .metricIdentifier, .binary(.and), .binary(.or), .binary(.unless), .keyword(.offset), .keyword(.by),
             .keyword(.without), .atPreprocessor:
            return true
        default:
            return false
        }
    }

    private static func canStartExpression(_ kind: Token.Kind) -> Bool {
        switch kind {
        case .number, .string, .leftParen, .leftBrace, .identifier, .aggregator, .binary(.add), .binary(.sub): true
        default: namesMetric(kind)
        }
    }

    /// `[range]`, `[range:step]`, `offset` and `@` after an expression.
    private mutating func parsePostfix(_ operand: Parsed) throws(PromQLParseError) -> Parsed {
        var current = operand
        while true {
            switch try peek().kind {
            case .leftBracket: current = try parseRangeOrSubquery(current)
            case .keyword(.offset): current = try parseOffset(current)
            case .at: current = try parseAt(current)
            default: return current
            }
        }
    }

    // MARK: selectors

    /// `name`, `name{...}` or `{...}`; the name token, if any, is already read.
    private mutating func parseVectorSelector(name: Token?) throws(PromQLParseError) -> Parsed {
        var matchers: [LabelMatcher] = []
        // Without a name the braces follow, and set the position.
        var position = name?.range ?? PositionRange(start: 0, end: 0)
        if try peek().kind == .leftBrace {
            let braces: PositionRange
            (matchers, braces) = try parseLabelMatchers()
            position = PositionRange(start: name?.start ?? braces.start, end: braces.end)
        }
        let selector = VectorSelector(name: name?.text, matchers: matchers, offset: 0, at: nil, position: position)
        return Parsed(expr: .vectorSelector(selector), height: 1)
    }

    private mutating func parseLabelMatchers() throws(PromQLParseError) -> ([LabelMatcher], PositionRange) {
        let open = try advance()
        var matchers: [LabelMatcher] = []
        while true {
            let label = try advance()
            if label.kind == .rightBrace { return (matchers, PositionRange(start: open.start, end: label.end)) }
            guard label.kind == .identifier else { throw unexpected(label, context: "label matching", expected: "identifier or \"}\"") }
            let op = try advance()
            let kind: LabelMatcher.Kind
            switch op.kind {
            case .equal: kind = .equal
            case .binary(.notEqual): kind = .notEqual
            case .equalRegex: kind = .regexMatch
            case .notEqualRegex: kind = .regexNoMatch
            default: throw unexpected(op, context: "label matching", expected: "label matching operator")
            }
            let valueToken = try advance()
            guard valueToken.kind == .string else { throw unexpected(valueToken, context: "label matching", expected: "string") }
            let (value, isUTF8) = try stringValue(valueToken)
            if kind == .regexMatch || kind == .regexNoMatch, let message = RegexSyntax.refusal(of: value, isUTF8: isUTF8) {
                throw error(message.text, at: PositionRange(start: label.start, end: valueToken.end))
            }
            matchers.append(LabelMatcher(name: label.text, kind: kind, value: value))
            let separator = try advance()
            if separator.kind == .rightBrace { return (matchers, PositionRange(start: open.start, end: separator.end)) }
            guard separator.kind == .comma else { throw unexpected(separator, context: "label matching", expected: "\",\" or \"}\"") }
        }
    }

    private mutating func parseRangeOrSubquery(_ operand: Parsed) throws(PromQLParseError) -> Parsed {
        let open = try advance()
        let rangeToken = try advance()
        guard rangeToken.kind == .duration else { throw unexpected(rangeToken, context: "subquery selector", expected: "duration") }
        let range = try duration(rangeToken)
        let next = try advance()
        switch next.kind {
        case .rightBracket:
            let brackets = PositionRange(start: open.start, end: next.end)
            guard case .vectorSelector(let selector) = operand.expr else { throw error("ranges only allowed for vector selectors", at: brackets) }
            if selector.offset != 0 { throw error("no offset modifiers allowed before range", at: brackets) }
            // Only a timestamp: Prometheus lets `@ start()` and `@ end()` through here.
            if case .timestamp = selector.at { throw error("no @ modifiers allowed before range", at: brackets) }
            let matrix = MatrixSelector(selector: selector, range: range, position: PositionRange(start: selector.position.start, end: next.end))
            return try node(.matrixSelector(matrix), children: [operand], at: open.range)
        case .colon:
            var step: Int64 = 0
            var close = try advance()
            if close.kind == .duration {
                step = try duration(close)
                close = try advance()
                guard close.kind == .rightBracket else { throw unexpected(close, context: "subquery selector", expected: "\"]\"") }
            } else if close.kind != .rightBracket {
                throw unexpected(close, context: "subquery selector", expected: "duration or \"]\"")
            }
            let position = PositionRange(start: operand.expr.position.start, end: close.end)
            let subquery = SubqueryExpr(expr: operand.expr, range: range, step: step, offset: 0, at: nil, position: position)
            return try node(.subquery(subquery), children: [operand], at: open.range)
        default:
            throw unexpected(next, context: "subquery or range", expected: "\":\" or \"]\"")
        }
    }

    private mutating func parseOffset(_ operand: Parsed) throws(PromQLParseError) -> Parsed {
        try advance()
        var token = try advance()
        let negative = token.kind == .binary(.sub)
        if negative { token = try advance() }
        guard token.kind == .duration else { throw unexpected(token, context: "offset", expected: "duration") }
        let magnitude = try duration(token)
        let offset = negative ? -magnitude : magnitude
        let expr = try modifySelector(operand.expr, end: token.end,
                                      refusal: "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery") {
            (current: inout Int64, _: inout AtModifier?) throws(PromQLParseError) in
            if current != 0 { throw error("offset may not be set multiple times", at: operand.expr.position) }
            current = offset
        }
        return Parsed(expr: expr, height: operand.height)
    }

    private mutating func parseAt(_ operand: Parsed) throws(PromQLParseError) -> Parsed {
        try advance()
        let token = try advance()
        var end = token.end
        let modifier: AtModifier
        switch token.kind {
        case .number, .binary(.add), .binary(.sub):
            var numberToken = token
            if token.kind != .number {
                numberToken = try advance()
                guard numberToken.kind == .number else { throw unexpected(numberToken, context: "@", expected: "timestamp") }
                end = numberToken.end
            }
            let magnitude = try number(numberToken)
            let seconds = token.kind == .binary(.sub) ? -magnitude : magnitude
            guard seconds.isFinite, seconds < 0x1p63, seconds > -0x1p63 else {
                throw error("timestamp out of bounds for @ modifier: " + Self.goFixed(seconds), at: operand.expr.position)
            }
            // Go converts an out-of-range float to the minimum int64 on amd64; so does this.
            modifier = .timestamp(Int64(exactly: (seconds * 1000).rounded()) ?? Int64.min)
        case .atPreprocessor(let which):
            for expected in [Token.Kind.leftParen, .rightParen] {
                let next = try advance()
                guard next.kind == expected else { throw unexpected(next, context: "@", expected: "timestamp") }
                end = next.end
            }
            modifier = which
        default:
            throw unexpected(token, context: "@", expected: "timestamp")
        }
        let expr = try modifySelector(operand.expr, end: end,
                                      refusal: "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery") {
            (_: inout Int64, current: inout AtModifier?) throws(PromQLParseError) in
            if current != nil { throw error("@ <timestamp> may not be set multiple times", at: operand.expr.position) }
            current = modifier
        }
        return Parsed(expr: expr, height: operand.height)
    }

    /// Applies an `offset` or `@` to the selector or subquery it follows, and extends its position.
    private func modifySelector(_ expr: Expr, end: Int, refusal: String,
                                _ change: (inout Int64, inout AtModifier?) throws(PromQLParseError) -> Void) throws(PromQLParseError) -> Expr {
        switch expr {
        case .vectorSelector(var selector):
            try change(&selector.offset, &selector.at)
            selector.position.end = end
            return .vectorSelector(selector)
        case .matrixSelector(var matrix):
            try change(&matrix.selector.offset, &matrix.selector.at)
            matrix.position.end = end
            return .matrixSelector(matrix)
        case .subquery(var subquery):
            try change(&subquery.offset, &subquery.at)
            subquery.position.end = end
            return .subquery(subquery)
        default:
            throw error(refusal, at: expr.position)
        }
    }

    // MARK: calls and aggregations

    private mutating func parseCall() throws(PromQLParseError) -> Parsed {
        let name = try advance()
        let (args, close) = try parseArguments()
        guard let function = PromQLFunction.all[name.text] else {
            throw error("unknown function with name " + GoQuoting.quote(name.text), at: name.range)
        }
        let call = Call(function: function, args: args.map(\.expr), position: PositionRange(start: name.start, end: close.end))
        return try node(.call(call), children: args, at: name.range)
    }

    /// `(a, b, ...)`: the arguments, and the closing parenthesis.
    private mutating func parseArguments() throws(PromQLParseError) -> ([Parsed], Token) {
        try advance()
        var args: [Parsed] = []
        if try peek().kind == .rightParen { return (args, try advance()) }
        while true {
            args.append(try parseExpr(minPrecedence: 1))
            let token = try advance()
            switch token.kind {
            case .rightParen:
                return (args, token)
            case .comma:
                // Prometheus' grammar takes a comma before anything that cannot start an argument
                // as a trailing comma.
                if try !Self.canStartExpression(peek().kind) { throw error("trailing commas not allowed in function call args", at: token.range) }
            default:
                throw unexpected(token)
            }
        }
    }

    private mutating func parseAggregation(_ op: AggregateOp) throws(PromQLParseError) -> Parsed {
        let opToken = try advance()
        aggregationDepth += 1
        defer { aggregationDepth -= 1 }
        var grouping = try parseAggregationModifier()
        let open = try peek()
        guard open.kind == .leftParen else { throw unexpected(open, context: "aggregation") }
        let (args, close) = try parseArguments()
        var end = close.end
        if grouping == nil, let trailing = try parseAggregationModifier() {
            grouping = trailing
            end = trailing.end
        }
        let position = PositionRange(start: opToken.start, end: end)
        if args.isEmpty { throw error("no arguments for aggregate expression provided", at: position) }
        let expected = op.parameterType == nil ? 1 : 2
        guard args.count == expected else {
            throw error("wrong number of arguments for aggregate expression provided, expected \(expected), got \(args.count)", at: position)
        }
        let aggregate = AggregateExpr(op: op, expr: args[expected - 1].expr, parameter: expected == 2 ? args[0].expr : nil,
                                      grouping: grouping?.labels ?? [], without: grouping?.without ?? false, position: position)
        return try node(.aggregate(aggregate), children: args, at: opToken.range)
    }

    /// `by (...)` or `without (...)`, if next.
    private mutating func parseAggregationModifier() throws(PromQLParseError) -> (labels: [String], without: Bool, end: Int)? {
        guard case .keyword(let keyword) = try peek().kind, keyword == .by || keyword == .without else { return nil }
        try advance()
        let (labels, close) = try parseGroupingLabels()
        return (labels, keyword == .without, close.end)
    }

    // MARK: modifiers

    private mutating func parseBinaryModifiers() throws(PromQLParseError) -> (VectorMatching, Bool) {
        var matching = VectorMatching(cardinality: .oneToOne, matchingLabels: [], on: false, include: [])
        let returnBool = try peek().kind == .keyword(.bool)
        if returnBool { try advance() }
        guard case .keyword(let keyword) = try peek().kind, keyword == .on || keyword == .ignoring else { return (matching, returnBool) }
        try advance()
        matching.on = keyword == .on
        matching.matchingLabels = try parseGroupingLabels().labels
        guard case .keyword(let group) = try peek().kind, group == .groupLeft || group == .groupRight else { return (matching, returnBool) }
        try advance()
        matching.cardinality = group == .groupLeft ? .manyToOne : .oneToMany
        // The label list is optional, but what can start neither it nor the right operand is
        // reported as a missing list, as Prometheus' grammar does.
        let next = try peek()
        if next.kind == .leftParen {
            matching.include = try parseGroupingLabels().labels
        } else if !Self.canStartExpression(next.kind) {
            throw unexpected(next, context: "grouping opts", expected: "\"(\"")
        }
        return (matching, returnBool)
    }

    /// `(a, b)`: label names, and the closing parenthesis.
    private mutating func parseGroupingLabels() throws(PromQLParseError) -> (labels: [String], close: Token) {
        let open = try advance()
        guard open.kind == .leftParen else { throw unexpected(open, context: "grouping opts", expected: "\"(\"") }
        var labels: [String] = []
        if try peek().kind == .rightParen { return (labels, try advance()) }
        while true {
            let label = try advance()
            guard Self.canNameLabel(label) else { throw unexpected(label, context: "grouping opts", expected: "label") }
            labels.append(label.text)
            let separator = try advance()
            if separator.kind == .rightParen { return (labels, separator) }
            guard separator.kind == .comma else { throw unexpected(separator, context: "grouping opts", expected: "\",\" or \")\"") }
            if try peek().kind == .rightParen { return (labels, try advance()) }
        }
    }

    /// Identifiers and keywords stand for label names in a grouping list, if they are valid label
    /// names; all keywords but `without`, which Prometheus' grammar leaves out.
    private static func canNameLabel(_ token: Token) -> Bool {
        switch token.kind {
        case .keyword(.without):
            return false
        case .identifier, .metricIdentifier, .aggregator, .keyword, .atPreprocessor,
             .binary(.and), .binary(.or), .binary(.unless), .binary(.atan2):
            let scalars = token.text.unicodeScalars
            guard let first = scalars.first, Lexer.isAlpha(first) else { return false }
            return scalars.dropFirst().allSatisfy(Lexer.isAlphaNumeric)
        default:
            return false
        }
    }

    // MARK: literals

    private func number(_ token: Token) throws(PromQLParseError) -> Double {
        switch GoNumbers.parse(token.text) {
        case .success(let value): return value
        case .failure(let message): throw error(message.text, at: token.range)
        }
    }

    private func stringValue(_ token: Token) throws(PromQLParseError) -> (value: String, isUTF8: Bool) {
        do {
            return try StringLiteralDecoding.value(of: token.text)
        } catch {
            throw self.error("error unquoting string \(GoQuoting.quote(token.text)): invalid syntax", at: token.range)
        }
    }

    /// A duration token's milliseconds; zero is refused, as Prometheus refuses it in PromQL.
    private func duration(_ token: Token) throws(PromQLParseError) -> Int64 {
        switch PromQLDuration.parse(token.text) {
        case .success(0): throw error("duration must be greater than 0", at: token.range)
        case .success(let milliseconds): return milliseconds
        case .failure(let message): throw error(message.text, at: token.range)
        }
    }

    /// Go's `%f`.
    private static func goFixed(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        return String(format: "%f", value)
    }

    // MARK: tokens and errors

    private mutating func peek(_ ahead: Int = 0) throws(PromQLParseError) -> Token {
        while lookahead.count <= ahead { lookahead.append(try lexer.next()) }
        return lookahead[ahead]
    }

    @discardableResult
    private mutating func advance() throws(PromQLParseError) -> Token {
        let token = try peek()
        lookahead.removeFirst()
        return token
    }

    private func node(_ expr: Expr, children: [Parsed], at position: PositionRange) throws(PromQLParseError) -> Parsed {
        let height = (children.map(\.height).max() ?? 0) + 1
        if height > maxDepth { throw tooDeep(at: position) }
        return Parsed(expr: expr, height: height)
    }

    private func tooDeep(at position: PositionRange) -> PromQLParseError {
        error("expression nests too deeply: more than \(maxDepth) levels", at: position)
    }

    /// "unexpected <what>[ in <context>][, expected <expected>]", as Prometheus words it.
    private func unexpected(_ token: Token, context: String? = nil, expected: String? = nil) -> PromQLParseError {
        var message = "unexpected " + token.errorDescription
        if let context = context ?? (aggregationDepth > 0 ? "aggregation" : nil) { message += " in " + context }
        if let expected { message += ", expected " + expected }
        return error(message, at: token.range)
    }

    private func error(_ message: String, at position: PositionRange) -> PromQLParseError {
        PromQLParseError(message, at: position, in: input)
    }
}
