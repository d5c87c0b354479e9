#if canImport(Glibc)
import Glibc
#endif

/// A process's CPU time and memory from /proc, the figures that survive a noisy shared machine.
public struct ProcessStats: Sendable {
    /// User plus system CPU seconds.
    public let cpuSeconds: Double
    /// Resident set now and at its peak, in bytes.
    public let residentBytes: Int
    public let peakResidentBytes: Int
    /// Resident anonymous memory (heap and stacks), without mapped files such as mmap'd blocks.
    public let anonymousBytes: Int

    public static func read(pid: Int32) -> ProcessStats? {
        guard let stat = readText("/proc/\(pid)/stat"), let status = readText("/proc/\(pid)/status"),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        func kilobytes(_ key: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0) * 1024
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ProcessStats(cpuSeconds: (user + system) / ticks, residentBytes: kilobytes("VmRSS"), peakResidentBytes: kilobytes("VmHWM"),
                            anonymousBytes: kilobytes("RssAnon"))
    }

    static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
