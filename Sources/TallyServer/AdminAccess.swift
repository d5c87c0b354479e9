import NIOHTTP1
import TallyStorage

/// Who may call the admin endpoints, and the cross-origin rule for every state-changing request.
///
/// The server writes a random token into `<storage>/.admin-token` (mode 0600) at start-up. Whoever can
/// read it owns the storage, so `tally compact|retention|delete-series` present it and are let in
/// whatever the flags say; a token from another storage is refused, so a CLI never acts through a
/// server that serves a different store. From the network, admin calls answer only with
/// `--web.enable-admin-api`.
public struct AdminAccess: Sendable {
    public static let tokenHeader = "X-Tally-Admin-Token"
    public static let tokenFile = ".admin-token"

    let token: String
    let enabledForNetwork: Bool
    /// The canonical storage root, named in every answer to a caller that presents a token.
    let storage: String

    /// Makes a fresh token and writes it where only the storage's owner can read it.
    static func create(storageRoot: String, enabledForNetwork: Bool) throws(StorageIOError) -> AdminAccess {
        var generator = SystemRandomNumberGenerator()
        let token = (0..<4).map { _ in String(generator.next() as UInt64, radix: 16) }.map { String(repeating: "0", count: 16 - $0.count) + $0 }.joined()
        try OwnerOnlyFile.write(storageRoot + "/" + tokenFile, token + "\n")
        return AdminAccess(token: token, enabledForNetwork: enabledForNetwork,
                           storage: ServerAnnouncement.canonicalRoot(storageRoot) ?? storageRoot)
    }

    /// Who is calling, for the audit log; or the refusal.
    func authorise(_ head: HTTPRequestHead) -> Result<String, HTTPAnswer> {
        if let presented = head.headers.first(name: Self.tokenHeader) {
            guard constantTimeEqual(presented, token) else {
                return .failure(HTTPAnswer(status: 403, body: "admin token refused: this server does not serve the storage that token belongs to\n"))
            }
            return .success("storage owner (admin token)")
        }
        guard enabledForNetwork else {
            return .failure(HTTPAnswer(status: 403, body: "admin API disabled: start the server with --web.enable-admin-api, or use the tally CLI on the storage's machine\n"))
        }
        return .success("network (--web.enable-admin-api)")
    }

    /// Names this server's storage in the answer to a caller that presented its token (the CLI), so it
    /// can refuse an answer from a server of another store; no other caller is told the path, one
    /// with a wrong token (another store's, or a guess) included.
    func naming(_ answer: HTTPAnswer, for head: HTTPRequestHead) -> HTTPAnswer {
        guard let presented = head.headers.first(name: Self.tokenHeader), constantTimeEqual(presented, token) else { return answer }
        var named = answer
        named.headers.append((ServerAnnouncement.storageHeader, storage))
        return named
    }

    /// A browser names the page that sent a request in `Origin`; a state-changing request from a page
    /// of another origin (a form POST from any web site) is refused. Senders and the CLI send none.
    static func crossOriginRefusal(_ head: HTTPRequestHead) -> HTTPAnswer? {
        guard let origin = head.headers.first(name: "Origin") else { return nil }
        let host = head.headers.first(name: "Host") ?? ""
        if origin == "http://" + host || origin == "https://" + host { return nil }
        return HTTPAnswer(status: 403, body: "cross-origin request refused: Origin \(GoFormat.quote(String(origin.prefix(128)))) is not this server\n")
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
func constantTimeEqual(_ a: String, _ b: String) -> Bool { constantTimeEqual(Array(a.utf8), Array(b.utf8)) }

func constantTimeEqual(_ x: [UInt8], _ y: [UInt8]) -> Bool {
    var difference = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<min(x.count, y.count) { difference |= x[i] ^ y[i] }
    return difference == 0
}
