import TallyStorage

/// What the parser needs of a `=~` / `!~` pattern: that it compiles, and whether it matches the empty
/// string (a selector needs one matcher that does not). Prometheus anchors the pattern as
/// `^(?:pattern)$` and compiles it with Go's RE2. A pattern the storage's linear-time matcher reads is
/// taken as RE2 takes it; anything else goes to Swift's `Regex`, which takes a superset of RE2's
/// syntax (lookarounds, back-references), so some patterns Prometheus refuses pass here, and compile
/// errors are worded differently.
enum RegexSyntax {
    /// Why Prometheus would refuse the pattern, or nil. It compiles the anchored pattern and then the
    /// pattern alone (so `a)(b` fails although `^(?:a)(b)$` compiles), and RE2 refuses bytes that are
    /// not UTF-8.
    static func refusal(of pattern: String, isUTF8: Bool) -> PromQLParseMessage? {
        guard isUTF8 else { return PromQLParseMessage("error parsing regexp: invalid UTF-8") }
        // What the storage's linear-time RE2 matcher reads is taken as RE2 takes it.
        if storageMatcher(pattern) != nil { return nil }
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
