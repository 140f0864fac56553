import Foundation
import Logging
import NIOCore
import Prometheus
import Synchronization
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// Key of one collapsed upstream fetch: a tenant's request target.
struct CollapseKey: Hashable, Sendable {
    var tenant: String
    var target: String
}

/// Everything a running node shares between its listeners: the tenant directory, each tenant's
/// cache, the upstream client, metrics and the collapsing table. Built whole from a validated
/// config, so a node either starts with all of it or not at all.
package final class EdgeRuntime: Sendable {
    /// The node's own file. Its `tenants` and `regions` are only the start-up set: the current
    /// ones are in `table`, which a config bundle replaces.
    package let config: EdgeConfig
    private let current: Mutex<TenantTable>  // swapped whole by `install`
    private let masterKey: [UInt8]?
    /// The region KEK (`security.kek_file`): opens the tenant keys in bundles. Held in memory only.
    private let kek: [UInt8]?
    let eventLoop: any EventLoop
    let clock: any CacheClock
    let upstream: UpstreamClient
    let metrics: EdgeMetrics
    let adminTokens: AdminTokens
    /// `<state_dir>/audit.jsonl`: the tamper-evident audit log.
    package let audit: AuditLog
    /// Client addresses, `geoip.database` (opened at start: a missing or corrupt file stops
    /// start-up) and the region decisions.
    package let geo: GeoRouting
    /// When each tenant's last `residency_bypass` was audited (seconds, the clock's).
    private let residencyAudited = Mutex<[String: Double]>([:])
    let logger: Logger
    let startedAt: Double
    /// In-flight upstream fetches by key; protects the waiters of each collapsed miss.
    let collapser = Mutex(RequestCollapser<CollapseKey, EventLoopPromise<FetchOutcome>>())
    package let securityEventCount = Atomic<Int>(0)
    /// The invalidation feed's cursor, and when the origin last answered it (ms since the epoch).
    package let invalidationCursor = Atomic<Int>(0)
    let invalidationHeardMs = Atomic<Int>(0)

    init(
        config: EdgeConfig, group: any EventLoopGroup, registry: PrometheusCollectorRegistry, logger: Logger,
        clock: any CacheClock = SystemCacheClock()
    ) throws(EdgeError) {
        self.config = config
        self.clock = clock
        self.logger = logger
        if let path = config.security.masterKeyFile, !path.isEmpty {
            masterKey = try StandaloneKeyring.readKeyFile(path, key: "security.master_key_file")
        } else {
            masterKey = nil
        }
        if let path = config.security.kekFile, !path.isEmpty {
            kek = try StandaloneKeyring.readKeyFile(path, key: "security.kek_file")
        } else {
            kek = nil
        }
        eventLoop = group.next()
        self.adminTokens = try AdminTokensReader.load(path: config.security.adminTokensFile)
        self.audit = try AuditLog(stateDirectory: config.stateDir, clock: clock, logger: logger)
        geo = try GeoRouting(config: config, logger: logger)
        current = Mutex(
            try TenantTable.build(
                config: config, version: 0, masterKey: masterKey, kek: kek, previous: nil, eventLoop: eventLoop,
                clock: clock, logger: logger))
        self.upstream = UpstreamClient(group: group, limits: config.limits)
        self.metrics = EdgeMetrics(
            registry: registry, tenants: config.tenants.map(\.id), hasRedis: config.cache.redis != nil)
        self.startedAt = clock.now()
    }

    /// The tenant set in force now.
    var table: TenantTable { current.withLock { $0 } }
    package var caches: [String: TenantCache] { table.caches }
    func cache(forHost host: String) -> TenantCache? { table.cache(forHost: host) }
    func l2(for tenant: String) -> RedisTier? { table.l2Tiers[tenant] }
    var allL2Tiers: [RedisTier] { table.allL2Tiers }

    /// Whether every L2 tier is up; nil without L2.
    var l2IsUp: Bool? {
        let tiers = allL2Tiers
        return tiers.isEmpty ? nil : tiers.allSatisfy(\.isUp)
    }

    /// Builds the tenant set of `config` (a bundle's tenants and regions over the node file),
    /// reusing what has not changed. Throws, having started nothing, when it cannot be built.
    func prepare(_ config: EdgeConfig, version: Int) throws(EdgeError) -> TenantTable {
        try TenantTable.build(
            config: config, version: version, masterKey: masterKey, kek: kek, previous: table,
            eventLoop: eventLoop, clock: clock, logger: logger)
    }

    /// Swaps a prepared tenant set in. Tenants that are gone stop being served at once; their L1 is
    /// emptied and their L2 generation dropped; tiers and followers no longer used are stopped.
    func activate(_ next: TenantTable) {
        let previous = current.withLock { current in
            defer { current = next }
            return current
        }
        let version = next.version
        // Key versions the new set no longer lists: their entries go now (they could not be opened anyway).
        for cache in next.caches.values where previous.caches[cache.tenant.id] !== cache {
            let dropped = cache.dropRetiredEntries()
            if dropped > 0 {
                logger.info(
                    "entries under retired keys dropped",
                    metadata: ["tenant": "\(cache.tenant.id)", "entries": "\(dropped)"])
            }
            // L2: sweep each version the tenant's keys no longer list, through that version's own list.
            let before = Set(previous.tenants.first { $0.id == cache.tenant.id }?.wrappedKeys.map(\.version) ?? [])
            let retired = before.subtracting(cache.tenant.wrappedKeys.map(\.version))
            if let tier = next.l2Tiers[cache.tenant.id] {
                for version in retired { _ = tier.sweep(tenant: cache.tenant.id, keyVersion: version, on: eventLoop) }
            }
        }
        geo.forgetDecisions()  // residency and regions may have changed
        metrics.registerTenants(next.tenants.map(\.id))
        metrics.setConfigVersion(version)
        // Data this node may no longer hold: tenants that left, and tenants whose residency now
        // excludes this region (they stay served, bypassing both tiers, but nothing of theirs is kept).
        var erasures: [ObjectIdentifier: [EventLoopFuture<Void>]] = [:]
        func track(_ tier: RedisTier?, _ done: EventLoopFuture<Void>) {
            if let tier { erasures[ObjectIdentifier(tier), default: []].append(done) }
        }
        for tenant in previous.tenants.map(\.id) where next.caches[tenant] == nil {
            track(
                previous.l2Tiers[tenant],
                erase(tenant, cache: previous.caches[tenant], tier: previous.l2Tiers[tenant], confirm: true))
        }
        for tenant in next.tenants where !mayStore(tenant) {
            guard let before = previous.tenants.first(where: { $0.id == tenant.id }), mayStore(before) else { continue }
            track(
                next.l2Tiers[tenant.id],
                erase(tenant.id, cache: next.caches[tenant.id], tier: next.l2Tiers[tenant.id], confirm: false))
        }
        let unusedTiers = previous.allL2Tiers.filter { old in !next.allL2Tiers.contains { $0 === old } }
        let oldFollowers = previous.purgeFollowers
        Task {
            for follower in oldFollowers { await follower.stop() }
            try? await Task.sleep(for: .seconds(1))  // let in-flight calls and the generation drops finish
            for tier in unusedTiers {
                // A tier an erasure still works on stays up until the erasure is done (a removed
                // `database` or `schema` tenant's own Redis): shut earlier, it would never confirm.
                for done in erasures[ObjectIdentifier(tier)] ?? [] { try? await done.get() }
                await tier.shutdown()
            }
        }
    }

    /// Seconds since the invalidation feed last heard from the origin; nil standalone.
    func invalidationLag(now: Double) -> Double? {
        guard config.origin != nil else { return nil }
        return max(0, now - Double(invalidationHeardMs.load(ordering: .relaxed)) / 1000)
    }

    /// Bounded staleness: when the feed has been silent for longer than
    /// `max_invalidation_lag_s`, entries older than that are revalidated before they are served.
    /// Nil while the feed is healthy (or standalone): no limit.
    func stalenessLimit(now: Double) -> Double? {
        guard let origin = config.origin else { return nil }
        let limit = Double(origin.maxInvalidationLagSeconds)
        return now - Double(invalidationHeardMs.load(ordering: .relaxed)) / 1000 > limit ? limit : nil
    }

    /// Called with a tenant's id once all its data is gone from this node (L1 and L2).
    private let erasureObserver = Mutex<(@Sendable (String) -> Void)?>(nil)
    func observeErasures(_ observer: @escaping @Sendable (String) -> Void) {
        erasureObserver.withLock { $0 = observer }
    }

    /// A tenant's data leaves this node: its L1 entries now, then every key of it in L2 (its
    /// generation dropped first, so nothing of it is read meanwhile), retried until Redis answers.
    /// For a tenant that left the tenant set (`confirm`), the observer (the feed) then confirms the
    /// erasure to the origin; its keys are dropped with the old tenant set. Completes when done.
    @discardableResult
    private func erase(_ tenant: String, cache: TenantCache?, tier: RedisTier?, confirm: Bool) -> EventLoopFuture<Void>
    {
        _ = cache?.purge(keys: [], tags: [], prefixes: [], all: true)
        let eventLoop = self.eventLoop
        let done = eventLoop.makePromise(of: Void.self)
        @Sendable func eraseL2(attempt: Int) {
            guard let tier else { return finished() }
            tier.dropGeneration(tenant: tenant, on: eventLoop).flatMap { _ in tier.erase(tenant: tenant, on: eventLoop)
            }.whenSuccess { done in
                if done { return finished() }
                eventLoop.scheduleTask(in: .milliseconds(Int64(min(5000, 200 << min(attempt, 5))))) {
                    eraseL2(attempt: attempt + 1)
                }
            }
        }
        @Sendable func finished() {
            defer { done.succeed() }
            guard confirm else {
                logger.info("tenant data dropped: residency excludes this region", metadata: ["tenant": "\(tenant)"])
                audit.record(
                    "residency_dropped", actor: "node", tenant: tenant, details: ["region": config.node.region])
                return
            }
            logger.info("tenant erased from this node", metadata: ["tenant": "\(tenant)"])
            audit.record(
                "tenant_erased", actor: "node", tenant: tenant,
                details: ["tiers": tier == nil ? "memory" : "memory,redis"])
            erasureObserver.withLock { $0 }?(tenant)
        }
        eraseL2(attempt: 0)
        return done.futureResult
    }

    /// Stops what a prepared tenant set started but the running one does not use (it was not applied).
    func discard(_ prepared: TenantTable) {
        let running = table
        let tiers = prepared.allL2Tiers.filter { new in !running.allL2Tiers.contains { $0 === new } }
        let followers = prepared.purgeFollowers
        Task {
            for follower in followers { await follower.stop() }
            for tier in tiers { await tier.shutdown() }
        }
    }

    /// How many audit and log lines security events may write (`SecurityEventThrottle`).
    private let securityLines = Mutex(SecurityEventThrottle())
    /// The same bound for warnings any client can provoke (an upstream that fails under a flood).
    private let warningLines = Mutex(SecurityEventThrottle())

    /// Logs a warning at most a few times a minute per `kind`, saying how many were left out.
    func throttledWarning(_ kind: String, _ message: Logger.Message, metadata: Logger.Metadata = [:]) {
        let now = clock.now()
        guard case .write(let suppressed) = warningLines.withLock({ $0.admit(kind: kind, now: now) }) else { return }
        var all = metadata
        if suppressed > 0 { all["suppressed_before"] = "\(suppressed)" }
        logger.warning(message, metadata: all)
    }

    /// A security event: counted in metrics every time; logged and audited with the tenant id only
    /// (never key material or bodies), at most a few lines per kind a minute, the next written line
    /// saying how many were left out.
    func securityEvent(_ kind: String, tenant: String, detail: String) {
        metrics.recordSecurityEvent(kind)
        securityEventCount.add(1, ordering: .relaxed)
        let now = clock.now()
        // Per kind and tenant (tenant ids come from the config, so the set is bounded): one tenant's
        // flood never hides another's events.
        let key = kind + ":" + tenant
        guard case .write(let suppressed) = securityLines.withLock({ $0.admit(kind: key, now: now) }) else { return }
        var details = ["detail": detail]
        if suppressed > 0 { details["suppressed_before"] = String(suppressed) }
        audit.record(kind, actor: "node:\(config.node.id)", tenant: tenant == "-" ? nil : tenant, details: details)
        logger.warning(
            "security event",
            metadata: [
                "kind": "\(kind)", "tenant": "\(tenant)", "detail": "\(detail)",
                "suppressed_before": "\(suppressed)",
            ])
    }

    /// Whether this node may store the tenant's data (its region is in the tenant's residency).
    func mayStore(_ tenant: TenantConfig) -> Bool {
        tenant.residency.isEmpty || tenant.residency.contains(config.node.region)
    }

    /// A request of a tenant whose residency excludes this region was served without storing:
    /// audited as `residency_bypass`, at most once a minute per tenant (the log records that it
    /// happens, not every request).
    func residencyBypassed(_ tenant: String, clientRegion: String?) {
        let now = clock.now()
        let due = residencyAudited.withLock { audited in
            guard now - (audited[tenant] ?? -.infinity) >= 60 else { return false }
            audited[tenant] = now
            return true
        }
        guard due else { return }
        var details = ["region": config.node.region]
        if let clientRegion { details["preferred_region"] = clientRegion }
        audit.record("residency_bypass", actor: "node:\(config.node.id)", tenant: tenant, details: details)
    }

    /// Purges one tenant in every tier: L1 at once; in L2 keys are deleted, tags and prefixes through
    /// their index sets, `all` by dropping the tenant's generation. A purge that cannot reach Redis
    /// makes the tenant's L2 untrusted until a generation drop succeeds. Returns the entries removed
    /// that could be counted.
    func purge(_ original: PurgeRequest, cache: TenantCache, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        // Keys and prefixes in the form the traffic path keys them, so purging `/a/../b` reaches `/b`.
        var request = original
        if cache.tenant.normalizePath {
            func normalized(_ target: String) -> String {
                target.hasPrefix("/") ? RequestTarget.normalize(target) ?? target : target
            }
            request.keys = request.keys.map(normalized)
            request.prefixes = request.prefixes.map(normalized)
        }
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
        let byIndex =
            indexes.isEmpty
            ? eventLoop.makeSucceededFuture(Optional(0)) : l2.purge(tenant: tenant, indexes: indexes, on: eventLoop)
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
        let table = self.table
        for follower in table.purgeFollowers { await follower.stop() }
        for tier in table.allL2Tiers { await tier.shutdown() }
        audit.flush()
    }
}
