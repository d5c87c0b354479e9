/// The values of a `multipart/form-data` body (RFC 7578) as Go's `mime/multipart` reads them for
/// `Request.FormValue`: each part named by `Content-Disposition: form-data; name="..."` without a
/// `filename` is a value, in part order; parts with a filename (files) are not values. A body that
/// does not parse gives no values at all, as Go's `ParseMultipartForm` merges nothing then.
public enum MultipartForm {
    /// A media type and its parameters, as Go's `mime.ParseMediaType` reads the common forms: the
    /// type and parameter names lowercased, values as a token or a quoted string.
    public static func mediaType(_ text: String) -> (type: String, parameters: [String: String]) {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        var parameters: [String: String] = [:]
        for part in parts.dropFirst() {
            guard let equals = part.firstIndex(of: "=") else { continue }
            let name = part[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = part[part.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                var unquoted = ""
                var escaped = false
                for character in value.dropFirst().dropLast() {
                    if !escaped && character == "\\" { escaped = true; continue }
                    unquoted.append(character)
                    escaped = false
                }
                value = unquoted
            }
            if !name.isEmpty && parameters[name] == nil { parameters[name] = value }
        }
        return ((parts.first ?? "").trimmingCharacters(in: .whitespaces).lowercased(), parameters)
    }

    /// The (name, value) pairs of `body`, or nil when it is not a whole multipart body with this
    /// boundary.
    public static func values(_ body: [UInt8], boundary: String) -> [(name: String, value: String)]? {
        guard !boundary.isEmpty, boundary.utf8.count <= 70 else { return nil }
        let delimiter = Array(("--" + boundary).utf8)
        var lines = LineCursor(body)
        // The preamble, up to the first delimiter line.
        while true {
            guard let line = lines.next() else { return nil }
            if isDelimiter(line, delimiter, final: true) { return [] }
            if isDelimiter(line, delimiter, final: false) { break }
        }
        var pairs: [(name: String, value: String)] = []
        while true {
            // The part's headers, up to an empty line.
            var disposition: String?
            while true {
                guard let line = lines.next() else { return nil }
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
                let name = String(decoding: line[..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
                if name == "content-disposition" && disposition == nil {
                    disposition = String(decoding: line[(colon + 1)...], as: UTF8.self)
                }
            }
            // The content, up to the line break before the next delimiter line.
            guard let (content, final) = lines.content(before: delimiter) else { return nil }
            if let disposition {
                let (type, parameters) = mediaType(disposition)
                if type == "form-data", let name = parameters["name"], !name.isEmpty, (parameters["filename"] ?? "").isEmpty {
                    pairs.append((name, String(decoding: content, as: UTF8.self)))
                }
            }
            if final { return pairs }
        }
    }

    /// `--boundary` (or with `final`, `--boundary--`), then only spaces and tabs.
    private static func isDelimiter(_ line: ArraySlice<UInt8>, _ delimiter: [UInt8], final: Bool) -> Bool {
        guard line.starts(with: delimiter) else { return false }
        var rest = line.dropFirst(delimiter.count)
        if final {
            guard rest.count >= 2, rest.first == UInt8(ascii: "-"), rest.dropFirst().first == UInt8(ascii: "-") else { return false }
            rest = rest.dropFirst(2)
        }
        return rest.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
    }

    /// Lines of a body, each without its CRLF or LF.
    private struct LineCursor {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func next() -> ArraySlice<UInt8>? {
            guard position < bytes.count, let newline = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            var end = newline
            if end > position && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            defer { position = newline + 1 }
            return bytes[position..<end]
        }

        /// The bytes up to the line break before the next delimiter line, and whether that line
        /// is the final one; the cursor moves past the delimiter line.
        mutating func content(before delimiter: [UInt8]) -> (ArraySlice<UInt8>, final: Bool)? {
            let start = position
            while true {
                guard let line = next() else { return nil }
                let final = MultipartForm.isDelimiter(line, delimiter, final: true)
                if final || MultipartForm.isDelimiter(line, delimiter, final: false) {
                    // The line break before the delimiter belongs to it, not to the content.
                    var end = line.startIndex
                    if end > start && bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
                    if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    return (bytes[start..<max(start, end)], final)
                }
            }
        }
    }
}
