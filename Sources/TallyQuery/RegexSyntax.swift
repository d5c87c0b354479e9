import TallyStorage

/// What the parser needs of a `=~` / `!~` pattern: that it compiles, and whether it matches the empty
/// string (a selector needs one matcher that does not). Prometheus anchors the pattern as
/// `^(?:pattern)$` and compiles it with Go's RE2. The storage's matcher decides: it reads RE2's
/// syntax as Go 1.19 does, in linear time, and refuses what RE2 refuses (its wording, not RE2's).
enum RegexSyntax {
    /// Why Prometheus would refuse the pattern, or nil. RE2 refuses bytes that are not UTF-8.
    static func refusal(of pattern: String, isUTF8: Bool) -> PromQLParseMessage? {
        guard isUTF8 else { return PromQLParseMessage("error parsing regexp: invalid UTF-8") }
        if case .failure(let message) = matcher(pattern) { return message }
        return nil
    }

    static func matchesEmptyString(_ pattern: String) -> Result<Bool, PromQLParseMessage> {
        matcher(pattern).map { $0.predicate()("") }
    }

    private static func matcher(_ pattern: String) -> Result<TallyStorage.LabelMatcher, PromQLParseMessage> {
        do {
            return .success(try TallyStorage.LabelMatcher("", .regex, pattern))
        } catch {
            if case let .badRegex(_, why) = error { return .failure(PromQLParseMessage("error parsing regexp: \(why)")) }
            return .failure(PromQLParseMessage("error parsing regexp: \(error)"))
        }
    }
}
