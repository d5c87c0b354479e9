#if canImport(Glibc)
import Glibc
#endif

/// Writes to a standard stream by descriptor (the C `stdout`/`stderr` globals are not
/// concurrency-safe in Swift 6).
enum Output {
    static func write(_ text: String, to fd: Int32 = STDOUT_FILENO) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }

    static func error(_ text: String) { write(text, to: STDERR_FILENO) }
}

/// A command that could not do its work (as opposed to bad arguments): printed as "Error: ..."
/// without the usage text, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
