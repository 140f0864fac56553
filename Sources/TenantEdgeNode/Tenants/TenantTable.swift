import Logging
import NIOCore
import TenantEdgeCore
import TenantEdgeNative

/// The tenants a node serves and everything built for them: each tenant's cache, its L2 tier, and
/// the followers of sibling purges. Built whole from a validated config and swapped whole
/// (`EdgeRuntime.install`), so a request sees the old set or the new one, never a mix. A rebuild
/// keeps the caches of tenants whose settings did not change and the Redis tiers whose endpoint did
/// not change, so a new bundle does not empty the cache.
final class TenantTable: Sendable {
    /// The applied bundle's version; 0 for the node file's own tenants.
    let version: Int
    let tenants: [TenantConfig]
    let regions: [RegionConfig]
    let caches: [String: TenantCache]
    /// Normalized hostname → its tenant's cache.
    let cachesByHost: [String: TenantCache]
    /// Each tenant's L2 tier, when `cache.redis` is configured: the shared one (`row`), a Redis
    /// database of its own (`database`), or the shared Redis as its own ACL user (`schema`).
    let l2Tiers: [String: RedisTier]
    /// Every distinct tier, for health and shutdown.
    let allL2Tiers: [RedisTier]
    /// One per distinct tier: applies siblings' purges to this node's L1.
    let purgeFollowers: [SiblingPurgeFollower]

    private init(
        version: Int, tenants: [TenantConfig], regions: [RegionConfig], caches: [String: TenantCache],
        l2Tiers: [String: RedisTier], allL2Tiers: [RedisTier], purgeFollowers: [SiblingPurgeFollower]
    ) {
        self.version = version
        self.tenants = tenants
        self.regions = regions
        self.caches = caches
        var byHost: [String: TenantCache] = [:]
        for tenant in tenants {
            for host in tenant.hosts { byHost[TenantDirectory.normalize(host: host)] = caches[tenant.id] }
        }
        cachesByHost = byHost
        self.l2Tiers = l2Tiers
        self.allL2Tiers = allL2Tiers
        self.purgeFollowers = purgeFollowers
    }

    /// Builds the table for `config.tenants`. Throws before anything is started when a tenant's key
    /// or Redis settings cannot be made.
    /// `sentinelPrimary`: where Sentinel says the shared Redis primary is, when `cache.redis.sentinel` is set.
    static func build(
        config sealedConfig: EdgeConfig, version: Int, masterKey: [UInt8]?, kek: [UInt8]?, previous: TenantTable?,
        sentinelPrimary: RedisPrimaryAddress? = nil, acknowledger: PurgeAcknowledger, eventLoop: any EventLoop,
        clock: any CacheClock, logger: Logger
    ) throws(EdgeError) -> TenantTable {
        let config = try openSealedCredentials(sealedConfig, kek: kek)
        let standalone = try StandaloneKeyring(
            masterKey: masterKey, tenants: config.tenants.filter { $0.wrappedKeys.isEmpty },
            encryption: config.security.encryption)
        let keyring: any TenantKeyring =
            config.security.encryption
            ? try EnvelopeKeyring(kek: kek, tenants: config.tenants, standalone: standalone)
            : standalone
        let quotas = config.effectiveQuotas()
        var caches: [String: TenantCache] = [:]
        for tenant in config.tenants {
            let quota = quotas[tenant.id] ?? 0
            let kept = previous?.caches[tenant.id].flatMap { $0.occupancy().quota == quota ? $0 : nil }
            if let kept, kept.tenant == tenant {
                caches[tenant.id] = kept
            } else if let cipher = keyring.cipher(forTenant: tenant.id) {
                let fresh = TenantCache(tenant: tenant, cipher: cipher, quotaBytes: quota)
                // New keys or settings with the same names and upstream (a rotation): the entries carry over.
                if let kept, kept.tenant.upstream == tenant.upstream, fresh.sameNames(as: kept) {
                    caches[tenant.id] = TenantCache(tenant: tenant, cipher: cipher, continuing: kept)
                } else {
                    caches[tenant.id] = fresh
                }
            } else {
                throw EdgeError(
                    .invalidConfig,
                    "tenants: '\(tenant.id)' has no key: its bundle must carry keys, or set security.master_key_file")
            }
        }
        let (l2Tiers, allL2Tiers) = try makeL2Tiers(
            config: config, masterKey: masterKey, reusing: previous?.allL2Tiers ?? [], sentinelPrimary: sentinelPrimary,
            clock: clock, logger: logger)
        // The fences the current followers know, so the new ones catch purges made during the swap; only
        // for tenants that stay on the same L2 tier (another Redis's fence is another count).
        var knownFences: [String: Int] = [:]
        for follower in previous?.purgeFollowers ?? [] {
            for (tenant, fence) in follower.knownFences
            where previous?.l2Tiers[tenant] != nil && previous?.l2Tiers[tenant] === l2Tiers[tenant] {
                knownFences[tenant] = max(knownFences[tenant] ?? 0, fence)
            }
        }
        let followers = followSiblingPurges(
            tiers: l2Tiers, caches: caches, config: config, acknowledger: acknowledger, eventLoop: eventLoop,
            clock: clock, logger: logger, knownFences: knownFences)
        return TenantTable(
            version: version, tenants: config.tenants, regions: config.regions, caches: caches,
            l2Tiers: l2Tiers, allL2Tiers: allL2Tiers, purgeFollowers: followers)
    }

