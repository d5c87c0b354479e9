import Foundation
import TallyLoad
import TallyWire
import XCTest

/// `--auth.config-file`: every endpoint x {no credential, another tenant's credential, a credential
/// without the scope, the right credential}, each with its documented status, against a real server.
final class AuthMatrixTests: XCTestCase {
    // Secrets and their hashes (sha256sum; crypt(3) bcrypt at cost 4, for a fast test).
    static let config = """
        credentials:
          - name: acme-writer
            bearer_token_sha256: 3590c0a59f72ce02700194a05f228a725c1f135a6dcb3ded9b2d86ab6a6f52cb   # writer-token
            tenants: [acme]
            scopes: [write]
          - name: acme-reader
            basic: {username: reader, password_bcrypt: "$2b$04$abcdefghijklmnopqrstuuUF7fMioUdfsqprVze.Wu17Eit7ta.iK"}   # reader-pass
            tenants: ["ac*"]
            scopes: [read]
          - name: beta-all
            bearer_token_sha256: 863d63c0bd3a94bfca84ed2063a7355a226faff82ca50b90158bf183aa1a9e61   # beta-token
            tenants: [beta]
            scopes: [write, read, admin]
          - name: ops
            basic: {username: ops, password_sha256: 3468b90249f68cdd5fe12b68d8879261de688d97ef83375dbc9a240496444136}   # ops-pass
            tenants: ["*"]
            scopes: [admin]
        protect_metrics: true
        """

    private static func basic(_ user: String, _ password: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
    }

    private static let writer = ("Authorization", "Bearer writer-token")
    private static let reader = basic("reader", "reader-pass")
    private static let beta = ("Authorization", "Bearer beta-token")
    private static let ops = basic("ops", "ops-pass")

