import Foundation
import Logging
import NIOCore
import Prometheus
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// Key of one collapsed upstream fetch: a tenant's request target.
struct CollapseKey: Hashable, Sendable {
    var tenant: String
    var target: String
}

/// Everything a running node shares between its listeners: the tenant directory, each tenant's
/// cache, the upstream client, metrics and the collapsing table. Built whole from a validated
/// config, so a node either starts with all of it or not at all.
final class EdgeRuntime: Sendable {
    let config: EdgeConfig
    let caches: [String: TenantCache]
    /// Normalized hostname → its tenant's cache (built once; read-only).
    let cachesByHost: [String: TenantCache]
    let clock: any CacheClock
    let upstream: UpstreamClient
    /// The shared tier, when `cache.redis` is configured.
    let l2: RedisTier?
    let metrics: EdgeMetrics
    let adminTokens: AdminTokens
    let logger: Logger
    let startedAt: Double
    /// In-flight upstream fetches by key; protects the waiters of each collapsed miss.
    let collapser = Mutex(RequestCollapser<CollapseKey, EventLoopPromise<FetchOutcome>>())
    let securityEventCount = Atomic<Int>(0)

    init(config: EdgeConfig, group: any EventLoopGroup, registry: PrometheusCollectorRegistry, logger: Logger,
         clock: any CacheClock = SystemCacheClock()) throws(EdgeError) {
        self.config = config
        self.clock = clock
        self.logger = logger
        let masterKey: [UInt8]?
        if let path = config.security.masterKeyFile, !path.isEmpty {
            masterKey = try StandaloneKeyring.readKeyFile(path, key: "security.master_key_file")
        } else {
            masterKey = nil
        }
        let keyring = try StandaloneKeyring(masterKey: masterKey, tenants: config.tenants, encryption: config.security.encryption)
        let quotas = config.effectiveQuotas()
        var caches: [String: TenantCache] = [:]
        for tenant in config.tenants {
            guard let cipher = keyring.cipher(forTenant: tenant.id) else { continue }
            caches[tenant.id] = TenantCache(tenant: tenant, cipher: cipher, quotaBytes: quotas[tenant.id] ?? 0)
        }
        self.caches = caches
        var byHost: [String: TenantCache] = [:]
        for tenant in config.tenants {
            for host in tenant.hosts { byHost[TenantDirectory.normalize(host: host)] = caches[tenant.id] }
        }
        self.cachesByHost = byHost
        self.adminTokens = try AdminTokensReader.load(path: config.security.adminTokensFile)
        self.l2 = try config.cache.redis.map { (redis) throws(EdgeError) in try RedisTier(config: redis, clock: clock, logger: logger) }
        self.upstream = UpstreamClient(group: group, limits: config.limits)
        self.metrics = EdgeMetrics(registry: registry, tenants: config.tenants.map(\.id), hasRedis: config.cache.redis != nil)
        self.startedAt = clock.now()
    }

    /// The tenant cache for a `Host` value: one dictionary read for an already-normalized host.
    func cache(forHost host: String) -> TenantCache? {
        cachesByHost[host] ?? cachesByHost[TenantDirectory.normalize(host: host)]
    }

    /// A security event: counted, logged with the tenant id only (never key material or bodies).
    func securityEvent(_ kind: String, tenant: String, detail: String) {
        metrics.recordSecurityEvent(kind)
        securityEventCount.add(1, ordering: .relaxed)
        logger.warning("security event", metadata: ["kind": "\(kind)", "tenant": "\(tenant)", "detail": "\(detail)"])
    }

    /// Whether this node may store the tenant's data (its region is in the tenant's residency).
    func mayStore(_ tenant: TenantConfig) -> Bool {
        tenant.residency.isEmpty || tenant.residency.contains(config.node.region)
    }

    /// Purges one tenant in every tier. L1 at once; in L2 keys are deleted and tags, prefixes or
    /// `all` drop the tenant's generation (every L2 entry of the tenant: coarser than asked, never
    /// staler). Returns the number of entries removed that could be counted.
    func purge(_ request: PurgeRequest, cache: TenantCache, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let removed = cache.purge(keys: request.keys, tags: request.tags, prefixes: request.prefixes, all: request.all)
        metrics.recordInvalidation("key", count: request.keys.count)
        metrics.recordInvalidation("tag", count: request.tags.count)
        metrics.recordInvalidation("prefix", count: request.prefixes.count)
        metrics.recordInvalidation("all", count: request.all ? 1 : 0)
        guard let l2 else { return eventLoop.makeSucceededFuture(removed) }
        let tenant = cache.tenant.id
        if request.all || !request.tags.isEmpty || !request.prefixes.isEmpty {
            return l2.dropGeneration(tenant: tenant, on: eventLoop).map { dropped in
                if !dropped { l2.markUntrusted(tenant, on: eventLoop) }
                return removed
            }
        }
        return l2.delete(tenant: tenant, digests: request.keys.map { cache.primaryDigest(target: $0) }, on: eventLoop)
            .map { deleted in
                guard let deleted else {
                    l2.markUntrusted(tenant, on: eventLoop)
                    return removed
                }
                return removed + deleted
            }
    }

    func shutdown() async {
        try? await upstream.shutdown()
        await l2?.shutdown()
    }
}
