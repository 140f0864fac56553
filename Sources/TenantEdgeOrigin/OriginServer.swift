import AsyncHTTPClient
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import TenantEdgeCore
import TenantEdgeHTTP
import UnixSignals

/// A running `edge-origin`: the durable invalidation log behind an HTTPS listener (TLS through
/// swift-nio-ssl, certificate and key from files).
public final class OriginServer: Sendable {
    private let listener: HTTPListener
    let log: InvalidationLog

    public var port: Int { listener.port }

    public static func start(
        config: OriginConfig, group: any EventLoopGroup, logger: Logger,
        clock: any CacheClock = SystemCacheClock()
    ) async throws -> OriginServer {
        guard let address = HostPort(parsing: config.listen) else {
            throw EdgeError(.invalidConfig, "listen: must be HOST:PORT")
        }
        let tls: NIOSSLContext
        tls = try ServerTLS.context(certFile: config.certFile, keyFile: config.keyFile, key: "tls")
        let store = try await Self.openStore(config, logger: logger)
        let log: InvalidationLog
        let registry: TenantRegistry
        let erasures: ErasureLedger
        let audit: AuditLog
        do {
            try await FileStateImport.importIfPresent(
                from: config.stateDir, into: store, regions: config.regions.map(\.region.name), logger: logger)
            log = try await InvalidationLog.open(
                store: store, retention: config.logRetentionEvents, clock: clock, logger: logger)
            registry = try await TenantRegistry.open(config: config, store: store, clock: clock)
            erasures = try await ErasureLedger.open(store: store, clock: clock)
            audit = try AuditLog(stateDirectory: config.stateDir, clock: clock, logger: logger)
        } catch {
            await store.close()
            throw error
        }
        // Pushes fail fast on a node that is down (it pulls the bundle when it is back).
        var pushConfiguration = HTTPClient.Configuration(timeout: .init(connect: .seconds(2), read: .seconds(10)))
        pushConfiguration.connectionPool.retryConnectionEstablishment = false
        if let caFile = config.nodeCAFile {
            var nodeTLS = TLSConfiguration.makeClientConfiguration()
            nodeTLS.trustRoots = .file(caFile)
            nodeTLS.minimumTLSVersion = .tlsv12
            pushConfiguration.tlsConfiguration = nodeTLS
        }
        let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: pushConfiguration)
        var limits = EdgeConfig.Limits()
        limits.maxRequestBodyBytes = EdgeConfig.Limits.maxBundleBytes
        let listener: HTTPListener
        do {
            listener = try await HTTPListener.bind(
                address: address, group: group,
                responder: OriginResponder(
                    config: config, log: log, registry: registry,
                    pusher: BundlePusher(client: client, clock: clock),
                    erasures: erasures, audit: audit, fleet: FleetStatus(regions: config.regions), clock: clock),
                limits: limits, tls: tls)
        } catch {
            try? await client.shutdown()
            await store.close()
            throw EdgeError(.io, "listen: cannot bind \(config.listen)", cause: error)
        }
        let follower = StoreFollower(
            store: store, log: log, registry: registry, ledger: erasures, clock: clock, logger: logger)
        logger.info(
            "edge origin ready", metadata: ["https": "\(address.host):\(listener.port)", "head": "\(log.head)"])
        return OriginServer(listener: listener, log: log, client: client, store: store, follower: follower)
    }

    /// The configured store: SQLite in `state_dir`, or PostgreSQL (`storage.postgres`).
    static func openStore(_ config: OriginConfig, logger: Logger) async throws(EdgeError) -> any OriginStore {
        switch config.storage {
        case .embedded:
            return try await SQLiteOriginStore.open(
                directory: config.stateDir, retention: config.logRetentionEvents, logger: logger)
        case .postgres(let settings):
            return try await PostgresOriginStore.open(settings, retention: config.logRetentionEvents, logger: logger)
        }
    }

    private let client: HTTPClient
    private let store: any OriginStore
    /// Follows what other replicas write to a shared store; nil for the embedded one.
    private let follower: StoreFollower?

    private init(
        listener: HTTPListener, log: InvalidationLog, client: HTTPClient, store: any OriginStore,
        follower: StoreFollower?
    ) {
        self.listener = listener
        self.log = log
        self.client = client
        self.store = store
        self.follower = follower
    }

    /// Runs until one of `signals` (or `stop` from inside the process), then stops: one
    /// `ServiceGroup`, as the node's, which owns the signals and the drain.
    /// `stopping`: told when a graceful stop begins (systemd's `STOPPING=1`).
    public func run(signals: [UnixSignal], logger: Logger, stopping: @escaping @Sendable () -> Void = {}) async throws {
        let drain = ClosureService { [self] in
            try? await gracefulShutdown()
            stopping()
            await stop()
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [ServiceGroupConfiguration.ServiceConfiguration(service: drain)],
                gracefulShutdownSignals: signals, logger: logger))
        try await group.run()
    }

    /// Answers the waiting long polls, finishes requests in flight and closes the listener.
    public func stop() async {
        log.releaseWaiters()
        try? await listener.drain()
        try? await client.shutdown()
        await follower?.stop()
        await store.close()
    }
}
