import Foundation
import NIOCore
import NIOHTTP1
import TallyStorage

/// A request's query parameters, percent-decoded as HTML forms encode them (`+` is a space), read
/// as Go's `net/http` reads them for Prometheus: a pair with a `;` or a broken escape is left out
/// (Go's `url.ParseQuery` since 1.17), and a name given twice means its first value. Decoded bytes
/// that are not UTF-8 are kept, each bad sequence as U+FFFD: Go keeps them, so `time=%ff` is a
/// time that does not parse (400), not a parameter left out.
struct QueryString {
    /// Every (name, value) pair in order; a repeated name (`match[]`) appears once per value.
    private(set) var pairs: [(name: String, value: String)] = []
    /// What Go's `ParseForm` returns as its error for these parameters (for a pair with a `;` or a
    /// broken escape, left out either way): Prometheus' `series`, `delete_series` and `/federate`
    /// refuse the request with it; the endpoints that read by `FormValue` never see it.
    private(set) var parseError: String?
    /// The names of the pairs left out (each `;`-separated part's, decoded where it decodes): a
    /// parameter named by one may have been meant, so its absence proves nothing.
    private var leftOutNames: [String] = []

    init(uri: String) { add(Self.query(of: uri)) }

    /// Parameters already decoded, in order.
    init(pairs: [(name: String, value: String)]) { self.pairs = pairs }

    /// Also reads the body as Go's `Request.FormValue` does for Prometheus' API: of a POST, PUT or
    /// PATCH whose media type is `application/x-www-form-urlencoded`, the body's pairs first, then
    /// the URL's (so a body value wins; the body of a GET is never read so); of a
    /// `multipart/form-data` body, whatever the method, its values after the URL's.
    init(uri: String, method: HTTPMethod, formBody: ByteBuffer, contentType: String?) {
        let (mediaType, parameters) = contentType.map(MultipartForm.mediaType) ?? ("", [:])
        if [.POST, .PUT, .PATCH].contains(method) && mediaType == "application/x-www-form-urlencoded" {
            add(Substring(decoding: formBody.readableBytesView, as: UTF8.self))
        }
        add(Self.query(of: uri))
        if mediaType == "multipart/form-data", let boundary = parameters["boundary"],
           let values = MultipartForm.values(Array(formBody.readableBytesView), boundary: boundary) {
            pairs += values
        }
    }

    private static func query(of uri: String) -> Substring { uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? "" }

    /// Go's `url.ParseQuery`: its error is the last `;` found, else the first broken escape. The
    /// body's error (read first) wins over the URL's, as in `ParseForm`.
    private mutating func add(_ query: Substring) {
        var error: String?
        for pair in query.split(separator: "&") {
            func name(of part: Substring) -> String {
                let name = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
                return Self.decode(name) ?? String(name)
            }
            if pair.contains(";") {
                error = "invalid semicolon separator in query"
                leftOutNames += pair.split(separator: ";").map(name)
                continue
            }
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]) else {
                error = error ?? Self.escapeError(parts[0])
                leftOutNames.append(String(parts[0]))
                continue
            }
            guard let value = parts.count > 1 ? Self.decode(parts[1]) : "" else {
                error = error ?? Self.escapeError(parts[1])
                leftOutNames.append(name)
                continue
            }
            pairs.append((name, value))
        }
        parseError = parseError ?? error
    }

    /// Go's `url.EscapeError` for the first broken escape in `text`: its `%` and at most the two
    /// bytes after it.
    private static func escapeError(_ text: Substring) -> String {
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "%") else {
                i += 1
                continue
            }
            guard i + 2 < bytes.count, isHexDigit(bytes[i + 1]), isHexDigit(bytes[i + 2]) else {
                return "invalid URL escape " + GoFormat.quote(String(decoding: bytes[i..<min(i + 3, bytes.count)], as: UTF8.self))
            }
            i += 3
        }
        return "invalid URL escape"
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    /// The first value given for `name` (Go's `FormValue`).
    subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    /// Every value given for `name`, in order.
    func all(_ name: String) -> [String] { pairs.filter { $0.name == name }.map(\.value) }

    /// Whether a pair left out for a `;` or a broken escape may have been `name`'s.
    func mayHaveLeftOut(_ name: String) -> Bool { leftOutNames.contains(name) }

    /// Undoes form percent-encoding; nil for a broken escape.
    static func decode(_ text: Substring) -> String? { bytes(text, plusIsSpace: true).map { String(decoding: $0, as: UTF8.self) } }

    /// Undoes a path segment's percent-encoding, where `+` is itself; nil for a broken escape or
    /// bytes that are not UTF-8 (the segment is then taken as it was written).
    static func decodePath(_ text: Substring) -> String? { bytes(text, plusIsSpace: false).flatMap { String(validating: $0, as: UTF8.self) } }

    private static func bytes(_ text: Substring, plusIsSpace: Bool) -> [UInt8]? {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            switch byte {
            case UInt8(ascii: "+") where plusIsSpace: bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                // Two hex digits, as Go's `ishex` takes them (`UInt8(_:radix:)` would take a sign).
                guard utf8.count >= 2, isHexDigit(utf8[utf8.startIndex]), isHexDigit(utf8[utf8.startIndex + 1]),
                      let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            default: bytes.append(byte)
            }
        }
        return bytes
    }
}
