import ArgumentParser
import Foundation
import TallyLoad
import TallyStorage
#if canImport(Glibc)
import Glibc
#endif

/// The PromQL section: three questions a dashboard asks of the cost-question data, the same HTTP
/// requests to each system, timed one at a time after a warm-up, with the server's peak RSS over
/// the phase.
extension TallyBench {
    struct PromQLQuestion {
        let name: String
        /// The path and query string, without the tenant.
        let path: String
    }

    struct PromQLResult {
        var failure: String?
        /// The sample count each system answered to the check query.
        var storedSamples: Double?
        /// Seconds of each timed repetition, per question.
        var seconds: [[Double]] = []
        /// Each question's answer as "labels@time" -> value (series: "labels" -> 1).
        var answers: [[String: Double]] = []
        /// VmHWM over the query phase (reset before it through /proc/PID/clear_refs when allowed).
        var peakRSS = 0
        var peakIsPhaseOnly = false
        /// Blocks on disk (Tally and Prometheus).
        var blocks: Int?
    }

    /// The three questions over the `costDays` days of `dataset`: all end where its samples end.
    func promQLQuestions(_ dataset: KubecostDataset) -> (check: (String) -> String, questions: [PromQLQuestion]) {
        let end = Double(dataset.start + Int64(dataset.scrapes - 1) * 60_000) / 1000
        // The range query's steps on whole hours, as VictoriaMetrics would align them anyway.
        let rangeEnd = (end / 3600).rounded(.down) * 3600
        let start = rangeEnd - Double(costDays) * 86_400
        func q(_ text: String) -> String { LoopbackHTTP.escaped(text) }
        // Every sample the systems hold, one metric name at a time (`count_over_time` drops the name, so
        // the names' series would collide in one vector); the window covers the whole dataset
        // (VictoriaMetrics' windows are open on the left).
        let check = { (name: String) in
            "/api/v1/query?query=\(q("sum(count_over_time(\(name)[\(costDays + 2)d]))"))&time=\(end)"
        }
        return (check, [
            PromQLQuestion(name: "range, \(costDays) days at 1h: `sum by (cluster_id, namespace) (avg_over_time(container_memory_allocation_bytes[1h]))`",
                           path: "/api/v1/query_range?query=\(q("sum by (cluster_id, namespace) (avg_over_time(container_memory_allocation_bytes[1h]))"))"
                               + "&start=\(start)&end=\(rangeEnd)&step=3600"),
            PromQLQuestion(name: "instant subquery, 1 day at 1m: `sum by (namespace) (sum_over_time(container_memory_allocation_bytes[1d:1m]))`",
                           path: "/api/v1/query?query=\(q("sum by (namespace) (sum_over_time(container_memory_allocation_bytes[1d:1m]))"))&time=\(end)"),
            PromQLQuestion(name: "`/api/v1/series?match[]={job=\"kubecost\"}`, \(costDays) days",
                           path: "/api/v1/series?match[]=\(q("{job=\"kubecost\"}"))&start=\(start)&end=\(end)"),
        ])
    }

