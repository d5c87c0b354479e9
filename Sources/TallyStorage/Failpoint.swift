#if canImport(Glibc)
import Glibc
#endif

/// Named places where a crash test makes the process die at once (`TALLY_FAILPOINT=<name>`), to
/// prove that every step of a multi-file change survives a SIGKILL right there.
enum Failpoint {
    private static let armed: String? = getenv("TALLY_FAILPOINT").map { String(cString: $0) }

    static func hit(_ name: StaticString) {
        guard let armed, armed == name.description else { return }
        kill(getpid(), SIGKILL)
    }
}
