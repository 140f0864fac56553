import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// A running edge node: the runtime plus its two listeners, tenant traffic and admin, which are
/// never the same socket. `start` binds both or fails whole; `drain` stops accepting, finishes
/// in-flight requests (bounded by `limits.drain_s`) and releases the upstream pool.
public final class EdgeNode: Sendable {
    package let runtime: EdgeRuntime
    private let traffic: HTTPListener
    private let admin: HTTPListener
    /// Follows the origin's invalidation log, when `origin` is configured.
    package let feed: InvalidationFeed?
    /// Watches the GeoIP database file and probes the other regions.
    let geoMaintenance: GeoMaintenance

    /// The bound tenant-traffic port (the config may ask for 0 in tests).
    public var trafficPort: Int { traffic.port }
    public var adminPort: Int { admin.port }
    /// The last invalidation applied from the origin's feed (0 standalone).
    public var invalidationCursor: Int { runtime.invalidationCursor.load(ordering: .relaxed) }

    public static func start(config: EdgeConfig, group: any EventLoopGroup, logger: Logger,
                             registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                             clock: any CacheClock = SystemCacheClock()) async throws -> EdgeNode {
        let runtime = try EdgeRuntime(config: config, group: group, registry: registry, logger: logger, clock: clock)
        let bundles: ConfigBundleGate
        let feed: InvalidationFeed?
        do {
            bundles = try ConfigBundleGate(runtime: runtime)
            try bundles.loadPersisted()
            feed = try config.origin.map { origin throws(EdgeError) in try InvalidationFeed(runtime: runtime, origin: origin, bundles: bundles) }
        } catch {
            await runtime.shutdown()
            throw error
        }
        guard let trafficAddress = HostPort(parsing: config.listen.http), let adminAddress = HostPort(parsing: config.listen.admin) else {
            throw EdgeError(.invalidConfig, "listen: addresses must be HOST:PORT")
        }
        let readiness = ReadinessFlag()
        let traffic: HTTPListener
        do {
            traffic = try await HTTPListener.bind(address: trafficAddress, group: group,
                                                  responder: TenantTrafficResponder(runtime: runtime), limits: config.limits)
        } catch {
            await runtime.shutdown()
            throw EdgeError(.io, "listen.http: cannot bind \(config.listen.http)", cause: error)
        }
        let admin: HTTPListener
        do {
            let adminTLS = try config.listen.adminCertFile.map { certFile throws(EdgeError) in
                try ServerTLS.context(certFile: certFile, keyFile: config.listen.adminKeyFile ?? "", key: "listen.admin_tls")
            }
            admin = try await HTTPListener.bind(address: adminAddress, group: group,
                                                responder: AdminResponder(runtime: runtime, bundles: bundles, isReady: { readiness.value }),
                                                limits: config.limits.forAdmin, tls: adminTLS)
        } catch let error as EdgeError {
            try? await traffic.channel.close()
            await runtime.shutdown()
            throw error
        } catch {
            try? await traffic.channel.close()
            await runtime.shutdown()
            throw EdgeError(.io, "listen.admin: cannot bind \(config.listen.admin)", cause: error)
        }
        let node = EdgeNode(runtime: runtime, traffic: traffic, admin: admin, feed: feed, group: group)
        if let feed { runtime.observeErasures { feed.confirmErasure($0) } }
        feed?.start()
        node.geoMaintenance.start()
        readiness.set(true)
        logger.info("edge node ready", metadata: [
            "node": "\(config.node.id)", "region": "\(config.node.region)",
            "http": "\(trafficAddress.host):\(traffic.port)", "admin": "\(adminAddress.host):\(admin.port)",
            "tenants": "\(config.tenants.count)", "encryption": "\(config.security.encryption)",
        ])
        return node
    }

    private init(runtime: EdgeRuntime, traffic: HTTPListener, admin: HTTPListener, feed: InvalidationFeed?, group: any EventLoopGroup) {
        self.runtime = runtime
        self.traffic = traffic
        self.admin = admin
        self.feed = feed
        self.geoMaintenance = GeoMaintenance(runtime: runtime, group: group)
    }

    /// Opens `geoip.database` again now (SIGHUP); the previous database stays if the file does not open.
    @discardableResult
    public func reloadGeoIP() -> Bool { runtime.geo.reload(force: true) }

    /// Graceful stop: no new connections, in-flight responses finish, then everything closes.
    public func drain() async {
        let deadline = runtime.config.limits.drainSeconds
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [traffic, admin] in
                try? await traffic.drain()
                try? await admin.drain()
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(deadline))
            }
            await group.next()
            group.cancelAll()
        }
        try? await traffic.channel.close()
        try? await admin.channel.close()
        await feed?.stop()
        await geoMaintenance.stop()
        await runtime.shutdown()
    }
}

/// Readiness shared between the node and its admin responder (set once both listeners are up).
final class ReadinessFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var value: Bool { flag.load(ordering: .acquiring) }
    func set(_ value: Bool) { flag.store(value, ordering: .releasing) }
}
