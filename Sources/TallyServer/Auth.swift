#if canImport(Glibc)
import Glibc
#endif
import CCrypt
import Crypto
import Foundation
import NIOHTTP1
import Synchronization
import TallyStorage
import Yams

/// What a credential may do: send samples, read costs and queries, run maintenance and read `/metrics`.
public enum AuthScope: String, Sendable, CaseIterable {
    case write, read, admin
}

/// One entry of `--auth.config-file`: how a caller proves who it is, and what it may reach.
struct Credential: Sendable {
    enum Proof: Sendable {
        /// Hex SHA-256 of the bearer token.
        case bearer(sha256: [UInt8])
        case basic(username: String, password: PasswordHash)
    }

    enum PasswordHash: Sendable {
        /// A crypt(3) bcrypt string (`$2a$`, `$2b$` or `$2y$`).
        case bcrypt(String)
        case sha256([UInt8])
    }

    let name: String
    let proof: Proof
    /// Tenant names or shell globs (`cluster-*`, `*`).
    let tenants: [String]
    let scopes: Set<AuthScope>

    func allows(_ scope: AuthScope, tenant: String) -> Bool {
        scopes.contains(scope) && tenants.contains { fnmatch($0, tenant, 0) == 0 }
    }

    /// Whether the credential reaches every tenant, as maintenance of all tenants at once requires.
    var coversEveryTenant: Bool { tenants.contains("*") }

    /// The one tenant a credential names without a glob, used when a request names none.
    var onlyTenant: String? {
        tenants.count == 1 && !tenants[0].contains(where: { "*?[".contains($0) }) ? tenants[0] : nil
    }
}

/// `--auth.config-file`:
///
///     credentials:
///       - name: cluster-a
///         bearer_token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
///         tenants: [cluster-a]
///         scopes: [write]
///       - name: finops
///         basic: {username: finops, password_bcrypt: "$2b$10$..."}
///         tenants: ["cluster-*"]
///         scopes: [read]
///     protect_metrics: true
struct AuthConfig: Sendable {
    var credentials: [Credential] = []
    /// Whether `/metrics` needs a credential with the admin scope.
    var protectMetrics = false

    static func parse(_ text: String) throws -> AuthConfig {
        func fail(_ message: String) -> LimitsConfigError { LimitsConfigError(message) }
        guard let root = try Yams.compose(yaml: text), let mapping = root.mapping else {
            throw fail("expected a mapping with credentials:")
        }
        var config = AuthConfig()
        for key in mapping.keys where !["credentials", "protect_metrics"].contains(key.string ?? "") {
            throw fail("unknown key \(key.string ?? "?") (known: credentials, protect_metrics)")
        }
        if let protect = mapping["protect_metrics"] {
            guard let flag = protect.bool else { throw fail("protect_metrics: expected true or false") }
            config.protectMetrics = flag
        }
        guard let entries = mapping["credentials"]?.sequence else { throw fail("credentials: expected a list") }
        for (i, entry) in entries.enumerated() {
            guard let fields = entry.mapping else { throw fail("credentials[\(i)]: expected a mapping") }
            let name = fields["name"]?.string ?? "credentials[\(i)]"
            func hex(_ node: Node?, _ key: String) throws -> [UInt8] {
                guard let text = node?.string, text.count == 64, let bytes = hexBytes(text) else {
                    throw fail("\(name): \(key) must be 64 hex digits (sha256sum of the secret)")
                }
                return bytes
            }
            let proof: Credential.Proof
            if let token = fields["bearer_token_sha256"] {
                proof = .bearer(sha256: try hex(token, "bearer_token_sha256"))
            } else if let basic = fields["basic"]?.mapping {
                guard let user = basic["username"]?.string, !user.isEmpty else { throw fail("\(name): basic.username is required") }
                if let bcrypt = basic["password_bcrypt"]?.string {
                    guard ["$2a$", "$2b$", "$2y$"].contains(where: bcrypt.hasPrefix) else { throw fail("\(name): password_bcrypt must start with $2b$") }
                    proof = .basic(username: user, password: .bcrypt(bcrypt))
                } else {
                    proof = .basic(username: user, password: .sha256(try hex(basic["password_sha256"], "basic.password_sha256")))
                }
            } else {
                throw fail("\(name): give bearer_token_sha256 or basic")
            }
            guard let tenants = fields["tenants"]?.sequence?.compactMap(\.string), !tenants.isEmpty else {
                throw fail("\(name): tenants must list tenant names or globs")
            }
            guard let scopeNames = fields["scopes"]?.sequence?.compactMap(\.string), !scopeNames.isEmpty else {
                throw fail("\(name): scopes must list some of write, read, admin")
            }
            var scopes = Set<AuthScope>()
            for scope in scopeNames {
                guard let known = AuthScope(rawValue: scope) else { throw fail("\(name): unknown scope \(scope) (known: write, read, admin)") }
                scopes.insert(known)
            }
            config.credentials.append(Credential(name: name, proof: proof, tenants: tenants, scopes: scopes))
        }
        return config
    }
}

