import ArgumentParser
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a long command shows how far it is. Progress always goes to stderr, so stdout stays the
/// command's output, fit for a pipe.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    /// A bar redrawn in place when stderr is a terminal, nothing otherwise.
    case auto
    case bar
    /// One line per step, for logs and CI.
    case plain
    case none
}

/// `--progress`, shared by every command that can run long.
struct ProgressOption: ParsableArguments {
    @Option(help: "auto (a bar when stderr is a terminal, else nothing), bar, plain (one line per step) or none.")
    var progress: ProgressMode = .auto

    /// A meter for `total` steps of `unit`, titled `title`.
    func meter(_ title: String, total: Int, unit: String) -> ProgressMeter {
        let mode = progress == .auto ? (isatty(STDERR_FILENO) != 0 ? .bar : .none) : progress
        return ProgressMeter(mode: mode, title: title, total: total, unit: unit)
    }
}

/// Counts steps towards a total and shows them as `ProgressMode` says; safe to advance from
/// several threads (cost days are computed in parallel).
final class ProgressMeter: Sendable {
    private struct State {
        var total: Int
        var done = 0
        var drawn = false
    }

    private let mode: ProgressMode
    private let title: String
    private let unit: String
    private let state: Mutex<State>

    init(mode: ProgressMode, title: String, total: Int, unit: String) {
        self.mode = mode
        self.title = title
        self.unit = unit
        state = Mutex(State(total: total))
    }

    /// One step more is done; `note` says which.
    func advance(_ note: String = "") {
        state.withLock { state in
            state.done += 1
            let (done, total) = (state.done, max(state.total, state.done))
            switch mode {
            case .plain:
                Output.error("\(title): \(done)/\(total) \(unit)\(note.isEmpty ? "" : " (\(note))")\n")
            case .bar:
                let width = 30
                let filled = done * width / total
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                // \u{1B}[K clears what a longer earlier line left to the right.
                Output.error("\r\(title) [\(bar)] \(done)/\(total) \(unit)\(note.isEmpty ? "" : " \(note)")\u{1B}[K")
                state.drawn = true
            case .auto, .none:
                break
            }
        }
    }

    /// Writes `text` (to stdout unless told) with the bar cleared first, so output and bar do not
    /// share a line on a terminal; the next step redraws the bar.
    func write(_ text: String, to fd: Int32 = STDOUT_FILENO) {
        state.withLock { state in
            if state.drawn { Output.error("\r\u{1B}[K") }
            state.drawn = false
            Output.write(text, to: fd)
        }
    }

    /// Ends the bar's line, so what follows starts on a fresh one.
    func finish() {
        state.withLock { state in
            if state.drawn { Output.error("\n") }
            state.drawn = false
        }
    }
}
