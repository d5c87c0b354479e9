import Foundation
import TallyLoad
import XCTest

/// Paths of the binaries under test and of Debian's Prometheus tools.
enum Binaries {
    /// The `tally` executable built next to this test bundle (`swift build --build-tests` builds it).
    static var tally: String {
        let productDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [productDirectory.appendingPathComponent("tally").path,
                          URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../.build/debug/tally").standardized.path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// The Prometheus release the interop tests compare against (Debian 12's package).
    static let prometheusVersion = "2.42"

    /// `TALLY_REQUIRE_TOOLS=1` (set by `make test` and CI): a missing or wrong tool fails the test
    /// instead of skipping it, so a run without Prometheus cannot pass on skips.
    static var toolsRequired: Bool { ProcessInfo.processInfo.environment["TALLY_REQUIRE_TOOLS"] == "1" }

    /// Why each Debian tool cannot be used, if it cannot: checked once per run.
    private static let debianToolProblems: [String: String] = Dictionary(uniqueKeysWithValues: ["promtool", "prometheus"].map { name in
        let path = "/usr/bin/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            return (name, "\(path) is missing: `make deps` installs Debian's prometheus package (\(prometheusVersion))")
        }
        // Both print "<name>, version 2.42.0+ds (branch: ...)".
        let output = (try? runCommand(path, ["--version"], timeout: 30)).map { $0.stdout + $0.stderr } ?? ""
        guard output.contains("version \(prometheusVersion).") else {
            return (name, "\(path) is not version \(prometheusVersion): \(output.split(separator: "\n").first ?? "no --version output")")
        }
        return (name, "")
    }.filter { !$0.1.isEmpty })

    /// A Debian Prometheus tool by name. Without it (or at another version) the test is skipped,
    /// or fails under `TALLY_REQUIRE_TOOLS=1`. Test classes that need one call this from
    /// `setUpWithError`, so nothing is skipped or failed half-way through a test.
    static func debian(_ name: String) throws -> String {
        if let problem = debianToolProblems[name] {
            if toolsRequired { throw TestEnvironmentFailure(description: "TALLY_REQUIRE_TOOLS=1: \(problem)") }
            throw XCTSkip(problem)
        }
        return "/usr/bin/" + name
    }
}

/// What went wrong around a test, said in full: a missing tool, or a child that did not start,
/// answer or stop in time (with its log).
struct TestEnvironmentFailure: Error, CustomStringConvertible {
    let description: String
}

/// Starts a child that the kernel SIGKILLs when the thread that started it ends (PR_SET_PDEATHSIG,
/// through util-linux's `setpriv`, which execs the command): a test run that is killed or crashes
/// leaves no `tally serve` or Prometheus behind. Start children from the test's own thread (XCTest
/// runs tests on the main thread), not from a short-lived helper thread.
/// `output` and `errors` are a `FileHandle` or a `Pipe`, as `Process` takes them.
func startChild(_ command: [String], output: Any? = nil, errors: Any? = nil, environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
    process.arguments = ["--pdeathsig", "KILL", "--"] + command
    process.standardOutput = output
    process.standardError = errors
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    try process.run()
    return process
}

/// Waits up to `seconds` for a child to exit; true if it did.
func waitForExit(_ process: Process, within seconds: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    return !process.isRunning
}

/// Sends `signal` and waits up to `seconds` for the child to exit; past that it is SIGKILLed.
/// Returns whether it exited within the deadline.
@discardableResult
func stopChild(_ process: Process, _ signal: Int32, within seconds: TimeInterval) -> Bool {
    if process.isRunning { kill(process.processIdentifier, signal) }
    if waitForExit(process, within: seconds) { return true }
    kill(process.processIdentifier, SIGKILL)
    // SIGKILL cannot be caught or ignored: the exit follows as soon as the kernel delivers it.
    process.waitUntilExit()
    return false
}

/// Runs a command to completion with a time limit and returns its exit status and output.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, stdout: String, stderr: String) {
    let out = Pipe(), err = Pipe()
    let process = try startChild([executable] + arguments, output: out, errors: err)
    // Drain both pipes while the process runs so a large output cannot block it.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    let finished = group.wait(timeout: .now() + timeout) == .success
    // A command may close its output and still run: its exit has a deadline too.
    guard finished, waitForExit(process, within: 10) else {
        stopChild(process, SIGTERM, within: 5)
        throw TestEnvironmentFailure(description: "\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)s; killed")
    }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A `tally serve` child process on a loopback port the kernel picked (`--listen 127.0.0.1:0`),
/// with its own storage root. The bound port is read from the server's `listening` log line, so no
/// other process can take it between a probe and the bind.
final class TallyServerProcess {
    let storage: String
    let port: Int
    let process: Process
    let logPath: String

