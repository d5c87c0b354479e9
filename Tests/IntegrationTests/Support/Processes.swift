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

    static func debian(_ name: String) throws -> String {
        let path = "/usr/bin/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("\(path) is missing: `make test` installs Debian's prometheus package")
        }
        return path
    }
}

/// Runs a command to completion with a time limit and returns its exit status and output.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain both pipes while the process runs so a large output cannot block it.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        process.terminate()
        throw NSError(domain: "run", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(executable) timed out after \(timeout)s"])
    }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A `tally serve` child process on a loopback port with its own storage root.
final class TallyServerProcess {
    let storage: String
    let port: Int
    let process = Process()
    let logPath: String

    /// `fileDescriptorLimit` runs the server under `prlimit --nofile`, which execs it: the process
    /// is the server itself.
    init(storage: String, port: Int = LoopbackHTTP.freePort(), extraArguments: [String] = [], environment: [String: String] = [:],
         fileDescriptorLimit: Int? = nil) throws {
        self.storage = storage
        self.port = port
        logPath = storage + ".log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        let arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--storage", storage] + extraArguments
        if let fileDescriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(fileDescriptorLimit)", "--", Binaries.tally] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Binaries.tally)
            process.arguments = arguments
        }
        process.standardOutput = log
        process.standardError = log
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        try process.run()
    }

    var client: LoopbackHTTP { LoopbackHTTP(port: port) }

    /// Waits (bounded) until /-/ready answers 200.
    func waitReady(seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !process.isRunning { throw NSError(domain: "tally", code: 2, userInfo: [NSLocalizedDescriptionKey: "tally exited: \(log)"]) }
            if let r = try? client.request("GET", "/-/ready"), r.status == 200 { return }
            usleep(20_000)
        }
        throw NSError(domain: "tally", code: 3, userInfo: [NSLocalizedDescriptionKey: "tally not ready in \(seconds)s: \(log)"])
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
    }

    deinit { stop(SIGKILL) }
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
