import NIOCore

/// 301 to the clean form of a path with empty, `.` or `..` segments (`//api/v1/query` to
/// `/api/v1/query`), for every method, as Go's `http.ServeMux` in front of Prometheus answers: a
/// client configured with a base URL ending in `/` still finds the API, after one redirect.
struct PathCleaning: HTTPMiddleware {
    func handle(_ request: RouteRequest, next: (RouteRequest) -> EventLoopFuture<HTTPAnswer>) -> EventLoopFuture<HTTPAnswer> {
        let path = request.path
        // Not `*` (`OPTIONS *`), which has no path to clean.
        guard path.isEmpty || path.hasPrefix("/"), Self.mayNeedCleaning(path) else { return next(request) }
        let cleaned = Self.clean(path)
        guard cleaned != path else { return next(request) }
        let query = request.head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first
        let location = query.map { cleaned + "?" + $0 } ?? cleaned
        // Go writes a short page for GET and HEAD only; other methods get the header alone.
        var answer = request.head.method == .GET || request.head.method == .HEAD
            ? HTTPAnswer(status: 301, body: "<a href=\"\(Self.htmlEscaped(location))\">Moved Permanently</a>.\n\n", contentType: "text/html; charset=utf-8")
            : HTTPAnswer(status: 301, body: "")
        answer.headers.append(("Location", location))
        return request.now(answer)
    }

    /// Whether a `/` is followed by `/` or `.` (or the path is empty): only then can cleaning change
    /// it. A scan without allocating, for every request.
    static func mayNeedCleaning(_ path: String) -> Bool {
        var previous: UInt8 = 0
        for byte in path.utf8 {
            if previous == UInt8(ascii: "/") && (byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".")) { return true }
            previous = byte
        }
        return path.isEmpty
    }

    /// Go's `path.Clean` of a rooted path: empty and `.` segments dropped, each `..` taking the
    /// segment before it away (none above the root); a trailing `/` kept, as `ServeMux` keeps it.
    /// An empty path (an absolute-form target with none) is `/`.
    static func clean(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/") {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        let cleaned = "/" + segments.joined(separator: "/")
        return path.hasSuffix("/") && cleaned != "/" ? cleaned + "/" : cleaned
    }

    /// Go's `htmlEscape` for the link's `href`.
    private static func htmlEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&#34;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