    /// Asks each question `promqlWarmups` times untimed and `promqlRepetitions`
    /// times timed, one at a time on one kept-alive connection. VictoriaMetrics' rollup result cache
    /// is emptied before every request: otherwise it would answer repeats from the cache, which
    /// neither other system has. That untimed request wakes the server's threads just before the
    /// timed one, so the other systems get one too (their ready endpoint): a server woken from idle
    /// takes a few tenths of a millisecond longer to answer on this machine, which is most of a
    /// short answer's time. Then counts the samples the system holds.
    func askPromQL(_ system: System, process: Process, client: LoopbackHTTP, dataset: KubecostDataset, directory: String) -> PromQLResult {
        var result = PromQLResult()
        if !system.name.hasPrefix("VictoriaMetrics") {
            result.blocks = try? BlockCatalog.list(tenantDirectory: system.name == "Tally" ? directory + "/bench" : directory).count
        }
        let (check, questions) = promQLQuestions(dataset)
        let connection = LoopbackConnection(client)
        let isVictoriaMetrics = system.name.hasPrefix("VictoriaMetrics")
        func ask(_ path: String) throws -> (seconds: Double, body: [UInt8]) {
            _ = try connection.request("GET", isVictoriaMetrics ? "/internal/resetRollupResultCache" : system.readyPath, headers: system.headers)
            let started = DispatchTime.now().uptimeNanoseconds
            let r = try connection.request("GET", path, headers: system.headers)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            guard r.status == 200 else { throw ValidationError("\(system.name) answered \(r.status) to \(path): \(r.body.prefix(300))") }
            return (seconds, r.bytes)
        }
        do {
            let pid = process.processIdentifier
            // Linux resets VmHWM to the current RSS on "5" (Documentation/filesystems/proc.rst).
            result.peakIsPhaseOnly = (try? "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)) != nil
            for question in questions {
                for _ in 0..<promqlWarmups { _ = try ask(question.path) }
                var times: [Double] = []
                var answer: [String: Double] = [:]
                for _ in 0..<promqlRepetitions {
                    let (seconds, body) = try ask(question.path)
                    times.append(seconds)
                    answer = try Self.promQLAnswer(body)
                }
                result.seconds.append(times)
                result.answers.append(answer)
            }
            result.peakRSS = ProcessStats.read(pid: pid)?.peakResidentBytes ?? 0
            // Asked last, so that the memory a count over every sample takes is not in the peaks; nothing is written meanwhile.
            let names = try JSONSerialization.jsonObject(with: Data(ask("/api/v1/label/__name__/values").body)) as? [String: Any]
            var stored = 0.0
            for name in names?["data"] as? [String] ?? [] { stored += try Self.promQLAnswer(ask(check(name)).body).values.first ?? 0 }
            result.storedSamples = stored
        } catch {
            result.failure = "\(error)"
        }
        return result
    }

    /// A Prometheus API answer as "labels@time" -> value: vectors, matrices and scalars; the
    /// series endpoint's label sets -> 1.
    static func promQLAnswer(_ body: [UInt8]) throws -> [String: Double] {
        guard let root = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { throw ValidationError("not a JSON object") }
        func labels(_ any: Any?) -> String {
            ((any as? [String: String]) ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        func point(_ any: Any?) -> (String, Double)? {
            guard let pair = any as? [Any], pair.count == 2, let t = pair[0] as? NSNumber, let v = (pair[1] as? String).flatMap(Double.init) else { return nil }
            return (String(format: "%.3f", t.doubleValue), v)
        }
        var out: [String: Double] = [:]
        if let sets = root["data"] as? [[String: String]] {
            for set in sets { out[labels(set)] = 1 }
            return out
        }
        guard let data = root["data"] as? [String: Any] else { throw ValidationError("no data") }
        if let scalar = point(data["result"]) { return ["@" + scalar.0: scalar.1] }
        for series in data["result"] as? [[String: Any]] ?? [] {
            let name = labels(series["metric"])
            if let (t, v) = point(series["value"]) { out[name + "@" + t] = v }
            for p in series["values"] as? [Any] ?? [] { if let (t, v) = point(p) { out[name + "@" + t] = v } }
        }
        return out
    }

    func renderPromQL(_ systems: [System], _ results: [PromQLResult], dataset: KubecostDataset) -> String {
        let (_, questions) = promQLQuestions(dataset)
        var out = "\n### PromQL over the same \(costDays) days\n\n"
        out += "Each server restarted on its cost-question store (\(dataset.seriesCount) series, \(dataset.sampleCount) samples) after the cost "
        out += "question: Tally's blocks compacted by `tally compact` above, as its server does every 5 minutes; Prometheus' by itself "
        out += "while it ran (blocks: " + zip(systems, results).compactMap { s, r in r.blocks.map { "\(s.name) \($0)" } }.joined(separator: ", ") + "). "
        out += "Once the fresh process is idle, each question is asked \(promqlWarmups) times untimed, then \(promqlRepetitions) times timed, one request at a "
        out += "time on one kept-alive connection, from sending the request to the last byte of the answer (uncompressed JSON). "
        out += "VictoriaMetrics' rollup result cache is emptied (`/internal/resetRollupResultCache`, untimed) before each request, since "
        out += "Tally and Prometheus keep no query results; they get an untimed request to their ready endpoint at the same point, so that "
        out += "every server has just answered one when the timed request comes. Index caches stay as they are in all three: VictoriaMetrics' series-search "
        out += "caches, and Tally's answers to series questions from the blocks a range wholly covers, which question 3 reuses. Peak RSS: the server's `VmHWM` after the last question, reset to the current RSS through "
        out += "`/proc/PID/clear_refs` before the first. The sample count is asked after the timed questions, so that its own memory is not in "
        out += "the peaks.\n\n"
        for (i, question) in questions.enumerated() { out += "\(i + 1). \(question.name)\n" }
        out += "\n"
        out += "| figure | " + systems.map(\.name).joined(separator: " | ") + " | Tally / VictoriaMetrics | Tally / Prometheus |\n"
        out += "|---|" + String(repeating: "---|", count: systems.count + 2) + "\n"
        let vm = systems.firstIndex { $0.name.hasPrefix("VictoriaMetrics") }
        let prometheus = systems.firstIndex { $0.name.hasPrefix("Prometheus") }
        func ratio(_ values: [Double?], _ peer: Int?) -> String {
            guard let peer, let tally = values[0], let other = values[peer], other > 0 else { return "n/a" }
            return String(format: "%.2f", tally / other)
        }
        func line(_ label: String, _ values: [Double?], format: String) -> String {
            "| \(label) | " + values.map { $0.map { String(format: format, $0) } ?? "failed" }.joined(separator: " | ")
                + " | \(ratio(values, vm)) | \(ratio(values, prometheus)) |\n"
        }
        out += line("samples held: `sum(count_over_time(NAME[\(costDays + 2)d]))` over every `__name__`", results.map(\.storedSamples), format: "%.0f")
        for i in questions.indices {
            let ms = results.map { r in r.failure == nil && i < r.seconds.count ? r.seconds[i].sorted().map { $0 * 1000 } : nil }
            out += line("\(i + 1): median latency (ms)", ms.map { $0.map { $0[$0.count / 2] } }, format: "%.1f")
            out += line("\(i + 1): p90 latency (ms)", ms.map { $0.map { $0[min($0.count - 1, Int((Double($0.count) * 0.9).rounded(.up)) - 1)] } }, format: "%.1f")
        }
        out += line("peak RSS over the queries (MiB)", results.map { $0.failure == nil ? Double($0.peakRSS) / 1_048_576 : nil }, format: "%.1f")
        for (system, result) in zip(systems, results) {
            if let failure = result.failure { out += "\n\(system.name) failed: \(failure)\n" }
            if result.failure == nil && !result.peakIsPhaseOnly { out += "\n\(system.name): VmHWM could not be reset; its peak includes the ingest.\n" }
        }
        // Agreement with Tally's answers, question by question.
        for (system, result) in zip(systems, results).dropFirst() where result.failure == nil && results[0].failure == nil {
            var parts: [String] = []
            for i in questions.indices {
                let mine = results[0].answers[i], theirs = result.answers[i]
                let shared = mine.keys.filter { theirs[$0] != nil }
                let worst = shared.map { key in
                    let (a, b) = (mine[key]!, theirs[key]!)
                    return a == b ? 0 : abs(a - b) / max(abs(a), abs(b))
                }.max() ?? 0
                parts.append("\(i + 1): \(shared.count) of \(mine.count) points shared (\(theirs.count) theirs), largest relative difference "
                             + String(format: "%.2e", worst))
            }
            out += "\nAnswers of \(system.name) against Tally's: " + parts.joined(separator: "; ") + "."
        }
        return out + "\n"
    }
}
