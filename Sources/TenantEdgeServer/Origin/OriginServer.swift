import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TenantEdgeCore

/// A running `edge-origin`: the durable invalidation log behind an HTTPS listener (TLS through
/// swift-nio-ssl, certificate and key from files).
public final class OriginServer: Sendable {
    private let listener: HTTPListener
    let log: InvalidationLog

    public var port: Int { listener.port }

    public static func start(config: OriginConfig, group: any EventLoopGroup, logger: Logger,
                             clock: any CacheClock = SystemCacheClock()) async throws -> OriginServer {
        guard let address = HostPort(parsing: config.listen) else { throw EdgeError(.invalidConfig, "listen: must be HOST:PORT") }
        let tls: NIOSSLContext
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(config.certFile).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: config.keyFile, format: .pem)
            tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        } catch {
            throw EdgeError(.invalidConfig, "tls: cannot load the certificate or key (\(config.certFile), \(config.keyFile))")
        }
        let log = try InvalidationLog(stateDirectory: config.stateDir, retention: config.logRetentionEvents, clock: clock)
        var limits = EdgeConfig.Limits()
        limits.maxRequestBodyBytes = EdgeConfig.Limits.maxBundleBytes
        let listener: HTTPListener
        do {
            listener = try await HTTPListener.bind(address: address, group: group, responder: OriginResponder(config: config, log: log),
                                                   limits: limits, tls: tls)
        } catch {
            throw EdgeError(.io, "listen: cannot bind \(config.listen)", cause: error)
        }
        logger.info("edge origin ready", metadata: ["https": "\(address.host):\(listener.port)", "head": "\(log.head)"])
        return OriginServer(listener: listener, log: log)
    }

    private init(listener: HTTPListener, log: InvalidationLog) {
        self.listener = listener
        self.log = log
    }

    public func stop() async {
        try? await listener.drain()
    }
}
