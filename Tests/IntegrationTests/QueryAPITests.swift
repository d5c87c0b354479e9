import Foundation
import TallyLoad
import TallyWire
import XCTest

/// Prometheus' query API (`/api/v1/query`, `query_range`, `series`, `labels`, `label/<name>/values`,
/// `metadata`, `status/buildinfo`, `format_query`) and `tally query`, against a real server.
final class QueryAPITests: XCTestCase {
    /// Whole minutes, so every timestamp prints without a fraction.
    let now = Int64(Date().timeIntervalSince1970) / 60 * 60_000

    /// Every sample in the last 10 minutes, one a minute; `value` at the newest.
    private func write(_ tally: TallyServerProcess, _ series: [[(String, String)]], value: Double = 2, headers: [(String, String)], path: String = "/api/v1/write") throws {
        var encoder = WriteRequestEncoder()
        for labels in series {
            encoder.addSeries(labels: labels, samples: (0..<10).map { k in
                WireSample(timestamp: now - Int64(9 - k) * 60_000, valueBits: (k == 9 ? value : Double(k)).bitPattern)
            })
        }
        let r = try tally.client.request("POST", path, headers: headers + [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")],
                                         body: encoder.compressed())
        XCTAssertEqual(r.status, 204, r.body)
    }

    /// `acme` (by header), `other` (by another header), and the default tenant (naming none).
    private func serverWithThreeTenants(_ root: String, arguments: [String] = []) throws -> TallyServerProcess {
        let tally = try TallyServerProcess(storage: root + "/storage", extraArguments: arguments)
        try tally.waitReady()
        try write(tally, [[("__name__", "acme_metric"), ("job", "a")], [("__name__", "up"), ("job", "acme-job")]], headers: [("THANOS-TENANT", "acme")])
        try write(tally, [[("__name__", "other_metric"), ("job", "o")], [("__name__", "up"), ("job", "other-job")]], headers: [("X-Scope-OrgID", "other")])
        try write(tally, [[("__name__", "default_metric"), ("job", "d")]], headers: [])
        return tally
    }

    private func json(_ response: LoopbackHTTP.Response, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(response.headers["content-type"], "application/json", file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.bytes)) as? [String: Any], response.body, file: file, line: line)
    }

    /// Every metric name an answer mentions, whatever its shape.
    private func names(_ response: LoopbackHTTP.Response) throws -> Set<String> {
        let object = try json(response)
        XCTAssertEqual(object["status"] as? String, "success", response.body)
        var out = Set<String>()
        func visit(_ value: Any?) {
            if let labels = value as? [String: String], let name = labels["__name__"] { out.insert(name) }
            if let object = value as? [String: Any] { object.values.forEach(visit) }
            if let list = value as? [Any] { list.forEach(visit) }
            if let name = value as? String, name.hasSuffix("_metric") || name == "up" { out.insert(name) }
        }
        visit(object["data"])
        return out
    }

    func testEveryEndpointShowsOnlyTheNamedTenantsSeries() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try serverWithThreeTenants(root)
        let seconds = now / 1000
        let window = "start=\(seconds - 3600)&end=\(seconds)"
        let form = [("Content-Type", "application/x-www-form-urlencoded")]
        typealias Ask = (name: String, method: String, path: String, body: String)
        let asks: [Ask] = [
            ("query", "GET", "/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D&time=\(seconds)", ""),
            ("query POST", "POST", "/api/v1/query", "query=%7B__name__%3D~%22.%2B%22%7D&time=\(seconds)"),
            ("query_range", "GET", "/api/v1/query_range?query=%7Bjob%3D~%22.%2B%22%7D&\(window)&step=60", ""),
            ("query_range POST", "POST", "/api/v1/query_range", "query=%7Bjob%3D~%22.%2B%22%7D&\(window)&step=60"),
            ("series", "GET", "/api/v1/series?match[]=%7Bjob%3D~%22.%2B%22%7D&\(window)", ""),
            ("series POST", "POST", "/api/v1/series", "match[]=%7Bjob%3D~%22.%2B%22%7D&\(window)"),
            ("labels", "GET", "/api/v1/label/__name__/values?\(window)", ""),
            ("label values", "GET", "/api/v1/label/__name__/values", ""),
        ]
        // How each tenant is named, and what it must see.
        let namings: [(String, [(String, String)], String, Set<String>)] = [
            ("header", [("THANOS-TENANT", "acme")], "", ["acme_metric", "up"]),
            ("other header", [("X-Scope-OrgID", "other")], "", ["other_metric", "up"]),
            ("?tenant=", [], "tenant=other", ["other_metric", "up"]),
            ("no tenant", [], "", ["default_metric"]),
            ("unknown tenant", [("THANOS-TENANT", "nobody")], "", []),
            ("unknown ?tenant=", [], "tenant=nobody", []),
        ]
        for (how, headers, parameter, expected) in namings {
            for ask in asks {
                var path = ask.path
                if !parameter.isEmpty { path += (path.contains("?") ? "&" : "?") + parameter }
                let r = try tally.client.request(ask.method, path, headers: headers + (ask.method == "POST" ? form : []), body: Array(ask.body.utf8))
                XCTAssertEqual(r.status, 200, "\(how) \(ask.name): \(r.body)")
                XCTAssertEqual(try names(r), expected, "\(how) \(ask.name): \(r.body)")
            }
            // Label names: every tenant has __name__ and job, so ask for the values of job instead.
            var path = "/api/v1/label/job/values"
            if !parameter.isEmpty { path += "?" + parameter }
            let jobs = try json(try tally.client.request("GET", path, headers: headers))["data"] as? [String]
            let expectedJobs: [String] = switch expected {
            case ["acme_metric", "up"]: ["a", "acme-job"]
            case ["other_metric", "up"]: ["o", "other-job"]
            case ["default_metric"]: ["d"]
            default: []
            }
            XCTAssertEqual(jobs, expectedJobs, how)
            var labelsPath = "/api/v1/labels"
            if !parameter.isEmpty { labelsPath += "?" + parameter }
            let labels = try json(try tally.client.request("GET", labelsPath, headers: headers))["data"] as? [String]
            XCTAssertEqual(labels, expected.isEmpty ? [] : ["__name__", "job"], how)
        }
        // Sources that disagree are refused, in Prometheus' error shape.
        let disagree = try tally.client.request("GET", "/api/v1/series?match[]=up&tenant=other", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(disagree.status, 400)
        XCTAssertEqual(try json(disagree)["errorType"] as? String, "bad_data")
        // Asking never creates a tenant.
        XCTAssertFalse(FileManager.default.fileExists(atPath: tally.storage + "/nobody"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tally.storage + "/.no-tenant"))
    }

    /// The requests Grafana's Prometheus data source sends, and the answers' exact bytes where
    /// Grafana parses them.
    func testGrafanasRequestsGetTheAnswersGrafanaParses() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try serverWithThreeTenants(root)
        let acme = [("THANOS-TENANT", "acme")]
        let seconds = now / 1000

        // Health check ("Save & test"), on a tenant that has never written too.
        for headers in [acme, [("THANOS-TENANT", "never-wrote")]] {
            let health = try tally.client.request("GET", "/api/v1/query?query=1%2B1&time=1700000000.5", headers: headers)
            XCTAssertEqual(health.status, 200, health.body)
            XCTAssertEqual(health.body, #"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"2"]}}"#)
        }
        let build = try json(try tally.client.request("GET", "/api/v1/status/buildinfo", headers: acme))
        let info = try XCTUnwrap(build["data"] as? [String: Any])
        XCTAssertEqual(info["version"] as? String, "2.42.0")
        XCTAssertNil(info["features"])
        XCTAssertNotNil(info["revision"] as? String)

        // Metric names for the query editor; label names and values for a selector; series.
        let names = try tally.client.request("GET", "/api/v1/label/__name__/values?start=\(seconds - 3600)&end=\(seconds)", headers: acme)
        XCTAssertEqual(names.body, #"{"status":"success","data":["acme_metric","up"]}"#)
        let labels = try tally.client.request("GET", "/api/v1/labels?match%5B%5D=up&start=\(seconds - 3600)&end=\(seconds)", headers: acme)
        XCTAssertEqual(labels.body, #"{"status":"success","data":["__name__","job"]}"#)
        let values = try tally.client.request("GET", "/api/v1/label/job/values?match%5B%5D=up&start=\(seconds - 3600)&end=\(seconds)", headers: acme)
        XCTAssertEqual(values.body, #"{"status":"success","data":["acme-job"]}"#)
        let series = try tally.client.request("GET", "/api/v1/series?match%5B%5D=%7Bjob%3D~%22a.*%22%7D&start=\(seconds - 3600)&end=\(seconds)&limit=1", headers: acme)
        XCTAssertEqual(series.body, #"{"status":"success","data":[{"__name__":"acme_metric","job":"a"}],"warnings":["results truncated due to limit"]}"#)
        let metadata = try tally.client.request("GET", "/api/v1/metadata", headers: acme)
        XCTAssertEqual(metadata.body, #"{"status":"success","data":{}}"#)

        // A panel: POST query_range with a form body; one point a minute, the newest 2.
        let form = "query=up&start=\(seconds - 120)&end=\(seconds)&step=60"
        let range = try tally.client.request("POST", "/api/v1/query_range", headers: acme + [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8))
        XCTAssertEqual(range.status, 200, range.body)
        XCTAssertEqual(range.body, #"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"acme-job"},"values":[[\#(seconds - 120),"7"],[\#(seconds - 60),"8"],[\#(seconds),"2"]]}]}}"#)
        let instant = try tally.client.request("GET", "/api/v1/query?query=up&time=\(seconds).25", headers: acme)
        XCTAssertEqual(instant.body, #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"acme-job"},"value":[\#(seconds).250,"2"]}]}}"#)
        let string = try tally.client.request("GET", "/api/v1/query?query=%22a%22&time=10", headers: acme)
        XCTAssertEqual(string.body, #"{"status":"success","data":{"resultType":"string","result":[10,"a"]}}"#)

        // gzip when asked: the same bytes once inflated.
        let everything = "/api/v1/query_range?query=%7Bjob%3D~%22.%2B%22%7D&start=\(seconds - 600)&end=\(seconds)&step=15"
        let plain = try tally.client.request("GET", everything, headers: acme)
        let zipped = try tally.client.request("GET", everything, headers: acme + [("Accept-Encoding", "gzip")])
        XCTAssertEqual(zipped.headers["content-encoding"], "gzip")
        XCTAssertLessThan(zipped.bytes.count, plain.bytes.count)
        let gz = root + "/answer.gz"
        XCTAssertTrue(FileManager.default.createFile(atPath: gz, contents: Data(zipped.bytes)))
        XCTAssertEqual(try runCommand("/bin/gzip", ["-dc", gz]).stdout, plain.body)

        // format_query: Prometheus' canonical form.
        let formatted = try tally.client.request("GET", "/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)")
        XCTAssertEqual(formatted.body, #"{"status":"success","data":"sum by (job) (rate(x[5m]))"}"#)
        // Values in Go's forms.
        let big = try tally.client.request("GET", "/api/v1/query?query=1e21&time=1", headers: acme)
        XCTAssertEqual(big.body, #"{"status":"success","data":{"resultType":"scalar","result":[1,"1000000000000000000000"]}}"#)
        let inf = try tally.client.request("GET", "/api/v1/query?query=-Inf&time=1", headers: acme)
        XCTAssertTrue(inf.body.contains(#""-Inf""#), inf.body)
    }

    /// A point's time is whole seconds and, when there are any, three digits of milliseconds
    /// (Prometheus' `jsonutil.MarshalTimestamp`), before the epoch too.
    func testPointTimesAreWrittenAsPrometheusWritesThem() throws {
        let root = try makeTemporaryDirectory("query-api-times")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        for (time, written) in [("0", "0"), ("0.05", "0.050"), ("1.005", "1.005"), ("12.34", "12.340"), ("-1.005", "-1.005"),
                                ("-0.5", "-0.500"), ("1700000000.999", "1700000000.999"), ("-86400", "-86400")] {
            let r = try tally.client.request("GET", "/api/v1/query?query=vector(1)&time=\(time)")
            XCTAssertEqual(r.body, #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[\#(written),"1"]}]}}"#, time)
        }
        let range = try tally.client.request("GET", "/api/v1/query_range?query=vector(0.1)&start=-0.25&end=0.5&step=0.375")
        XCTAssertEqual(range.body, #"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[-0.250,"0.1"],[0.125,"0.1"],[0.500,"0.1"]]}]}}"#)
    }

    /// A parameter given twice means its first value, a POST body's before the URL's, and a pair with
    /// a `;` or a broken escape is left out, as Go's `net/http` reads a form for Prometheus.
    func testRepeatedParametersMeanTheirFirstValueAsInGo() throws {
        let root = try makeTemporaryDirectory("query-api-form")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=time()&time=7&time=9&query=1").body,
                       #"{"status":"success","data":{"resultType":"scalar","result":[7,"7"]}}"#)
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/query?query=2&time=7", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                body: Array("query=time()&query=3&time=5".utf8)).body,
                       #"{"status":"success","data":{"resultType":"scalar","result":[5,"5"]}}"#)
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=time()&time=5;&time=7").body,
                       #"{"status":"success","data":{"resultType":"scalar","result":[7,"7"]}}"#)
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=time()&time=%zz&time=8").body,
                       #"{"status":"success","data":{"resultType":"scalar","result":[8,"8"]}}"#)
    }

    /// What Go's server does that clients lean on: a `Date` on every answer (IMF-fixdate), the body
    /// of a GET never read as a form, a form's media type with parameters, and Prometheus' own texts
    /// for its smallest and largest times taken as those times (a text a second off is refused).
    func testDatesFormBodiesAndPrometheusTimeTextsAreAsInGo() throws {
        let root = try makeTemporaryDirectory("query-api-go")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        let imfFixdate = DateFormatter()
        imfFixdate.locale = Locale(identifier: "en_US_POSIX")
        imfFixdate.timeZone = TimeZone(identifier: "UTC")
        imfFixdate.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        for (method, path) in [("GET", "/api/v1/status/buildinfo"), ("GET", "/nowhere"), ("POST", "/api/v1/write"), ("GET", "/api/v1/query")] {
            let answer = try tally.client.request(method, path)
            let date = try XCTUnwrap(answer.headers["date"], "\(method) \(path): \(answer.headers)")
            let when = try XCTUnwrap(imfFixdate.date(from: date), date)
            XCTAssertEqual(imfFixdate.string(from: when), date)
            XCTAssertLessThan(abs(when.timeIntervalSinceNow), 5, date)
        }

        let form = "application/x-www-form-urlencoded"
        let one = #"{"status":"success","data":{"resultType":"scalar","result":[100,"1"]}}"#
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=1&time=100", headers: [("Content-Type", form)], body: Array("query=2".utf8)).body, one)
        let bodyOnly = try tally.client.request("GET", "/api/v1/series", headers: [("Content-Type", form)], body: Array("match[]=up".utf8))
        XCTAssertEqual(bodyOnly.status, 400, bodyOnly.body)
        for (contentType, expected) in [("Application/X-WWW-Form-Urlencoded; charset=UTF-8", #"[100,"3"]"#), (form + "x", #"[100,"1"]"#)] {
            let answer = try tally.client.request("POST", "/api/v1/query?query=1&time=100", headers: [("Content-Type", contentType)], body: Array("query=3".utf8))
            XCTAssertTrue(answer.body.contains(expected), "\(contentType): \(answer.body)")
        }

        // Go's ParseForm refuses a broken escape or a `;`: `series` reads by it, `query` by FormValue.
        for (path, status) in [("/api/v1/series?match[]=up&x=%zz", 400), ("/api/v1/series?match[]=up;x", 400), ("/api/v1/series?match[]=up", 200),
                               ("/api/v1/query?query=1&x=%zz", 200)] {
            let answer = try tally.client.request("GET", path)
            XCTAssertEqual(answer.status, status, "\(path): \(answer.body)")
            if status == 400 { XCTAssertTrue(answer.body.contains(#""error":"error parsing form values: invalid"#), answer.body) }
        }
        for (name, text, status) in [("end", "292277025-08-18T07:12:54.999999999Z", 200), ("start", "-292273086-05-16T16:47:06Z", 200),
                                     ("end", "292277025-08-17T07:12:55.999999999Z", 400)] {
            let answer = try tally.client.request("GET", "/api/v1/labels?\(name)=\(text)")
            XCTAssertEqual(answer.status, status, "\(name)=\(text): \(answer.body)")
        }
    }

    /// A `multipart/form-data` body (what a browser's `FormData` sends) is read as Go's `FormValue`
    /// reads it: its values after the URL's, files left out, and nothing from a body that does not
    /// parse.
    func testMultipartFormBodiesAreReadAsGoReadsThem() throws {
        let root = try makeTemporaryDirectory("query-api-multipart")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        func multipart(_ parts: [String], boundary: String = "x-7MA4YWxk", close: Bool = true) -> [UInt8] {
            Array((parts.map { "--\(boundary)\r\n\($0)\r\n" }.joined() + (close ? "--\(boundary)--\r\n" : "")).utf8)
        }
        func field(_ name: String, _ value: String) -> String { "Content-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)" }
        func ask(_ path: String, _ body: [UInt8], boundary: String = "x-7MA4YWxk") throws -> String {
            try tally.client.request("POST", path, headers: [("Content-Type", "multipart/form-data; boundary=\"\(boundary)\"")], body: body).body
        }
        let answer = { (value: String) in #"{"status":"success","data":{"resultType":"scalar","result":[100,""# + value + #""]}}"# }
        XCTAssertEqual(try ask("/api/v1/query", multipart([field("query", "1+1"), field("time", "100")])), answer("2"))
        XCTAssertEqual(try ask("/api/v1/query?query=3", multipart([field("query", "1+1"), field("time", "100")])), answer("3"), "the URL's value first")
        XCTAssertEqual(try ask("/api/v1/query", multipart([field("query", "4\r\n"), "Content-Type: text/plain\r\n" + field("time", "100")])), answer("4"))
        let file = "Content-Disposition: form-data; name=\"query\"; filename=\"q.txt\"\r\nContent-Type: text/plain\r\n\r\n5"
        XCTAssertTrue(try ask("/api/v1/query", multipart([file, field("time", "100")])).contains("no expression found"), "a file is no value")
        XCTAssertTrue(try ask("/api/v1/query", multipart([field("query", "6"), field("time", "100")], close: false)).contains("no expression found"),
                      "an unfinished body gives nothing")
        XCTAssertTrue(try ask("/api/v1/query", multipart([field("query", "7")]), boundary: "other").contains("no expression found"))
    }

    func testBadInputIs400BadDataWithAMessageAndNeverACrash() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try serverWithThreeTenants(root)
        let cases: [(String, String)] = [
            ("/api/v1/query_range?query=up&start=10&end=20&step=0", #"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"#),
            ("/api/v1/query_range?query=up&start=10&end=20&step=-1", "zero or negative query resolution step"),
            ("/api/v1/query_range?query=up&start=20&end=10&step=1", #"invalid parameter \"end\": end timestamp must not be before start time"#),
            ("/api/v1/query_range?query=up&start=0&end=11001&step=1", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"),
            ("/api/v1/query_range?query=up&start=-900000000000000&end=900000000000000&step=0.001", "exceeded maximum resolution of 11,000 points"),
            ("/api/v1/query_range?query=up&start=0&end=1&step=1e300", "It overflows int64"),
            ("/api/v1/query_range?query=up&start=0&end=1&step=NaN", "to a valid duration"),
            ("/api/v1/query_range?query=up&start=0&end=1&step=5x", #"invalid parameter \"step\": cannot parse \"5x\" to a valid duration"#),
            ("/api/v1/query_range?query=up&start=0&end=1", #"invalid parameter \"step\""#),
            ("/api/v1/query_range?query=up&end=1&step=1", #"invalid parameter \"start\": cannot parse \"\" to a valid timestamp"#),
            ("/api/v1/query_range?query=up&start=1e300&end=1&step=1", #"invalid parameter \"start\""#),
            ("/api/v1/query?query=up&time=yesterday", #"invalid parameter \"time\": Invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp"#),
            ("/api/v1/query?query=up&time=2024-13-01T00:00:00Z", #"invalid parameter \"time\""#),
            ("/api/v1/query?query=up&time=Inf", #"invalid parameter \"time\""#),
            ("/api/v1/query?query=up&timeout=soon", #"invalid parameter \"timeout\""#),
            ("/api/v1/query?query=sum(", #"invalid parameter \"query\": 1:5: parse error"#),
            ("/api/v1/query?query=", #"invalid parameter \"query\""#),
            ("/api/v1/query?query=rate(up)", "expected type range vector"),
            ("/api/v1/format_query?query=up%7B", #"invalid parameter \"query\""#),
            ("/api/v1/series?start=1", "no match[] parameter provided"),
            ("/api/v1/series?match[]=%7B%7D", #"invalid parameter \"match[]\": match[] must contain at least one non-empty matcher"#),
            ("/api/v1/series?match[]=rate(up%5B5m%5D)", #"invalid parameter \"match[]\": 1:5: parse error: unexpected \"(\""#),
            ("/api/v1/series?match[]=up%7Ba%3D~%22(%22%7D", "error parsing regexp"),
            ("/api/v1/series?match[]=up%7B", #"invalid parameter \"match[]\""#),
            ("/api/v1/series?match[]=up&limit=x", #"invalid parameter \"limit\": strconv.Atoi: parsing \"x\": invalid syntax"#),
            ("/api/v1/series?match[]=up&limit=-1", "limit must be non-negative"),
            ("/api/v1/series?match[]=up&limit=99999999999999999999999", "value out of range"),
            ("/api/v1/labels?match[]=%7Bjob%3D~%22.*%22%7D", "match[] must contain at least one non-empty matcher"),
            ("/api/v1/labels?start=x", #"invalid parameter \"start\""#),
            ("/api/v1/label/1bad/values", #"invalid label name: \"1bad\""#),
            ("/api/v1/label/%ff/values", #"invalid label name: \"%ff\""#),
            ("/api/v1/query_range?query=up&start=0&end=0.1&step=0.0005", #"invalid parameter \"step\": query resolution step widths under 1ms are not accepted"#),
            ("/api/v1/query?query=up&time=2026-02-30T00:00:00Z", #"invalid parameter \"time\""#),
            ("/api/v1/query?query=up&time=0x10", #"invalid parameter \"time\""#),
            ("/api/v1/label/job/values?end=never", #"invalid parameter \"end\""#),
            ("/api/v1/query?query=up&tenant=../etc", "invalid tenant"),
            ("/api/v1/metadata?limit=x", "limit must be a number"),
            // Bytes that are not UTF-8 stay in the parameter (as Go keeps them), so it fails to parse.
            ("/api/v1/query?query=up&time=%ff", #"invalid parameter \"time\""#),
            ("/api/v1/query?query=up&time=%ff&time=1", #"invalid parameter \"time\""#),
            ("/api/v1/query?query=%ff", #"invalid parameter \"query\""#),
            ("/api/v1/series?match[]=up%7Bjob%3D%22%ff%22%7D&match[]=up", #"invalid parameter \"match[]\""#),
            ("/api/v1/labels?start=%ff", #"invalid parameter \"start\""#),
            ("/api/v1/query?query=up&tenant=acme%ff", "invalid tenant"),
            // Endpoints that read only memory refuse it too, rather than answer it as an empty tenant.
            ("/api/v1/metadata?tenant=..", "invalid tenant"),
            ("/api/v1/query_exemplars?query=up&tenant=..", "invalid tenant"),
            ("/federate?match[]=up&tenant=..", "invalid tenant"),
        ]
        for (path, message) in cases {
            let r = try tally.client.request("GET", path)
            XCTAssertEqual(r.status, 400, "\(path): \(r.body)")
            let object = try json(r)
            XCTAssertEqual(object["status"] as? String, "error", path)
            XCTAssertEqual(object["errorType"] as? String, "bad_data", path)
            XCTAssertTrue(r.body.contains(message), "\(path): \(r.body)")
        }
        // Methods Prometheus does not take get 405 and the ones it does.
        let delete = try tally.client.request("DELETE", "/api/v1/query?query=up")
        XCTAssertEqual(delete.status, 405)
        XCTAssertEqual(delete.headers["allow"], "GET, POST")
        XCTAssertEqual(try tally.client.request("POST", "/api/v1/label/job/values").headers["allow"], "GET")
        // An empty name leaves an empty segment: 301 to the clean path, as Prometheus' server answers.
        let emptyName = try tally.client.request("GET", "/api/v1/label//values")
        XCTAssertEqual(emptyName.status, 301)
        XCTAssertEqual(emptyName.headers["location"], "/api/v1/label/values")
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/label/values").status, 404)
        // Writes still get their own 405, now with Allow.
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/write").headers["allow"], "POST")
        // Still up, still writing.
        try write(tally, [[("__name__", "after"), ("job", "x")]], headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=1&time=1").status, 200)
    }

    /// A query too long for the URL (the HTTP parser takes 80 KiB of request line and headers) gets
    /// 431 and what to do instead, not a bare 400; the same query as a POST form is answered.
    func testARequestHeadPastTheParsersLimitIs431WithAReason() throws {
        let root = try makeTemporaryDirectory("query-api-long")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        // A string literal, so the request is just past the limit (and the server reads all of it).
        let text = String(repeating: "a", count: 82_000)
        let query = "\"" + text + "\""
        for _ in 0..<5 {
            let r = try tally.client.request("GET", "/api/v1/query?time=1&query=" + LoopbackHTTP.escaped(query))
            XCTAssertEqual(r.status, 431, r.body)
            XCTAssertEqual(r.headers["connection"], "close")
            XCTAssertTrue(r.body.contains("over 80 KiB; send a long query as a POST form body"), r.body)
        }
        let posted = try tally.client.request("POST", "/api/v1/query", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                              body: Array(("time=1&query=" + LoopbackHTTP.escaped(query)).utf8))
        XCTAssertEqual(posted.body, #"{"status":"success","data":{"resultType":"string","result":[1,"\#(text)"]}}"#)
        // A request the parser cannot read at all still gets 400, with the parser's reason.
        let fd = try tally.client.connect()
        defer { close(fd) }
        try LoopbackHTTP.sendAll(fd, Array("NOT-HTTP\r\n\r\n".utf8))
        var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 4096)
        while try LoopbackHTTP.receive(fd, into: &received, buffer: &buffer) {}
        let answer = String(decoding: received, as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), answer)
        XCTAssertTrue(answer.hasSuffix("\r\n\r\nmalformed HTTP request: invalid HTTP method\n"), answer)
    }

    func testQueriesPastALimitGetPrometheusErrorsWhileWritesGoOn() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try serverWithThreeTenants(root, arguments: ["--query.max-samples", "1", "--query.max-concurrency", "1", "--query.timeout", "30s"])
        let acme = [("THANOS-TENANT", "acme")]
        let seconds = now / 1000
        let tooMany = try tally.client.request("GET", "/api/v1/query?query=%7Bjob%3D~%22.%2B%22%7D&time=\(seconds)", headers: acme)
        XCTAssertEqual(tooMany.status, 422, tooMany.body)
        XCTAssertEqual(try json(tooMany)["errorType"] as? String, "execution")
        XCTAssertTrue(tooMany.body.contains("query processing would load too many samples into memory"), tooMany.body)
        // One sample fits.
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/query?query=acme_metric&time=\(seconds)", headers: acme).status, 200)
        let group = DispatchGroup()
        let statuses = LockedStatuses()
        let client = tally.client
        // A query's timeout can only shorten the server's; many at once wait their turn on one thread.
        for _ in 0..<8 {
            DispatchQueue.global().async(group: group) {
                statuses.add((try? client.request("GET", "/api/v1/query?query=acme_metric&time=\(seconds)&timeout=1h", headers: acme).status) ?? -1)
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(statuses.all, Array(repeating: 200, count: 8))
        try write(tally, [[("__name__", "after"), ("job", "x")]], headers: acme)
        XCTAssertEqual(try tally.client.request("GET", "/-/ready").status, 200)
        // The flags are checked at start.
        let bad = try runCommand(Binaries.tally, ["serve", "--storage", root + "/bad", "--query.timeout", "0s"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--query.timeout"), bad.stderr)
    }

    /// A query whose client goes away stops: with one query thread, a question asked after a long
    /// query's client closed its connection gets the thread within its 3-second timeout (it waited
    /// out the long query, 503 in its queue, before).
    func testAQueryWhoseClientLeavesStopsAndFreesItsThread() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage", extraArguments: ["--query.max-concurrency", "1"])
        try tally.waitReady()
        let fd = try tally.client.connect()
        // Four subqueries of 10 million points each, one after another: seconds of work, never
        // more than one subquery's points held.
        let long = (1...4).map { "count_over_time(vector(\($0))[120d:1s])" }.joined(separator: " + ")
        try LoopbackHTTP.sendAll(fd, LoopbackHTTP.requestBytes("GET", "/api/v1/query?time=1&query=" + QueryParameterOracleTests.escape(long),
                                                               headers: [], body: [], keepAlive: true))
        usleep(300_000)
        close(fd)
        let next = try tally.client.request("GET", "/api/v1/query?query=1&time=1&timeout=3s")
        XCTAssertEqual(next.status, 200, next.body)
    }

    /// A client that shuts down its sending side after its request (`nc -N`, some proxies) still gets
    /// the answer, as from Go's server, then the connection closes; a query it asked for stops as on
    /// a close and is answered 503 `canceled` if it had not finished.
    func testAClientThatHalfClosesStillReadsTheAnswer() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        let long = "count_over_time(vector(1)[120d:1s])"
        for (path, status, body) in [("/api/v1/status/buildinfo", 200, #""status":"success""#), ("/-/healthy", 200, "Healthy"),
                                     ("/api/v1/query?time=1&query=" + QueryParameterOracleTests.escape(long), 503, #""errorType":"canceled""#)] {
            for keepAlive in [true, false] {
                let fd = try tally.client.connect()
                defer { close(fd) }
                try LoopbackHTTP.sendAll(fd, LoopbackHTTP.requestBytes("GET", path, headers: [], body: [], keepAlive: keepAlive))
                shutdown(fd, Int32(SHUT_WR))
                var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65_536)
                // Until the server closes, which it must do once it has answered.
                for _ in 0..<1000 where (try? LoopbackHTTP.receive(fd, into: &received, buffer: &buffer)) == true {}
                let answer = String(decoding: received, as: UTF8.self)
                XCTAssertTrue(answer.hasPrefix("HTTP/1.1 \(status)"), "\(path): \(answer)")
                XCTAssertTrue(answer.contains(body), "\(path): \(answer)")
            }
        }
    }

    /// With one query thread, a question that waits longer than its timeout for it gets Prometheus'
    /// queue timeout (503 `timeout`); the one holding the thread (about a second) still answers.
    /// Meanwhile writes, `buildinfo`, `format_query` and queries refused for their parameters or
    /// syntax are answered at once.
    func testAQuestionWaitingPastItsTimeoutForAThreadIs503Timeout() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage", extraArguments: ["--query.max-concurrency", "1"])
        try tally.waitReady()
        let group = DispatchGroup()
        let statuses = LockedStatuses()
        // As long as the wait below: on a loaded machine the long query takes more than 10 s.
        let client = LoopbackHTTP(port: tally.port, timeoutSeconds: 60)
        DispatchQueue.global().async(group: group) {
            statuses.add((try? client.request("GET", "/api/v1/query?query=sum_over_time(vector(1)%5B60d:1s%5D)&time=1").status) ?? -1)
        }
        usleep(150_000)
        let queued = try tally.client.request("GET", "/api/v1/query?query=1&time=1&timeout=100ms")
        XCTAssertEqual(queued.status, 503, queued.body)
        XCTAssertEqual(queued.body, #"{"status":"error","errorType":"timeout","error":"query timed out in query queue"}"#)
        // Writes have threads of their own: one is stored while the query still holds its thread.
        try write(tally, [[("__name__", "during"), ("job", "w")]], headers: [])
        // What reads no data does not wait for a query thread either.
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/status/buildinfo").status, 200)
        XCTAssertEqual(try tally.client.request("GET", "/api/v1/format_query?query=1%2B1").body, #"{"status":"success","data":"1 + 1"}"#)
        let parseError = try tally.client.request("GET", "/api/v1/query?query=1%2B&time=1")
        XCTAssertEqual(parseError.status, 400, parseError.body)
        XCTAssertTrue(parseError.body.contains(#""errorType":"bad_data""#), parseError.body)
        let badStep = try tally.client.request("GET", "/api/v1/query_range?query=1&start=1&end=2&step=0")
        XCTAssertEqual(badStep.status, 400, badStep.body)
        XCTAssertEqual(statuses.all, [], "the long query ended before the write and the questions that read no data; nothing was shown")
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(statuses.all, [200])
    }

    /// docs/query.md's examples on the Kubecost metrics (2 clusters, 2 namespaces), each answered
    /// with a value per cluster or namespace; a week back there is nothing, which is an empty vector.
    func testTheDocumentedCostQueriesAnswerOverKubecostMetrics() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try TallyServerProcess(storage: root + "/storage")
        try tally.waitReady()
        let dataset = costDataset(days: 1)
        try push(dataset.requests(senders: 1)[0], to: tally.client, headers: [("THANOS-TENANT", "acme")])
        let at = (dataset.start + 86_400_000) / 1000
        let byCluster = "cluster_id", byNamespace = "namespace"
        let examples: [(String, String)] = [
            ("sum by (cluster_id) (node_total_hourly_cost)", byCluster),
            ("sum by (cluster_id) (sum_over_time(node_total_hourly_cost[1d:1h]))", byCluster),
            ("topk(5, sum by (namespace) (container_memory_allocation_bytes))", byNamespace),
            ("sum by (namespace) (avg_over_time(container_cpu_allocation[1h]))", byNamespace),
            ("sum by (cluster_id) (kube_persistentvolume_capacity_bytes / 1024^3 * on (persistentvolume, cluster_id) group_left pv_hourly_cost)", byCluster),
        ]
        func vector(_ query: String) throws -> [String: Double] {
            let r = try tally.client.request("GET", "/api/v1/query?query=\(LoopbackHTTP.escaped(query))&time=\(at)", headers: [("THANOS-TENANT", "acme")])
            XCTAssertEqual(r.status, 200, "\(query): \(r.body)")
            let data = try XCTUnwrap(try json(r)["data"] as? [String: Any], r.body)
            XCTAssertEqual(data["resultType"] as? String, "vector", query)
            var out: [String: Double] = [:]
            for sample in data["result"] as? [[String: Any]] ?? [] {
                let metric = sample["metric"] as? [String: String] ?? [:]
                out[metric.values.sorted().joined(separator: " ")] = Double((sample["value"] as? [Any])?.last as? String ?? "")
            }
            return out
        }
        for (query, label) in examples {
            let values = try vector(query)
            XCTAssertEqual(Set(values.keys), label == byCluster ? ["cluster-0", "cluster-1"] : ["ns-0", "ns-1"], "\(query): \(values)")
            XCTAssertTrue(values.values.allSatisfy { $0.isFinite && $0 > 0 }, "\(query): \(values)")
        }
        // A day's node cost is about 24 hourly prices (nodes come and go in this dataset).
        let hourly = try vector("sum by (cluster_id) (node_total_hourly_cost)"), daily = try vector(examples[1].0)
        for (cluster, price) in hourly { XCTAssertEqual(daily[cluster] ?? 0, 24 * price, accuracy: 24 * price * 0.5, cluster) }
        let weekOverWeek = try vector("sum by (cluster_id) (node_total_hourly_cost) / sum by (cluster_id) (node_total_hourly_cost offset 1w) - 1")
        XCTAssertEqual(weekOverWeek, [:])
    }

    func testTheCommandLineAnswersAsTheServerDoes() throws {
        let root = try makeTemporaryDirectory("query-api")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tally = try serverWithThreeTenants(root)
        let seconds = now / 1000
        let server = "http://127.0.0.1:\(tally.port)"
        let time = String(seconds)
        let range = ["range", "up", "--start", String(seconds - 120), "--end", time, "--step", "1m"]
        let viaServer = try runCommand(Binaries.tally, ["query", "up", "--time", time, "--tenant", "acme", "--server", server, "--format", "json"])
        XCTAssertEqual(viaServer.status, 0, viaServer.stderr)
        let http = try tally.client.request("GET", "/api/v1/query?query=up&time=\(time)", headers: [("THANOS-TENANT", "acme")])
        XCTAssertEqual(viaServer.stdout, http.body + "\n")
        let rangeViaServer = try runCommand(Binaries.tally, ["query"] + range + ["--tenant", "acme", "--server", server])
        XCTAssertEqual(rangeViaServer.status, 0, rangeViaServer.stderr)
        XCTAssertTrue(rangeViaServer.stdout.hasPrefix("up{job=\"acme-job\"}\n"), rangeViaServer.stdout)
        XCTAssertEqual(rangeViaServer.stdout.split(separator: "\n").count, 4, rangeViaServer.stdout)
        let refused = try runCommand(Binaries.tally, ["query", "sum(", "--tenant", "acme", "--server", server])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("bad_data: invalid parameter \"query\""), refused.stderr)

        // The stopped store gives the same answers.
        tally.stop(SIGTERM)
        let local = try runCommand(Binaries.tally, ["query", "up", "--time", time, "--tenant", "acme", "--storage", tally.storage, "--format", "json"])
        XCTAssertEqual(local.status, 0, local.stderr)
        XCTAssertEqual(local.stdout, viaServer.stdout)
        let table = try runCommand(Binaries.tally, ["query", "up", "--time", time, "--tenant", "acme", "--storage", tally.storage])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.hasPrefix("SERIES"), table.stdout)
        XCTAssertTrue(table.stdout.contains("up{job=\"acme-job\"}  2  "), table.stdout)
        let localRange = try runCommand(Binaries.tally, ["query"] + range + ["--tenant", "acme", "--storage", tally.storage])
        XCTAssertEqual(localRange.stdout, rangeViaServer.stdout)
        let tooMany = try runCommand(Binaries.tally, ["query", "range", "up", "--start", "0", "--end", "20000", "--step", "1", "--tenant", "acme", "--storage", tally.storage])
        XCTAssertEqual(tooMany.status, 1)
        XCTAssertTrue(tooMany.stderr.contains("exceeded maximum resolution"), tooMany.stderr)
        let unknown = try runCommand(Binaries.tally, ["query", "up", "--tenant", "nobody", "--storage", tally.storage])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("unknown tenant nobody"), unknown.stderr)
    }
}

/// Statuses collected from several threads.
private final class LockedStatuses: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int] = []
    func add(_ status: Int) { lock.withLock { statuses.append(status) } }
    var all: [Int] { lock.withLock { statuses } }
}
