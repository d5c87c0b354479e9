#if canImport(Glibc)
import Glibc
#endif

/// Named places where a crash test makes the process die at once (`TALLY_FAILPOINT=<name>`), to
/// prove that every step of a multi-file change survives a SIGKILL right there; and named system
/// calls a test makes fail (`fails`), to prove what the server answers when the disk does.
enum Failpoint {
    private static let armed: String? = getenv("TALLY_FAILPOINT").map { String(cString: $0) }

    /// Starts the line written to stderr just before the kill: a test requires it next to the
    /// SIGKILL status, so a trap or another signal on the way cannot pass for the failpoint.
    static let markerPrefix = "tally failpoint reached: "

    static func hit(_ name: StaticString) {
        guard reached(name) else { return }
        kill(getpid(), SIGKILL)
    }

    /// True when `name` is armed: the caller then fails as if the system call had returned EIO. The
    /// marker line says the injected failure happened, so a test cannot pass without reaching it.
    static func fails(_ name: StaticString) -> Bool { reached(name) }

    /// Writes the marker when `name` is armed.
    private static func reached(_ name: StaticString) -> Bool {
        guard let armed, armed == name.description else { return false }
        // write(2) on fd 2 rather than FileHandle or print: unbuffered, so the line is out before a kill.
        let line = Array((markerPrefix + armed + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        return true
    }
}
