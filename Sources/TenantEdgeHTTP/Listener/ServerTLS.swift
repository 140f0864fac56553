import NIOSSL
import TenantEdgeCore

/// The TLS every listener of ours serves: a certificate chain and key from PEM files, TLS 1.2 at
/// least (NIOSSL's default still accepts 1.0).
package enum ServerTLS {
    package static func context(certFile: String, keyFile: String, key: String) throws(EdgeError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certFile).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: keyFile, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(privateKey))
            configuration.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw EdgeError(.invalidConfig, "\(key): cannot load the certificate or key (\(certFile), \(keyFile))")
        }
    }
}
