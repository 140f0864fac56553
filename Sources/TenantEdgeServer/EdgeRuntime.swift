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
    /// Each tenant's L2 tier, when `cache.redis` is configured: the shared one (`row`), a Redis
    /// database of its own (`database`), or the shared Redis as its own ACL user (`schema`).
    let l2Tiers: [String: RedisTier]
    /// Every distinct tier, for health and shutdown.
    let allL2Tiers: [RedisTier]
    /// One per distinct L2 tier: applies siblings' purges to this node's L1.
    let purgeFollowers: [SiblingPurgeFollower]
    let metrics: EdgeMetrics
    let adminTokens: AdminTokens
    /// `<state_dir>/audit.jsonl` (interface section 7).
    let audit: AuditLog
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
        self.audit = try AuditLog(stateDirectory: config.stateDir, clock: clock, logger: logger)
        (self.l2Tiers, self.allL2Tiers) = try Self.makeL2Tiers(config: config, masterKey: masterKey, clock: clock, logger: logger)
        self.purgeFollowers = Self.followSiblingPurges(tiers: l2Tiers, caches: caches, config: config,
                                                       eventLoop: group.next(), logger: logger)
        self.upstream = UpstreamClient(group: group, limits: config.limits)
        self.metrics = EdgeMetrics(registry: registry, tenants: config.tenants.map(\.id), hasRedis: config.cache.redis != nil)
        self.startedAt = clock.now()
    }

    func l2(for tenant: String) -> RedisTier? { l2Tiers[tenant] }

    /// Whether every L2 tier is up; nil without L2.
    var l2IsUp: Bool? { allL2Tiers.isEmpty ? nil : allL2Tiers.allSatisfy(\.isUp) }

    private static func makeL2Tiers(config: EdgeConfig, masterKey: [UInt8]?, clock: any CacheClock, logger: Logger)
        throws(EdgeError) -> ([String: RedisTier], [RedisTier])
    {
        guard let redis = config.cache.redis, let shared = RedisEndpoint(parsing: redis.url) else { return ([:], []) }
        var byTenant: [String: RedisTier] = [:]
        var all: [RedisTier] = []
        var sharedTier: RedisTier? = nil
        let smallPool = max(1, min(redis.poolSize, 2))
        for tenant in config.tenants {
            switch config.isolation(of: tenant) {
            case .row, .hybrid:
                if sharedTier == nil {
                    sharedTier = RedisTier(endpoint: shared, nodeID: config.node.id, connections: redis.poolSize, timeoutMs: redis.timeoutMs, clock: clock, logger: logger)
                    all.append(sharedTier!)
                }
                byTenant[tenant.id] = sharedTier
            case .database:
                guard let url = tenant.redisURL, let own = RedisEndpoint(parsing: url) else {
                    throw EdgeError(.invalidConfig, "tenants: '\(tenant.id)'.redis_url is required under the database strategy")
                }
                let tier = RedisTier(endpoint: own, nodeID: config.node.id, connections: smallPool, timeoutMs: redis.timeoutMs, clock: clock, logger: logger)
                byTenant[tenant.id] = tier
                all.append(tier)
            case .schema:
                guard let masterKey else {
                    throw EdgeError(.invalidConfig, "security.master_key_file: the schema strategy derives Redis ACL passwords from it")
                }
                var own = shared
                own.user = RedisACL.user(for: tenant.id)
                own.password = try StandaloneKeyring.redisACLPassword(masterKey: masterKey, tenant: tenant.id)
                let tier = RedisTier(endpoint: own, nodeID: config.node.id, connections: smallPool, timeoutMs: redis.timeoutMs, clock: clock, logger: logger)
                byTenant[tenant.id] = tier
                all.append(tier)
            }
        }
        return (byTenant, all)
    }

    private static func followSiblingPurges(tiers: [String: RedisTier], caches: [String: TenantCache], config: EdgeConfig,
                                            eventLoop: any EventLoop, logger: Logger) -> [SiblingPurgeFollower] {
        var tenantsByTier: [ObjectIdentifier: (RedisTier, [String])] = [:]
        for tenant in config.tenants {
            guard let tier = tiers[tenant.id] else { continue }
            tenantsByTier[ObjectIdentifier(tier), default: (tier, [])].1.append(tenant.id)
        }
        return tenantsByTier.values.map { tier, tenants in
            SiblingPurgeFollower(endpoint: tier.endpoint, tenants: tenants, nodeID: config.node.id,
                                 timeoutMs: config.cache.redis?.timeoutMs ?? 500, eventLoop: eventLoop, logger: logger,
                                 apply: { tenant, notice in _ = caches[tenant]?.purge(notice) },
                                 resync: { tenant in _ = caches[tenant]?.purge(keys: [], tags: [], prefixes: [], all: true) })
        }
    }

    /// The tenant cache for a `Host` value: one dictionary read for an already-normalized host.
    func cache(forHost host: String) -> TenantCache? {
        cachesByHost[host] ?? cachesByHost[TenantDirectory.normalize(host: host)]
    }

    /// A security event: counted, logged and audited with the tenant id only (never key material or
    /// bodies).
    func securityEvent(_ kind: String, tenant: String, detail: String) {
        audit.record(kind, actor: "node:\(config.node.id)", tenant: tenant == "-" ? nil : tenant, details: ["detail": detail])
        metrics.recordSecurityEvent(kind)
        securityEventCount.add(1, ordering: .relaxed)
        logger.warning("security event", metadata: ["kind": "\(kind)", "tenant": "\(tenant)", "detail": "\(detail)"])
    }

    /// Whether this node may store the tenant's data (its region is in the tenant's residency).
    func mayStore(_ tenant: TenantConfig) -> Bool {
        tenant.residency.isEmpty || tenant.residency.contains(config.node.region)
    }

    /// Purges one tenant in every tier: L1 at once; in L2 keys are deleted, tags and prefixes through
    /// their index sets, `all` by dropping the tenant's generation. A purge that cannot reach Redis
    /// makes the tenant's L2 untrusted until a generation drop succeeds. Returns the entries removed
    /// that could be counted.
    func purge(_ request: PurgeRequest, cache: TenantCache, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let removed = cache.purge(keys: request.keys, tags: request.tags, prefixes: request.prefixes, all: request.all)
        metrics.recordInvalidation("key", count: request.keys.count)
        metrics.recordInvalidation("tag", count: request.tags.count)
        metrics.recordInvalidation("prefix", count: request.prefixes.count)
        metrics.recordInvalidation("all", count: request.all ? 1 : 0)
        let tenant = cache.tenant.id
        guard let l2 = l2(for: tenant) else { return eventLoop.makeSucceededFuture(removed) }
        if request.all {
            return l2.dropGeneration(tenant: tenant, on: eventLoop).map { dropped in
                if !dropped { l2.markUntrusted(tenant, on: eventLoop) }
                return removed
            }
        }
        let primaries = request.keys.map { cache.primaryDigest(target: $0) }
        let byKey = l2.delete(tenant: tenant, digests: primaries, on: eventLoop)
        // A key's variants (responses with Vary) are indexed under its primary digest.
        let indexes = primaries + request.tags.map(cache.tagDigest) + request.prefixes.map(cache.prefixDigest)
        let byIndex = indexes.isEmpty ? eventLoop.makeSucceededFuture(Optional(0)) : l2.purge(tenant: tenant, indexes: indexes, on: eventLoop)
        return byKey.and(byIndex).map { deleted, indexed in
            guard let deleted, let indexed else {
                l2.markUntrusted(tenant, on: eventLoop)  // applied later as a generation drop: coarser, never lost
                return removed
            }
            return removed + deleted + indexed
        }
    }

    /// Live L2 bytes per tenant, from each tenant's byte ledger in Redis; tenants without L2, or
    /// whose Redis did not answer in time, are left out.
    func sharedTierBytes(of tenants: [String], on eventLoop: any EventLoop) -> EventLoopFuture<[String: Int]> {
        let reads = tenants.compactMap { tenant in
            l2(for: tenant).map { tier in tier.liveBytes(tenant: tenant, on: eventLoop).map { (tenant, $0) } }
        }
        return EventLoopFuture.whenAllSucceed(reads, on: eventLoop).map { pairs in
            Dictionary(uniqueKeysWithValues: pairs.compactMap { tenant, bytes in bytes.map { (tenant, $0) } })
        }
    }

    func shutdown() async {
        try? await upstream.shutdown()
        for follower in purgeFollowers { await follower.stop() }
        for tier in allL2Tiers { await tier.shutdown() }
        audit.flush()
    }
}
