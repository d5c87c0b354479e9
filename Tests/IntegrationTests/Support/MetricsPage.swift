import TallyLoad
import XCTest

/// A /metrics page in the Prometheus text format, read line by line as a scraper reads it: each
/// sample by its series exactly as printed (`name{labels}`).
struct MetricsPage {
    let text: String
    let samples: [String: Double]

    init(_ text: String) {
        self.text = text
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        self.samples = samples
    }

    /// The page a server serves now (200 required).
    init(of server: TallyServerProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        let answer = try server.client.request("GET", "/metrics")
        XCTAssertEqual(answer.status, 200, answer.body, file: file, line: line)
        self.init(answer.body)
    }

    subscript(_ series: String) -> Double? { samples[series] }
}
