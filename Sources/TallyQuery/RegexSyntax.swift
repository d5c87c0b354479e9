/// What the parser needs of a `=~` / `!~` pattern: that it compiles, and whether it matches the empty
/// string (a selector needs one matcher that does not). Prometheus anchors the pattern as
/// `^(?:pattern)$` and compiles it with Go's RE2; this uses Swift's `Regex`, which takes a superset
/// of RE2's syntax (lookarounds, backreferences), so some patterns Prometheus refuses pass here, and
/// compile errors are worded differently. An RE2 matcher is to replace it (issue 15, storage reads).
enum RegexSyntax {
    static func matchesEmptyString(_ pattern: String) -> Result<Bool, PromQLParseMessage> {
        do {
            let regex = try Regex("^(?:" + pattern + ")$")
            return .success(try regex.wholeMatch(in: "") != nil)
        } catch {
            return .failure(PromQLParseMessage("error parsing regexp: \(error)"))
        }
    }
}
