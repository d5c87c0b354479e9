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

    func serverContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateChain).map { NIOSSLCertificateSource.certificate($0) }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain,
                                                                     privateKey: .privateKey(try NIOSSLPrivateKey(file: privateKey, format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA {
            // Client certificates name no host: the chain to the CA is what is checked.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(clientCA)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
