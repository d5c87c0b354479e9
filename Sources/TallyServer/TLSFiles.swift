import NIOSSL

/// `--tls.cert-file`, `--tls.key-file` and, for client-certificate authentication, `--tls.client-ca-file`:
/// PEM files read once at start-up.
public struct TLSFiles: Sendable {
    public var certificateChain: String
    public var privateKey: String
    /// Clients must present a certificate signed by one of these CAs; nil asks for none.
    public var clientCA: String?

    public init(certificateChain: String, privateKey: String, clientCA: String? = nil) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.clientCA = clientCA
    }

    /// A TLS file that does not load, named with the flag that gave it.
    struct FileError: Error, CustomStringConvertible {
        let flag: String
        let path: String
        let underlying: Error
        var description: String { "\(flag) \(path): not a PEM file this server can load (\(underlying))" }
    }

    private static func loading<T>(_ flag: String, _ path: String, _ load: () throws -> T) throws -> T {
        do { return try load() } catch { throw FileError(flag: flag, path: path, underlying: error) }
    }

    func serverContext() throws -> NIOSSLContext {
        let chain = try Self.loading("--tls.cert-file", certificateChain) {
            try NIOSSLCertificate.fromPEMFile(certificateChain).map { NIOSSLCertificateSource.certificate($0) }
        }
        let key = try Self.loading("--tls.key-file", privateKey) { try NIOSSLPrivateKey(file: privateKey, format: .pem) }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA {
            // Client certificates name no host: the chain to the CA is what is checked.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try Self.loading("--tls.client-ca-file", clientCA) { try NIOSSLCertificate.fromPEMFile(clientCA) })
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