    /// A ready server on a new storage with the credentials above and the admin API; the storage
    /// and the file go when the test ends.
    private func startServer(_ name: String) throws -> (server: TallyServerProcess, storage: String, configPath: String) {
        let storage = try makeTemporaryDirectory(name)
        let configPath = storage + "-auth.yaml"
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: storage)
            try? FileManager.default.removeItem(atPath: configPath)
        }
        try Self.config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let server = try TallyServerProcess(storage: storage, extraArguments: ["--auth.config-file", configPath, "--web.enable-admin-api"])
        try server.waitReady()
        return (server, storage, configPath)
    }

    func testEveryEndpointAnswersEachCredentialAsDocumented() throws {
        let (server, storage, configPath) = try startServer("auth")
        defer { server.stop(SIGTERM) }

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func body(_ cluster: String) -> [UInt8] {
            var encoder = WriteRequestEncoder()
            encoder.addSeries(labels: [("__name__", "node_total_hourly_cost"), ("cluster_id", cluster), ("node", "n1")],
                              samples: [WireSample(timestamp: now - 120_000, valueBits: 1.5.bitPattern)])
            return encoder.compressed()
        }
        let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]
        let day = utcDate(now)
        typealias Call = (name: String, method: String, path: String, body: [UInt8], extra: [(String, String)])
        func calls(_ tenant: String) -> [Call] {
            [("write", "POST", "/api/v1/write", body("\(tenant)-cluster"), protobuf),
             ("daily costs", "GET", "/api/v1/costs/daily?start=\(day)&end=\(day)", [], []),
             ("allocation", "GET", "/api/v1/costs/allocation?start=\(day)&end=\(day)", [], []),
             ("metroculus", "GET", "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=\(tenant)&start_date=\(now / 1000 - 3600)&end_date=\(now / 1000)", [], []),
             ("compact", "POST", "/api/v1/admin/compact", [], []),
             ("retention", "POST", "/api/v1/admin/retention?keep=400d", [], []),
             ("delete_series", "POST", "/api/v1/admin/tsdb/delete_series?match[]=nothing_here&dry_run=1", [], []),
             ("query", "GET", "/api/v1/query?query=up&time=\(now / 1000)", [], []),
             ("query_range", "POST", "/api/v1/query_range", Array("query=up&start=\(now / 1000 - 60)&end=\(now / 1000)&step=15".utf8),
              [("Content-Type", "application/x-www-form-urlencoded")]),
             ("series", "GET", "/api/v1/series?match[]=up", [], []),
             ("labels", "GET", "/api/v1/labels", [], []),
             ("label values", "GET", "/api/v1/label/__name__/values", [], [])]
        }
        func status(_ call: Call, tenant: String, _ credential: (String, String)?) throws -> LoopbackHTTP.Response {
            try server.client.request(call.method, call.path, headers: [("THANOS-TENANT", tenant)] + call.extra + (credential.map { [$0] } ?? []), body: call.body)
        }
        // acme: writer writes, reader reads, ops maintains; beta's credential is another tenant's.
        let acme: [String: (none: Int, otherTenant: Int, wrongScope: (String, String), wrongScopeStatus: Int, right: (String, String), rightStatus: Int)] = [
            "write": (401, 403, Self.reader, 403, Self.writer, 204),
            "daily costs": (401, 403, Self.writer, 403, Self.reader, 200),
            "allocation": (401, 403, Self.writer, 403, Self.reader, 200),
            "metroculus": (401, 403, Self.writer, 403, Self.reader, 200),
            "compact": (401, 403, Self.reader, 403, Self.ops, 200),
            "retention": (401, 403, Self.reader, 403, Self.ops, 200),
            "delete_series": (401, 403, Self.writer, 403, Self.ops, 200),
            "query": (401, 403, Self.writer, 403, Self.reader, 200),
            "query_range": (401, 403, Self.writer, 403, Self.reader, 200),
            "series": (401, 403, Self.writer, 403, Self.reader, 200),
            "labels": (401, 403, Self.writer, 403, Self.reader, 200),
            "label values": (401, 403, Self.writer, 403, Self.reader, 200),
        ]
        for call in calls("acme") {
            let expected = acme[call.name]!
            XCTAssertEqual(try status(call, tenant: "acme", nil).status, expected.none, "\(call.name), no credential")
            let unauthenticated = try status(call, tenant: "acme", ("Authorization", "Bearer not-a-token"))
            XCTAssertEqual(unauthenticated.status, 401, "\(call.name), unknown token")
            XCTAssertNotNil(unauthenticated.headers["www-authenticate"], call.name)
            XCTAssertEqual(try status(call, tenant: "acme", Self.beta).status, expected.otherTenant, "\(call.name), beta's credential")
            XCTAssertEqual(try status(call, tenant: "acme", expected.wrongScope).status, expected.wrongScopeStatus, "\(call.name), wrong scope")
            let right = try status(call, tenant: "acme", expected.right)
            XCTAssertEqual(right.status, expected.rightStatus, "\(call.name), right credential: \(right.body)")
        }
        XCTAssertEqual(try status(calls("beta")[0], tenant: "beta", Self.beta).status, 204)
        // A credential naming one tenant is that tenant when the request names none.
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: protobuf + [Self.writer], body: body("acme-cluster")).status, 204)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage + "/default-tenant"))
        // Maintenance of every tenant at once needs a credential for every tenant.
        XCTAssertEqual(try server.client.request("POST", "/api/v1/admin/compact", headers: [Self.beta]).status, 403)
        XCTAssertEqual(try server.client.request("POST", "/api/v1/admin/compact", headers: [Self.ops]).status, 200)

        // No answer carries another tenant's data: two tenants with full cost data, each read with its credential.
        let acmeData = costDataset(days: 1, prefix: "acme-"), betaData = costDataset(days: 1, prefix: "beta-")
        try push(acmeData.requests(senders: 1)[0], to: server.client, headers: [Self.writer])
        try push(betaData.requests(senders: 1)[0], to: server.client, headers: [("THANOS-TENANT", "beta"), Self.beta])
        let dataDay = utcDate(acmeData.start)
        for path in ["/api/v1/costs/daily?start=\(dataDay)&end=\(dataDay)", "/api/v1/costs/allocation?start=\(dataDay)&end=\(dataDay)&aggregate=node",
                     "/metroculus/v2/kubecost_cluster_costs?cloud_account_id=acme&start_date=\(acmeData.start / 1000)&end_date=\(acmeData.start / 1000 + 86_400)"] {
            let answer = try server.client.request("GET", path, headers: [("X-Scope-OrgID", "acme"), Self.reader])
            XCTAssertEqual(answer.status, 200, "\(path): \(answer.body)")
            XCTAssertTrue(path.hasPrefix("/metroculus") || answer.body.contains("acme-"), "\(path): \(answer.body)")
            XCTAssertFalse(answer.body.contains("beta"), "\(path): \(answer.body)")
        }
        // The query API likewise: the reader sees acme's clusters only, and never beta's.
        let names = try server.client.request("GET", "/api/v1/label/cluster_id/values", headers: [("X-Scope-OrgID", "acme"), Self.reader])
        XCTAssertEqual(names.status, 200, names.body)
        XCTAssertTrue(names.body.contains("acme-") && !names.body.contains("beta"), names.body)
        // A credential naming one tenant reads that tenant when the request names none.
        let own = try server.client.request("GET", "/api/v1/label/cluster_id/values", headers: [Self.beta])
        XCTAssertTrue(own.body.contains("beta-") && !own.body.contains("acme"), own.body)
        XCTAssertEqual(try server.client.request("GET", "/api/v1/series?match[]=up&tenant=beta", headers: [Self.reader]).status, 403)
        let betaAsAcme = try server.client.request("GET", "/api/v1/costs/daily?start=\(dataDay)&end=\(dataDay)&tenant=beta", headers: [Self.reader])
        XCTAssertEqual(betaAsAcme.status, 403, betaAsAcme.body)
        XCTAssertFalse(betaAsAcme.body.contains("beta-"), betaAsAcme.body)

        // /metrics needs the admin scope when protect_metrics is set; probes stay open.
        XCTAssertEqual(try server.client.request("GET", "/metrics").status, 401)
        XCTAssertEqual(try server.client.request("GET", "/metrics", headers: [Self.reader]).status, 403)
        let page = try server.client.request("GET", "/metrics", headers: [Self.ops])
        XCTAssertEqual(page.status, 200)
        // The write matrix above: no credential and an unknown token (401), beta's and the reader's (403).
        let metrics = MetricsPage(page.body)
        XCTAssertEqual(metrics["tally_write_requests_rejected_total{reason=\"unauthorized\"}"], 2, page.body)
        XCTAssertEqual(metrics["tally_write_requests_rejected_total{reason=\"forbidden\"}"], 2, page.body)
        XCTAssertEqual(try server.client.request("GET", "/-/ready").status, 200)
        XCTAssertEqual(try server.client.request("GET", "/-/healthy").status, 200)

        // A credential removed from the file stops working after the reload, with no restart and
        // with the kept-alive connection still open.
        let connection = LoopbackConnection(server.client)
        XCTAssertEqual(try connection.request("POST", "/api/v1/write", headers: protobuf + [Self.writer], body: body("acme-cluster")).status, 204)
        let withoutWriter = Self.config.components(separatedBy: "\n").enumerated().filter { !(1...4).contains($0.offset) }.map(\.element).joined(separator: "\n")
        try withoutWriter.write(toFile: configPath, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while !server.log.contains("reloaded \(configPath)") && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(server.log.contains("reloaded \(configPath)"), server.log)
        XCTAssertEqual(try connection.request("POST", "/api/v1/write", headers: protobuf + [Self.writer], body: body("acme-cluster")).status, 401)
        XCTAssertEqual(connection.connectionsOpened, 1)
    }

    /// The endpoints added beside the ones above, each like its kind: `status/tsdb`, Remote-Read and
    /// `federate` read a tenant (the read scope for it), `rules` and `alerts` read none (any credential),
    /// `clean_tombstones` and `snapshot` maintain (the admin scope); a CORS preflight needs none.
    func testTheStatusRemoteReadAndCleaningEndpointsAnswerEachCredentialAsTheirKind() throws {
        let server = try startServer("auth-more").server
        defer { server.stop(SIGTERM) }
        var encoder = WriteRequestEncoder()
        encoder.addSeries(labels: [("__name__", "m")], samples: [WireSample(timestamp: Int64(Date().timeIntervalSince1970 * 1000), valueBits: 1.0.bitPattern)])
        let protobuf = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]
        XCTAssertEqual(try server.client.request("POST", "/api/v1/write", headers: protobuf + [("THANOS-TENANT", "acme"), Self.writer],
                                                 body: encoder.compressed()).status, 204)
        var read = ProtobufWriter()
        read.messageField(1) { query in
            query.varintField(1, 0)
            query.varintField(2, UInt64(Int64.max))
            query.messageField(3) { matcher in
                matcher.bytesField(2, Array("__name__".utf8))
                matcher.bytesField(3, Array("m".utf8))
            }
        }
        typealias Call = (name: String, method: String, path: String, body: [UInt8])
        let calls: [(call: Call, wrongScope: (String, String)?, right: (String, String), rightStatus: Int)] = [
            (("status/tsdb", "GET", "/api/v1/status/tsdb", []), Self.writer, Self.reader, 200),
            (("remote read", "POST", "/api/v1/read", SnappyBlock.compress(read.bytes)), Self.writer, Self.reader, 200),
            (("federate", "GET", "/federate?match[]=m", []), Self.writer, Self.reader, 200),
            (("rules", "GET", "/api/v1/rules", []), nil, Self.writer, 200),
            (("alerts", "GET", "/api/v1/alerts", []), nil, Self.reader, 200),
            (("clean_tombstones", "POST", "/api/v1/admin/tsdb/clean_tombstones", []), Self.reader, Self.ops, 200),
            (("snapshot", "POST", "/api/v1/admin/tsdb/snapshot", []), Self.reader, Self.ops, 200),
        ]
        for (call, wrongScope, right, rightStatus) in calls {
            func ask(_ credential: (String, String)?) throws -> LoopbackHTTP.Response {
                try server.client.request(call.method, call.path, headers: [("THANOS-TENANT", "acme")] + (credential.map { [$0] } ?? []), body: call.body)
            }
            XCTAssertEqual(try ask(nil).status, 401, "\(call.name), no credential")
            XCTAssertEqual(try ask(("Authorization", "Bearer not-a-token")).status, 401, "\(call.name), unknown token")
            if let wrongScope {
                XCTAssertEqual(try ask(Self.beta).status, 403, "\(call.name), beta's credential")
                XCTAssertEqual(try ask(wrongScope).status, 403, "\(call.name), wrong scope")
            }
            let answer = try ask(right)
            XCTAssertEqual(answer.status, rightStatus, "\(call.name), right credential: \(answer.body)")
            let preflight = try server.client.request("OPTIONS", call.path, headers: [("Origin", "http://dashboards.example")])
            XCTAssertEqual(preflight.status, ["clean_tombstones", "snapshot"].contains(call.name) ? 405 : 204, "\(call.name), preflight")
        }
        // What the reader was shown is acme's own head: the one series written.
        let tsdb = try server.client.request("GET", "/api/v1/status/tsdb", headers: [("THANOS-TENANT", "acme"), Self.reader])
        XCTAssertTrue(tsdb.body.contains("\"numSeries\":1,"), tsdb.body)
        XCTAssertEqual(try server.client.request("GET", "/api/v1/status/tsdb?tenant=beta", headers: [Self.reader]).status, 403)
        let federated = try server.client.request("GET", "/federate?match[]=m", headers: [("THANOS-TENANT", "acme"), Self.reader])
        XCTAssertTrue(federated.body.hasPrefix("# TYPE m untyped\nm{instance=\"\"} 1 "), federated.body)
        XCTAssertEqual(try server.client.request("GET", "/federate?match[]=m&tenant=beta", headers: [Self.reader]).status, 403)
    }
}