    /// Opens the Redis URLs a bundle carries sealed under the region KEK; a URL that does not open
    /// refuses the whole set, as a key that does not open does.
    static func openSealedCredentials(_ config: EdgeConfig, kek: [UInt8]?) throws(EdgeError) -> EdgeConfig {
        var config = config
        for index in config.tenants.indices {
            guard let sealed = config.tenants[index].sealedRedisURL else { continue }
            let id = config.tenants[index].id
            guard let kek, let plain = KeyWrap.open(sealed, kek: kek, aad: KeyWrap.redisURLAAD(tenant: id)),
                let url = String(validating: plain, as: UTF8.self), RedisEndpoint(parsing: url) != nil
            else {
                throw EdgeError(
                    .invalidConfig, "tenants: '\(id)'.redis_url_sealed does not open under security.kek_file")
            }
            config.tenants[index].redisURL = url
            config.tenants[index].sealedRedisURL = nil
        }
        return config
    }

    /// The tenant cache for a `Host` value: one dictionary read for an already-normalized host.
    func cache(forHost host: String) -> TenantCache? {
        cachesByHost[host] ?? cachesByHost[TenantDirectory.normalize(host: host)]
    }

    private static func makeL2Tiers(
        config: EdgeConfig, masterKey: [UInt8]?, reusing previous: [RedisTier], sentinelPrimary: RedisPrimaryAddress?,
        clock: any CacheClock, logger: Logger
    ) throws(EdgeError) -> ([String: RedisTier], [RedisTier]) {
        guard let redis = config.cache.redis, let shared = try sharedEndpoint(redis) else { return ([:], []) }
        // The shared endpoint's address comes from Sentinel when it is configured; a tenant's own
        // URL (`database` strategy) is always fixed.
        let sharedAddress = redis.sentinel == nil ? nil : sentinelPrimary
        var byTenant: [String: RedisTier] = [:]
        var all: [RedisTier] = []
        // A value is a stored response (its body bounded by the limit) and its head; 1 MiB of room.
        let maxReplyBytes = config.limits.maxResponseBodyBytes + (1 << 20)
        func tier(_ endpoint: RedisEndpoint, address: RedisPrimaryAddress?, connections: Int) -> RedisTier {
            func same(_ tier: RedisTier) -> Bool {
                tier.endpoint == endpoint && (address == nil ? !tier.address.followsSentinel : tier.address === address)
            }
            if let existing = all.first(where: same) { return existing }
            let made =
                previous.first(where: same)
                ?? RedisTier(
                    endpoint: endpoint, address: address, nodeID: config.node.id, connectionsPerLoop: connections,
                    timeoutMs: redis.timeoutMs, maxReplyBytes: maxReplyBytes, clock: clock, logger: logger)
            all.append(made)
            return made
        }
        let smallPool = 1  // per event loop: a `database` or `schema` tenant's own Redis
        for tenant in config.tenants {
            switch config.isolation(of: tenant) {
            case .row, .hybrid:
                byTenant[tenant.id] = tier(shared, address: sharedAddress, connections: redis.poolSize)
            case .database:
                guard let url = tenant.redisURL, let own = RedisEndpoint(parsing: url) else {
                    throw EdgeError(
                        .invalidConfig, "tenants: '\(tenant.id)'.redis_url is required under the database strategy")
                }
                byTenant[tenant.id] = tier(own, address: nil, connections: smallPool)
            case .schema:
                guard let masterKey else {
                    throw EdgeError(
                        .invalidConfig,
                        "security.master_key_file: the schema strategy derives Redis ACL passwords from it")
                }
                var own = shared
                own.user = RedisACL.user(for: tenant.id)
                own.password = try StandaloneKeyring.redisACLPassword(masterKey: masterKey, tenant: tenant.id)
                byTenant[tenant.id] = tier(own, address: sharedAddress, connections: smallPool)
            }
        }
        return (byTenant, all)
    }