    /// `fileDescriptorLimit` runs the server under `prlimit --nofile`, which execs it: the process
    /// is the server itself. Returns once the server listens (it answers 503 until its WALs are
    /// replayed; `waitReady` waits for that).
    init(storage: String, extraArguments: [String] = [], environment: [String: String] = [:], fileDescriptorLimit: Int? = nil) throws {
        self.storage = storage
        logPath = storage + ".log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        // A restarted server appends to the same log: only what this one writes names its port.
        let logStart = Int(log.seekToEndOfFile())
        var command = [Binaries.tally, "serve", "--listen", "127.0.0.1:0", "--storage", storage] + extraArguments
        if let fileDescriptorLimit { command = ["/usr/bin/prlimit", "--nofile=\(fileDescriptorLimit)", "--"] + command }
        process = try startChild(command, output: log, errors: log, environment: environment)
        do {
            port = try Self.boundPort(logPath: logPath, from: logStart, process: process)
        } catch {
            stopChild(process, SIGKILL, within: 10)
            throw error
        }
    }

    /// Waits (bounded) for the `listening` line and returns the port in its `address=HOST:PORT`.
    private static func boundPort(logPath: String, from offset: Int, process: Process, seconds: TimeInterval = 60) throws -> Int {
        let marker = "address="
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let written = (try? Data(contentsOf: URL(fileURLWithPath: logPath)).dropFirst(offset)) ?? Data()
            let ours = String(decoding: written, as: UTF8.self)
            for line in ours.split(separator: "\n") where line.hasSuffix("listening") {
                if let range = line.range(of: marker), let address = line[range.upperBound...].split(separator: " ").first,
                   let port = address.split(separator: ":").last.flatMap({ Int($0) }) { return port }
            }
            guard process.isRunning else { throw TestEnvironmentFailure(description: "tally serve exited (\(process.terminationStatus)) before listening: \(ours)") }
            guard Date() < deadline else { throw TestEnvironmentFailure(description: "tally serve did not log its port within \(seconds)s: \(ours)") }
            usleep(10_000)
        }
    }

    var client: LoopbackHTTP { LoopbackHTTP(port: port) }

    /// Waits (bounded) until /-/ready answers 200.
    func waitReady(seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !process.isRunning { throw TestEnvironmentFailure(description: "tally exited: \(log)") }
            if let r = try? client.request("GET", "/-/ready"), r.status == 200 { return }
            usleep(20_000)
        }
        throw TestEnvironmentFailure(description: "tally not ready in \(seconds)s: \(log)")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits for the exit; a server still running after `seconds` is SIGKILLed
    /// and the test fails (a clean stop that hangs is a bug, not a slow machine).
    func stop(_ signal: Int32, within seconds: TimeInterval = 60, file: StaticString = #filePath, line: UInt = #line) {
        if !stopChild(process, signal, within: seconds) {
            XCTFail("tally serve did not exit within \(seconds)s of signal \(signal); SIGKILLed. Log: \(log.suffix(4000))", file: file, line: line)
        }
    }

    deinit { stopChild(process, SIGKILL, within: 10) }
}

/// Debian's Prometheus as a child on a loopback port, with `<directory>/prometheus.yml` and its
/// log in `<directory>/prometheus.log`. The port is chosen before the start because the
/// configuration names it (Prometheus scrapes itself); a port another process took in between
/// makes Prometheus exit with "address already in use", and the start is retried on a new port
/// until Prometheus logs that it listens (at most 5 times).
final class PrometheusProcess {
    let port: Int
    let process: Process
    let logPath: String

