import Foundation
import TallyStorage

/// A time as Prometheus' HTTP API takes it (`start`, `end`, `time`): RFC 3339, or Unix seconds
/// with an optional fraction. Returned as Unix milliseconds.
public enum TimeParameter {
    public static func milliseconds(_ text: String) -> Int64? {
        if let seconds = Double(text), seconds.isFinite, abs(seconds) < 9e15 {
            return Int64((seconds * 1000).rounded())
        }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        }
        return nil
    }
}

/// What a deletion asks for, checked as Prometheus' `delete_series` checks it: one or more series
/// selectors, each with a matcher that does not match the empty value (so no selector means
/// "everything"), and an optional inclusive time range (RFC 3339 or Unix seconds).
public struct DeletionArguments: Sendable {
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    public let selectors: [[LabelMatcher]]
    public let interval: DeletedInterval

    public init(selectors texts: [String], start: String?, end: String?) throws(Problem) {
        guard !texts.isEmpty else { throw Problem(description: "at least one series selector (match[]) is required") }
        var selectors: [[LabelMatcher]] = []
        for text in texts {
            do { selectors.append(try SelectorParser.parse(text)) } catch { throw Problem(description: "selector \(text): \(error)") }
            if selectors.last!.allSatisfy({ $0.predicate()("") }) {
                throw Problem(description: "selector \(text): needs a matcher that does not match the empty value")
            }
        }
        var bounds: [Int64] = []
        for (name, text, fallback) in [("start", start, Int64.min), ("end", end, Int64.max)] {
            guard let text else { bounds.append(fallback); continue }
            guard let ms = TimeParameter.milliseconds(text) else { throw Problem(description: "\(name) \(text): expected RFC 3339 or Unix seconds") }
            bounds.append(ms)
        }
        guard bounds[0] <= bounds[1] else { throw Problem(description: "start is after end") }
        self.selectors = selectors
        interval = DeletedInterval(minTime: bounds[0], maxTime: bounds[1])
    }
}