    /// The shared tier's endpoint: `cache.redis.url`, or with Sentinel the credentials and database
    /// alone (the address is the watcher's; host and port here are placeholders never dialled).
    private static func sharedEndpoint(_ redis: EdgeConfig.Redis) throws(EdgeError) -> RedisEndpoint? {
        guard let sentinel = redis.sentinel else { return RedisEndpoint(parsing: redis.url) }
        let password = try sentinel.passwordFile.map { path throws(EdgeError) in
            try PasswordFile.read(path, key: "cache.redis.sentinel.password_file")
        }
        return RedisEndpoint(
            host: "sentinel:\(sentinel.master)", port: 0, database: sentinel.database, password: password)
    }

    private static func followSiblingPurges(
        tiers: [String: RedisTier], caches: [String: TenantCache], config: EdgeConfig, acknowledger: PurgeAcknowledger,
        eventLoop: any EventLoop, clock: any CacheClock, logger: Logger, knownFences: [String: Int]
    ) -> [SiblingPurgeFollower] {
        var tenantsByTier: [ObjectIdentifier: (RedisTier, [String])] = [:]
        for tenant in config.tenants {
            guard let tier = tiers[tenant.id] else { continue }
            tenantsByTier[ObjectIdentifier(tier), default: (tier, [])].1.append(tenant.id)
        }
        return tenantsByTier.values.map { tier, tenants in
            SiblingPurgeFollower(
                primary: { tier.currentPrimary }, tenants: tenants, nodeID: config.node.id,
                timeoutMs: config.cache.redis?.timeoutMs ?? 500, clock: clock, logger: logger,
                knownFences: knownFences,
                apply: { tenant, notice in caches[tenant]?.purge(notice) ?? 0 },
                drop: { tenant, change in
                    // Purges up to the fence may have been missed: L1 goes unless nothing was known
                    // and nothing is held; then this node has applied them all, and says so.
                    guard let cache = caches[tenant], change != .unknown || cache.occupancy().entries > 0 else {
                        return 0
                    }
                    return cache.purge(keys: [], tags: [], prefixes: [], all: true)
                },
                acknowledge: { tenant, fence, removed, change in
                    // For the dashboard's purge results: this node has applied the tenant's purges up to here.
                    let acknowledgement = PurgeAcknowledgement(fence: fence, at: clock.now(), removed: removed)
                    acknowledger.acknowledge(
                        tenant: tenant, acknowledgement, tier: tier, fenceWentBack: change == .back, on: eventLoop)
                })
        }
    }
}