    /// `configuration` is the YAML for the chosen port.
    init(directory: String, configuration: (Int) -> String, arguments: [String]) throws {
        let binary = try Binaries.debian("prometheus")
        logPath = directory + "/prometheus.log"
        var attempt = 0
        while true {
            attempt += 1
            let port = LoopbackHTTP.freePort()
            try configuration(port).write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            let process = try startChild([binary, "--config.file=\(directory)/prometheus.yml", "--web.listen-address=127.0.0.1:\(port)"] + arguments,
                                         output: log, errors: log)
            if try Self.listens(process, logPath: logPath) {
                self.port = port
                self.process = process
                return
            }
            guard attempt < 5 else {
                throw TestEnvironmentFailure(description: "Prometheus found no free port in 5 attempts; log:\n\(try String(contentsOfFile: logPath, encoding: .utf8))")
            }
        }
    }

    /// Waits (bounded) until the log says Prometheus listens (true) or it exited because the port was
    /// taken (false); any other exit, or neither within 60 s, fails the test with the log.
    private static func listens(_ process: Process, logPath: String, seconds: TimeInterval = 60) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if log.contains("msg=\"Listening on\"") { return true }
            if !process.isRunning {
                if log.contains("address already in use") { return false }
                throw TestEnvironmentFailure(description: "Prometheus exited (\(process.terminationStatus)) before listening; log:\n\(log)")
            }
            guard Date() < deadline else {
                stopChild(process, SIGKILL, within: 10)
                throw TestEnvironmentFailure(description: "Prometheus did not listen within \(seconds)s; log:\n\(log)")
            }
            usleep(20_000)
        }
    }

    func client(timeoutSeconds: Int = 10) -> LoopbackHTTP { LoopbackHTTP(port: port, timeoutSeconds: timeoutSeconds) }

    /// A Prometheus with its data in `directory/data` (the directory made if needed), once it
    /// answers ready: it listens before its TSDB is open.
    static func started(in directory: String, configuration: (Int) -> String = { _ in "global:\n  scrape_interval: 1m\n" },
                        arguments: [String]) throws -> PrometheusProcess {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let prometheus = try PrometheusProcess(directory: directory, configuration: configuration,
                                               arguments: ["--storage.tsdb.path=\(directory)/data"] + arguments)
        try prometheus.waitReady()
        return prometheus
    }

    /// The last lines of Prometheus' log, for failure messages.
    var logTail: String {
        let lines = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n")
        return lines.suffix(30).joined(separator: "\n")
    }

    /// Waits (bounded) until /-/ready answers 200; a Prometheus that exits or stays unready fails
    /// the test with its log tail (a skip would hide it).
    func waitReady(seconds: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while (try? client().request("GET", "/-/ready"))?.status != 200 {
            guard process.isRunning else { throw TestEnvironmentFailure(description: "Prometheus exited (\(process.terminationStatus)); log tail:\n\(logTail)") }
            guard Date() < deadline else { throw TestEnvironmentFailure(description: "Prometheus not ready within \(seconds)s; log tail:\n\(logTail)") }
            usleep(50_000)
        }
    }

    /// SIGTERM, which makes Prometheus write its head and close its TSDB, with a deadline.
    func stop(file: StaticString = #filePath, line: UInt = #line) {
        if !stopChild(process, SIGTERM, within: 60) {
            XCTFail("Prometheus did not exit within 60s of SIGTERM; SIGKILLed. Log tail:\n\(logTail)", file: file, line: line)
        }
    }

    deinit { stopChild(process, SIGKILL, within: 10) }
}

func makeTemporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "tally-\(name)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// `tally dump` of one tenant, as text.
func tallyDump(storage: String, tenant: String, match: String? = nil) throws -> String {
    var arguments = ["dump", "--storage", storage, "--tenant", tenant]
    if let match { arguments += ["--match", match] }
    let result = try runCommand(Binaries.tally, arguments)
    guard result.status == 0 else { throw NSError(domain: "dump", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr]) }
    return result.stdout
}

/// Every path under `root`, relative to it, sorted.
func filesUnder(_ root: String) -> [String] {
    (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).sorted()
}
