import Foundation
@testable import TallyStorage
import XCTest

/// How a process ended, with what it wrote to stderr (or its log).
struct ProcessEnd {
    let reason: Process.TerminationReason
    let status: Int32
    let output: String

    init(_ process: Process, output: String) {
        reason = process.terminationReason
        status = process.terminationStatus
        self.output = output
    }
}

/// Asserts that the process died at failpoint `point`: its marker line was written and SIGKILL
/// ended it. Any other end (another signal, a Swift trap's SIGILL or SIGTRAP, an exit) fails,
/// so a crash on the way cannot pass for the failpoint.
func assertDiedAtFailpoint(_ point: String, _ end: ProcessEnd, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(end.output.contains(Failpoint.markerPrefix + point + "\n"), "\(point): no failpoint marker in: \(end.output.suffix(2000))",
                  file: file, line: line)
    XCTAssertEqual(end.reason, .uncaughtSignal, "\(point): the process exited with \(end.status) instead of dying", file: file, line: line)
    XCTAssertEqual(end.status, SIGKILL, "\(point): killed by signal \(end.status), not SIGKILL: \(end.output.suffix(2000))", file: file, line: line)
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; returns whether it held, for
/// the caller to assert.
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else { return false }
        usleep(20_000)
    }
    return true
}

/// Waits (bounded) for `process` to end by itself. One still running after `seconds` fails the test
/// and is killed, so that its end can be read (Foundation traps on reading a running process's).
func waitForEnd(of process: Process, seconds: Double, output: () -> String, _ context: String,
                file: StaticString = #filePath, line: UInt = #line) -> ProcessEnd {
    if !waitUntil(seconds: seconds, { !process.isRunning }) {
        XCTFail("\(context): still running after \(seconds) s", file: file, line: line)
        kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
    return ProcessEnd(process, output: output())
}

/// Runs `tally` with failpoint `point` armed until it ends (or `seconds` pass, which fails the test).
func runTally(atFailpoint point: String, _ arguments: [String], seconds: Double = 120,
              file: StaticString = #filePath, line: UInt = #line) throws -> ProcessEnd {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Binaries.tally)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["TALLY_FAILPOINT": point]) { $1 }
    // A file, not a pipe: what a killed process wrote is all there once it is gone.
    let errorPath = NSTemporaryDirectory() + "tally-failpoint-\(UUID().uuidString.prefix(8)).stderr"
    guard FileManager.default.createFile(atPath: errorPath, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
    defer { try? FileManager.default.removeItem(atPath: errorPath) }
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return waitForEnd(of: process, seconds: seconds, output: { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" },
                      "tally \(arguments.first ?? "") at \(point)", file: file, line: line)
}
