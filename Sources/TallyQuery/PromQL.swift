/// Entry point of the PromQL front end.
public enum PromQL {
    /// Deepest nesting a query may have: parentheses, arguments, operators and their chains all count.
    /// Prometheus has no such bound; Tally has one so that no query can exhaust a thread's stack while
    /// it is parsed, checked, printed or freed, all of which recurse over the tree. A debug build uses
    /// about 10 KiB of stack per level, so 256 levels fit well within Linux's default 8 MiB.
    public static let maxNestingDepth = 256

    /// Parses and type-checks a query as Prometheus 2.42's `parser.ParseExpr` does: the tree, or the
    /// first error with Prometheus' message and position.
    public static func parse(_ query: String) throws(PromQLParseError) -> Expr {
        let bytes = Array(query.utf8)
        var parser = Parser(bytes, maxDepth: maxNestingDepth)
        let expr = try parser.parseQuery()
        return try TypeChecker(input: bytes).check(expr)
    }
}
