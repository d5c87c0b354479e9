import TallyStorage

/// What the parser needs of a `=~` / `!~` pattern: that it compiles, and whether it matches the empty
/// string (a selector needs one matcher that does not). Prometheus anchors the pattern as
/// `^(?:pattern)$` and compiles it with Go's RE2. The storage's matcher decides: it reads RE2's
/// syntax in linear time and refuses what RE2 refuses (its wording, not RE2's), but for named
/// Unicode classes (`\p{Greek}`), which go to Swift's `Regex`.
enum RegexSyntax {
    /// Why Prometheus would refuse the pattern, or nil. It compiles the anchored pattern and then the
    /// pattern alone (so `a)(b` fails although `^(?:a)(b)$` compiles), and RE2 refuses bytes that are
    /// not UTF-8.
    static func refusal(of pattern: String, isUTF8: Bool) -> PromQLParseMessage? {
        guard isUTF8 else { return PromQLParseMessage("error parsing regexp: invalid UTF-8") }
        do {
            if try TallyStorage.LabelMatcher("", .regex, pattern).isLinearTime { return nil }
        } catch {
            if case let .badRegex(_, why) = error { return PromQLParseMessage("error parsing regexp: \(why)") }
            return PromQLParseMessage("error parsing regexp: \(error)")
        }
        for text in [anchored(pattern), pattern] {
            do {
                _ = try Regex(text)
            } catch {
                return PromQLParseMessage("error parsing regexp: \(error)")
            }
        }
        return nil
    }

    static func matchesEmptyString(_ pattern: String) -> Result<Bool, PromQLParseMessage> {
        if let matcher = storageMatcher(pattern) { return .success(matcher.predicate()("")) }
        do {
            return .success(try Regex(anchored(pattern)).wholeMatch(in: "") != nil)
        } catch {
            return .failure(PromQLParseMessage("error parsing regexp: \(error)"))
        }
    }

    private static func anchored(_ pattern: String) -> String { "^(?:" + pattern + ")$" }

    /// The storage's matcher for the pattern when it reads it as RE2 syntax (linear time), else nil.
    private static func storageMatcher(_ pattern: String) -> TallyStorage.LabelMatcher? {
        guard let matcher = try? TallyStorage.LabelMatcher("", .regex, pattern), matcher.isLinearTime else { return nil }
        return matcher
    }
}
