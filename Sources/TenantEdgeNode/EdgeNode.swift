import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import UnixSignals

/// An edge node: the runtime, its two listeners (tenant traffic and admin, never the same
/// socket) and its background work, run as one `ServiceGroup`. `start` binds both listeners or
/// fails whole; `run` runs the group until a graceful shutdown (a signal of `signals`, or
/// `drain`), which stops in reverse order: the listeners stop accepting and finish in-flight
/// requests (bounded by `limits.drain_s`), the feed, erasure confirmations and geo maintenance
/// stop, and the runtime releases the upstream pool and Redis last.
public final class EdgeNode: Sendable {
    package let runtime: EdgeRuntime
    private let traffic: HTTPListener
    private let admin: HTTPListener
    /// Follows the origin's invalidation log, when `origin` is configured.
    package let feed: InvalidationFeed?
    /// Confirms erasures to the origin, when `origin` is configured.
    let erasures: ErasureConfirmations?
    /// Watches the GeoIP database file and probes the other regions.
    let geoMaintenance: GeoMaintenance
    private let services: ServiceGroup
    /// `run` was called (once only: a group runs once).
    private let started = Atomic<Bool>(false)
    private let stopped: EventLoopPromise<Void>

    /// The bound tenant-traffic port (the config may ask for 0 in tests).
    public var trafficPort: Int { traffic.port }
    /// Traffic connections admitted and not yet closed.
    package var trafficConnections: Int { traffic.openConnections }
    /// Connections each traffic socket accepted: one socket, or one per event loop (`listen.reuse_port`).
    package var trafficAcceptedPerSocket: [Int] { traffic.acceptedPerSocket }
    public var adminPort: Int { admin.port }
    /// The last invalidation applied from the origin's feed (0 standalone).
    public var invalidationCursor: Int { runtime.feedStatus.cursor.load(ordering: .relaxed) }

    /// `signals` start a graceful shutdown (the daemon passes SIGTERM and SIGINT; tests none);
    /// `extraServices` run in the same group (the daemon's SIGHUP watcher).
    public static func start(
        config: EdgeConfig, group: any EventLoopGroup, logger: Logger,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        clock: any CacheClock = SystemCacheClock(), signals: [UnixSignal] = [],
        extraServices: [any Service] = []
    ) async throws -> EdgeNode {
        let runtime = try EdgeRuntime(config: config, group: group, registry: registry, logger: logger, clock: clock)
        // Each event loop takes a worker lane, so the hit path's counters and buffers are its own.
        for loop in group.makeIterator() { _ = try? await loop.submit { WorkerLane.claim() }.get() }
        let bundles: ConfigBundleGate
        let feed: InvalidationFeed?
        let erasures: ErasureConfirmations?
        do {
            bundles = try ConfigBundleGate(runtime: runtime)
            try bundles.loadPersisted(canPull: config.origin != nil)
            // One choice of replica for the feed, bundle pulls and erasure confirmations alike.
            let replicas = config.origin.map { OriginReplicas($0.replicas) }
            feed = try config.origin.map { origin throws(EdgeError) in
                try InvalidationFeed(runtime: runtime, origin: origin, replicas: replicas!, bundles: bundles)
            }
            erasures = try config.origin.map { origin throws(EdgeError) in
                try ErasureConfirmations(
                    origin: origin, replicas: replicas!, node: config.node.id, clock: clock, logger: logger)
            }
        } catch {
            await runtime.shutdown()
            throw error
        }
        guard let trafficAddress = HostPort(parsing: config.listen.http),
            let adminAddress = HostPort(parsing: config.listen.admin)
        else {
            await runtime.shutdown()
            throw EdgeError(.invalidConfig, "listen: addresses must be HOST:PORT")
        }
        let readiness = ReadinessFlag()
        let traffic: HTTPListener
        do {
            traffic = try await HTTPListener.bind(
                address: trafficAddress, group: group,
                responder: TenantTrafficResponder(runtime: runtime), limits: config.limits,
                reusePort: config.listen.reusePort)
        } catch {
            await runtime.shutdown()
            throw EdgeError(.io, "listen.http: cannot bind \(config.listen.http)", cause: error)
        }
        let admin: HTTPListener
        do {
            let adminTLS = try config.listen.adminCertFile.map { certFile throws(EdgeError) in
                try ServerTLS.context(
                    certFile: certFile, keyFile: config.listen.adminKeyFile ?? "", key: "listen.admin_tls")
            }
            admin = try await HTTPListener.bind(
                address: adminAddress, group: group,
                responder: AdminResponder(
                    runtime: runtime, bundles: bundles,
                    isReady: { readiness.value && !runtime.awaitingBundle.load(ordering: .acquiring) }),
                limits: config.limits.forAdmin, tls: adminTLS)
        } catch let error as EdgeError {
            await traffic.close()
            await runtime.shutdown()
            throw error
        } catch {
            await traffic.close()
            await runtime.shutdown()
            throw EdgeError(.io, "listen.admin: cannot bind \(config.listen.admin)", cause: error)
        }
        let node = EdgeNode(
            runtime: runtime, traffic: traffic, admin: admin, feed: feed, erasures: erasures, group: group,
            signals: signals, extraServices: extraServices, logger: logger)
        if let erasures { runtime.observeErasures { erasures.confirm($0) } }
        readiness.set(true)
        logger.info(
            "edge node ready",
            metadata: [
                "node": "\(config.node.id)", "region": "\(config.node.region)",
                "http": "\(trafficAddress.host):\(traffic.port)", "admin": "\(adminAddress.host):\(admin.port)",
                "tenants": "\(config.tenants.count)", "encryption": "\(config.security.encryption)",
            ])
        return node
    }

