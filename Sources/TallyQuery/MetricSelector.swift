import TallyStorage

extension PromQL {
    /// A series selector as Prometheus 2.42's `parser.ParseMetricSelector` reads `match[]`: a
    /// metric name, braces or both, nothing else, with the parser's errors. As there, `{}` parses
    /// (the API then asks for a matcher that does not match the empty value). The matchers are
    /// returned as storage takes them.
    public static func parseMetricSelector(_ text: String) throws(PromQLParseError) -> [TallyStorage.LabelMatcher] {
        let bytes = Array(text.utf8)
        var parser = Parser(bytes, maxDepth: maxNestingDepth)
        let selector = try parser.parseMetricSelector()
        do {
            return try selector.allMatchers.map { matcher throws(SelectorError) in try matcher.storageMatcher() }
        } catch {
            throw PromQLParseError("\(error)", at: selector.position, in: bytes)
        }
    }
}

extension PromQL {
    /// Every vector selector of `expr` (those inside range selectors too), in the order Prometheus'
    /// `parser.ExtractSelectors` finds them: the tree depth first, each node before its children.
    public static func vectorSelectors(in expr: Expr) -> [VectorSelector] {
        switch expr {
        case .number, .string: []
        case let .vectorSelector(selector): [selector]
        case let .matrixSelector(m): [m.selector]
        case let .subquery(s): vectorSelectors(in: s.expr)
        case let .aggregate(a): vectorSelectors(in: a.expr) + (a.parameter.map { vectorSelectors(in: $0) } ?? [])
        case let .binary(b): vectorSelectors(in: b.lhs) + vectorSelectors(in: b.rhs)
        case let .call(c): c.args.flatMap { vectorSelectors(in: $0) }
        case let .paren(p): vectorSelectors(in: p.expr)
        case let .unary(u): vectorSelectors(in: u.expr)
        }
    }
}

extension LabelMatcher {
    /// The same matcher as storage takes it (its regex compiled, anchored).
    public func storageMatcher() throws(SelectorError) -> TallyStorage.LabelMatcher {
        let kind: TallyStorage.LabelMatcher.Kind = switch kind {
        case .equal: .equal
        case .notEqual: .notEqual
        case .regexMatch: .regex
        case .regexNoMatch: .notRegex
        }
        return try TallyStorage.LabelMatcher(name, kind, value)
    }
}