/// Checks the `Authorization` header of each request against the configuration in force. bcrypt is
/// slow on purpose (tens of milliseconds), so a password that verified is remembered by its SHA-256
/// until the configuration changes, as a sender presents the same one on every request.
final class Authenticator: Sendable {
    private let file: ReloadingFile<AuthConfig>
    private let verified = Mutex<(generation: Int, keys: Set<[UInt8]>)>((0, []))

    init(path: String) throws {
        file = try ReloadingFile(path: path, parse: AuthConfig.parse)
    }

    var protectsMetrics: Bool { file.value.protectMetrics }

    func reload(force: Bool = false) -> String? {
        let line = file.reload(force: force)
        if line != nil { verified.withLock { $0 = ($0.generation + 1, []) } }
        return line
    }

    static let challenge = ("WWW-Authenticate", "Basic realm=\"tally\", Bearer realm=\"tally\"")

    /// The request's credential; nil when auth is off (no `authenticator`); the 401 answer when it is
    /// on and none is proven.
    static func credential(for head: HTTPRequestHead, _ authenticator: Authenticator?) -> Result<Credential?, HTTPAnswer> {
        guard let authenticator else { return .success(nil) }
        return authenticator.authenticate(head).map { $0 }
    }

    /// The credential the request proves, or the 401 answer.
    func authenticate(_ head: HTTPRequestHead) -> Result<Credential, HTTPAnswer> {
        var refusal = HTTPAnswer(status: 401, body: "authentication required: send a bearer token or basic credentials\n")
        refusal.headers.append(Self.challenge)
        guard let header = head.headers.first(name: "Authorization") else { return .failure(refusal) }
        let config = file.value
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return .failure(refusal) }
        let scheme = parts[0].lowercased(), secret = String(parts[1]).trimmingCharacters(in: .whitespaces)
        if scheme == "bearer" {
            let digest = Array(SHA256.hash(data: Array(secret.utf8)))
            for credential in config.credentials {
                if case let .bearer(expected) = credential.proof, constantTimeEqual(digest, expected) { return .success(credential) }
            }
        } else if scheme == "basic", let decoded = Data(base64Encoded: secret), let pair = String(data: decoded, encoding: .utf8),
                  let colon = pair.firstIndex(of: ":") {
            let user = String(pair[..<colon]), password = String(pair[pair.index(after: colon)...])
            for credential in config.credentials {
                guard case let .basic(username, hash) = credential.proof, username == user else { continue }
                if verify(password, hash, user: user) { return .success(credential) }
            }
        }
        refusal.body = Array("authentication failed\n".utf8)
        return .failure(refusal)
    }

    private func verify(_ password: String, _ hash: Credential.PasswordHash, user: String) -> Bool {
        switch hash {
        case let .sha256(expected):
            return constantTimeEqual(Array(SHA256.hash(data: Array(password.utf8))), expected)
        case let .bcrypt(stored):
            let key = Array(SHA256.hash(data: Array((user + "\u{0}" + password + "\u{0}" + stored).utf8)))
            let generation = verified.withLock { state -> Int? in state.keys.contains(key) ? nil : state.generation }
            guard let generation else { return true }
            guard Self.bcryptMatches(password, stored) else { return false }
            verified.withLock { state in
                guard state.generation == generation else { return }
                // Bounded: a credential store of thousands of users still fits; past that, start over.
                if state.keys.count >= 4096 { state.keys = [] }
                state.keys.insert(key)
            }
            return true
        }
    }

    /// crypt(3) of libxcrypt, which implements bcrypt; the result must equal the stored string.
    static func bcryptMatches(_ password: String, _ stored: String) -> Bool {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(password, stored, data) else { return false }
        return constantTimeEqual(Array(String(cString: result).utf8), Array(stored.utf8))
    }
}

private func hexBytes(_ text: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    var iterator = text.lowercased().makeIterator()
    while let high = iterator.next() {
        guard let low = iterator.next(), let h = high.hexDigitValue, let l = low.hexDigitValue else { return nil }
        bytes.append(UInt8(h << 4 | l))
    }
    return bytes
}

/// Why a request's credential may not do what it asks, or nil when it may (or auth is off). A nil
/// tenant means every tenant at once, which only a credential for `*` may touch.
func accessRefusal(_ credential: Credential?, _ scope: AuthScope, tenant: String?) -> HTTPAnswer? {
    guard let credential else { return nil }
    let allowed = tenant.map { credential.allows(scope, tenant: $0) } ?? (credential.scopes.contains(scope) && credential.coversEveryTenant)
    if allowed { return nil }
    let target = tenant.map { "tenant \(GoFormat.quote($0))" } ?? "every tenant"
    return HTTPAnswer(status: 403, body: "credential \(GoFormat.quote(credential.name)) may not \(scope.rawValue) \(target)\n")
}