    private init(
        runtime: EdgeRuntime, traffic: HTTPListener, admin: HTTPListener, feed: InvalidationFeed?,
        erasures: ErasureConfirmations?, group: any EventLoopGroup, signals: [UnixSignal],
        extraServices: [any Service], logger: Logger
    ) {
        self.runtime = runtime
        self.traffic = traffic
        self.admin = admin
        self.feed = feed
        self.erasures = erasures
        let geoMaintenance = GeoMaintenance(runtime: runtime, group: group)
        self.geoMaintenance = geoMaintenance
        self.stopped = runtime.eventLoop.makePromise(of: Void.self)
        // Graceful shutdown runs in reverse: listeners first, the runtime last.
        var list: [any Service] = runtime.tracingExporter.map { [$0] } ?? []  // stops last: spans flushed
        list += [
            RuntimeShutdown(runtime: runtime), runtime.siblingFollowers, runtime.retirements,
            PendingPurgeRetries(runtime: runtime), geoMaintenance, SecurityEventFlush(events: runtime.events),
            RegionBeacon(runtime: runtime),
        ]
        if let sentinel = runtime.sentinel { list.append(sentinel) }
        if let erasures { list.append(erasures) }
        if let feed { list.append(feed) }
        list += extraServices
        list.append(ListenerDrain(listeners: [traffic, admin], deadlineSeconds: runtime.config.limits.drainSeconds))
        services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: list.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: signals, logger: logger))
    }

    /// Runs the node's services until a graceful shutdown has stopped all of them.
    public func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        defer { stopped.succeed() }
        try await services.run()
    }

    /// Opens `geoip.database` again now (SIGHUP); the previous database stays if the file does not open.
    @discardableResult
    public func reloadGeoIP() -> Bool { runtime.geo.reload(force: true) }

    /// Graceful stop from inside the process (tests, and a failed start-up): the same path as
    /// SIGTERM. Returns once `run` has ended.
    public func drain() async {
        await services.triggerGracefulShutdown()
        // Never run: the group runs now, sees the shutdown asked for, and stops every service in order.
        try? await run()
        try? await stopped.futureResult.get()
    }
}

/// Readiness shared between the node and its admin responder (set once both listeners are up).
final class ReadinessFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var value: Bool { flag.load(ordering: .acquiring) }
    func set(_ value: Bool) { flag.store(value, ordering: .releasing) }
}
