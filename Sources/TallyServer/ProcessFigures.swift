#if canImport(Glibc)
import Glibc
#endif
import TallyStorage

/// The server process's CPU, memory, descriptors and start time from /proc, under the names every
/// Prometheus client library gives them (`process_*`). A figure /proc does not give is left out.
struct ProcessFigures {
    var cpuSeconds: Double?
    var residentBytes: Double?
    var startTimeSeconds: Double?
    var openDescriptors: Int?
    var maxDescriptors: Int?

    static func read() -> ProcessFigures {
        var figures = ProcessFigures()
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        // /proc/self/stat: fields after "(comm)" start at field 3 (state); utime is field 14, stime 15,
        // starttime 22 (clock ticks after boot), rss 24 (pages).
        if let stat = text("/proc/self/stat"), let commEnd = stat.lastIndex(of: ")"), ticksPerSecond > 0 {
            let fields = stat[stat.index(after: commEnd)...].split(separator: " ")
            func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
            if let user = field(14), let system = field(15) { figures.cpuSeconds = (user + system) / ticksPerSecond }
            if let pages = field(24), pageSize > 0 { figures.residentBytes = pages * pageSize }
            let bootTime = text("/proc/stat")?.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) }
            if let started = field(22), let bootTime { figures.startTimeSeconds = bootTime + started / ticksPerSecond }
        }
        figures.openDescriptors = entries("/proc/self/fd")
        let limit = WALFileBudget.processDescriptorLimit
        if limit < .max { figures.maxDescriptors = limit }
        return figures
    }

    /// The Prometheus text format of the figures there are.
    var exposition: String {
        var out = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: String?) {
            guard let value else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        add("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpuSeconds.map { "\($0)" })
        add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", residentBytes.map { "\($0)" })
        add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", startTimeSeconds.map { "\($0)" })
        add("process_open_fds", "gauge", "Number of open file descriptors.", openDescriptors.map { "\($0)" })
        add("process_max_fds", "gauge", "Maximum number of open file descriptors.", maxDescriptors.map { "\($0)" })
        return out
    }

    /// A /proc file's text (its size reads as 0, so it is read to the end), nil if it cannot be read.
    private static func text(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return n == 0 ? String(decoding: bytes, as: UTF8.self) : nil }
            bytes.append(contentsOf: chunk[..<n])
        }
    }

    /// Entries of a directory but `.` and `..` (the descriptor reading it counts, as in other clients).
    private static func entries(_ path: String) -> Int? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return count
    }
}
