import Foundation
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
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
    /// Every event loop, so a table swap can reach each lane's copy of the table.
    private let group: any EventLoopGroup
    /// Set when the node stops: the event loops may be gone, so nothing is scheduled on them.
    private let stopping = Atomic<Bool>(false)
    let clock: any CacheClock
    let upstream: UpstreamClient
    let metrics: EdgeMetrics
    /// The region's other nodes and purge acknowledgements, for the dashboard.
    let regionPeers = RegionPeers()
    /// Writes this node's purge acknowledgements until Redis holds them.
    let acknowledger: PurgeAcknowledger
    /// Request ids and trace ids for what goes upstream.
    let requestIDs = RequestIDs()
    /// Sampled per-tenant access log lines.
    let accessLog: AccessLog
    /// Spans of the miss path and the service exporting them; nil without `tracing.otlp_endpoint`.
    let tracing: MissTracing?
    let tracingExporter: (any Service)?
    let adminTokens: AdminTokens
    /// `<state_dir>/audit.jsonl`: the tamper-evident audit log.
    package let audit: AuditLog
    /// Client addresses, `geoip.database` (opened at start: a missing or corrupt file stops
    /// start-up) and the region decisions.
    package let geo: GeoRouting
    let logger: Logger
    let startedAt: Double
    /// In-flight upstream fetches by key; protects the waiters of each collapsed miss.
    let collapser = Mutex(RequestCollapser<CollapseKey, EventLoopPromise<FetchOutcome>>())
    /// Security events and client-provoked warnings, throttled.
    let events: SecurityEvents
    /// The invalidation feed's cursor and lag.
    let feedStatus: FeedStatus
    /// What a tenant table swap leaves to do: L2 erasures, followers and tiers to stop.
    let retirements: TenantRetirements
    /// Runs each table's sibling purge followers from when the table is built.
    let siblingFollowers = SiblingFollowers()
    /// Follows Redis Sentinel for the shared tier's primary (`cache.redis.sentinel`); nil otherwise.
    let sentinel: SentinelWatcher?

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
        self.group = group
        acknowledger = PurgeAcknowledger(node: config.node.id)
        self.adminTokens = try AdminTokensReader.load(path: config.security.adminTokensFile)
        self.audit = try AuditLog(stateDirectory: config.stateDir, clock: clock, logger: logger)
        geo = try GeoRouting(config: config, logger: logger)
        if let redis = config.cache.redis, let sentinelConfig = redis.sentinel {
            sentinel = try SentinelWatcher(
                config: sentinelConfig, address: RedisPrimaryAddress(followingSentinel: ()), timeoutMs: redis.timeoutMs,
                eventLoop: eventLoop, clock: clock, logger: logger)
        } else {
            sentinel = nil
        }
        current = Mutex(
            try TenantTable.build(
                config: config, version: 0, masterKey: masterKey, kek: kek, previous: nil,
                sentinelPrimary: sentinel?.address, acknowledger: acknowledger, eventLoop: eventLoop, clock: clock,
                logger: logger))
        self.upstream = UpstreamClient(group: group, limits: config.limits)
        self.metrics = EdgeMetrics(registry: registry, tenants: config.tenants.map(\.id))
        self.startedAt = clock.now()
        self.accessLog = AccessLog(logger: logger, requestIDs: requestIDs)
        do {
            let made = try MissTracing.make(config.tracing, logger: logger)
            (tracing, tracingExporter) = (made?.0, made?.1)
        } catch {
            throw EdgeError(.invalidConfig, "tracing: the OTLP exporter cannot be set up: \(error)")
        }
        events = SecurityEvents(
            nodeID: config.node.id, metrics: metrics, audit: audit, clock: clock, logger: logger)
        feedStatus = FeedStatus(maxLagSeconds: config.origin?.maxInvalidationLagSeconds)
        retirements = TenantRetirements(
            region: config.node.region, eventLoop: eventLoop, clock: clock, audit: audit, logger: logger)
        siblingFollowers.start(table.purgeFollowers)
        retirements.checkServed { [weak self] tenant in
            guard let self, let config = self.current.withLock({ $0 }).tenants.first(where: { $0.id == tenant })
            else { return false }
            return self.mayStore(config)
        }
        if let sentinel {
            // After a failover, writes the old primary took and never passed on are lost, purges
            // and fences among them: each tenant on it drops its L2 generation on the new primary
            // and its L1. Once the new address is published, every purge follower (a prepared
            // table's too) subscribes anew: the old primary may live on, cut off, and keep a
            // subscription that hears nothing.
            sentinel.whenSwitched { [weak self] in
                guard let self else { return }
                let table = self.table
                for (tenant, tier) in table.l2Tiers where tier.address === sentinel.address {
                    tier.markUntrusted(tenant, because: "the L2 primary switched", on: eventLoop)
                    _ = table.caches[tenant]?.purge(keys: [], tags: [], prefixes: [], all: true)
                }
            }
            sentinel.afterSwitch { [siblingFollowers] in siblingFollowers.resubscribeAll() }
        }
    }

    /// The tenant set in force now.
    /// The current table. Each event loop keeps the one it last read with the swap count it was read
    /// at, so a request reads one counter (shared, but written only by a swap) instead of taking a
    /// lock both cores contend for; a swap bumps the count after installing, and the next request
    /// on each loop takes the lock once to pick up the new table.
    var table: TenantTable {
        let swaps = tableSwaps.load(ordering: .acquiring)
        let cached = laneTables.withValue(make: { (swaps: -1, table: Optional<TenantTable>.none) }) { lane in
            if lane.swaps != swaps || lane.table == nil { lane = (swaps, current.withLock { $0 }) }
            return lane.table
        }
        return (cached ?? nil) ?? current.withLock { $0 }
    }
    /// Table swaps so far; `table` compares it with what each lane cached.
    private let tableSwaps = Atomic<Int>(0)
    /// Set when the persisted bundle was not trusted at start and the node waits for the origin's:
    /// no tenant is served (`503 config_pending`) and readiness is false until a bundle applies.
    let awaitingBundle = Atomic<Bool>(false)
    private let laneTables = LaneLocal<(swaps: Int, table: TenantTable?)>()
    /// Each event loop's buffer that hits open their entry into (`TenantTrafficResponder`).
    let laneBuffers = LaneLocal<ByteBuffer>()
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
        let prepared = try TenantTable.build(
            config: config, version: version, masterKey: masterKey, kek: kek, previous: table,
            sentinelPrimary: sentinel?.address, acknowledger: acknowledger, eventLoop: eventLoop, clock: clock,
            logger: logger)
        // Following from now: the new table hears siblings' purges before it is swapped in.
        siblingFollowers.start(prepared.purgeFollowers)
        return prepared
    }

    /// Swaps a prepared tenant set in. Tenants that are gone stop being served at once; their L1 is
    /// emptied and their L2 generation dropped; tiers and followers no longer used are stopped.
    func activate(_ next: TenantTable) {
        // A tenant back (or storing again) while this node still erases its earlier data from L2:
        // until a generation drop of its own succeeds, it neither reads nor writes L2. Otherwise,
        // under the same keys (a bundle without wrapped keys for this region), it read its erased
        // entries back into L1 before the erasure reached them, and kept them after it was confirmed.
        // Only at its return: marking it again at each later push would empty its L2 each time.
        let running = current.withLock { $0 }
        for tenant in next.tenants where mayStore(tenant) && retirements.isErasing(tenant.id) {
            if let before = running.tenants.first(where: { $0.id == tenant.id }), mayStore(before) { continue }
            next.l2Tiers[tenant.id]?.markUntrusted(
                tenant.id, because: "an erasure of this tenant's earlier data is still running", on: eventLoop)
        }
        let previous = current.withLock { current in
            defer { current = next }
            return current
        }
        tableSwaps.add(1, ordering: .releasing)
        acknowledger.keepOnly(tiers: next.l2Tiers)
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
        // Data this node may no longer hold: tenants that left, and tenants whose residency now
        // excludes this region (they stay served, bypassing both tiers, but nothing of theirs is
        // kept). L1 goes now; L2 in the background (`TenantRetirements`).
        var erasures: [TenantRetirements.Erasure] = []
        for tenant in previous.tenants.map(\.id) where next.caches[tenant] == nil {
            _ = previous.caches[tenant]?.purge(keys: [], tags: [], prefixes: [], all: true)
            erasures.append(.init(tenant: tenant, tier: previous.l2Tiers[tenant], confirm: true))
        }
        for tenant in next.tenants where !mayStore(tenant) {
            guard let before = previous.tenants.first(where: { $0.id == tenant.id }), mayStore(before) else { continue }
            _ = next.caches[tenant.id]?.purge(keys: [], tags: [], prefixes: [], all: true)
            erasures.append(.init(tenant: tenant.id, tier: next.l2Tiers[tenant.id], confirm: false))
        }
        retirements.submit(
            .init(
                erasures: erasures, followers: previous.purgeFollowers,
                tiers: previous.allL2Tiers.filter { old in !next.allL2Tiers.contains { $0 === old } }, grace: 1))
        // Each lane keeps the table it last read until its next request; an idle event loop would
        // keep the old one, with retired keys' contexts and removed tenants' tiers, alive. Each
        // loop picks up the new table now instead.
        guard !stopping.load(ordering: .acquiring) else { return }
        for loop in group.makeIterator() { loop.execute { [self] in _ = self.table } }
    }

    /// Called with a tenant's id once all its data is gone from this node (L1 and L2).
    func observeErasures(_ observer: @escaping @Sendable (String) -> Void) { retirements.observeErasures(observer) }

    /// Stops what a prepared tenant set started but the running one does not use (it was not applied).
    func discard(_ prepared: TenantTable) {
        let running = current.withLock { $0 }
        retirements.submit(
            .init(
                erasures: [], followers: prepared.purgeFollowers,
                tiers: prepared.allL2Tiers.filter { new in !running.allL2Tiers.contains { $0 === new } }, grace: 0))
    }

    /// Whether this node may store the tenant's data (its region is in the tenant's residency).
    func mayStore(_ tenant: TenantConfig) -> Bool {
        tenant.residency.isEmpty || tenant.residency.contains(config.node.region)
    }

    /// Purges one tenant in every tier (`TenantInvalidator`) through the table in force now.
    func purge(_ request: PurgeRequest, cache: TenantCache, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        TenantInvalidator(metrics: metrics).purge(request, cache: cache, tier: l2(for: cache.tenant.id), on: eventLoop)
    }

    /// `purge`, also telling where it got in L2 (siblings hear of it only once Redis took it).
    func purgeReporting(_ request: PurgeRequest, cache: TenantCache, on eventLoop: any EventLoop)
        -> EventLoopFuture<(removed: Int, reach: PurgeReach)>
    {
        TenantInvalidator(metrics: metrics).purgeReporting(
            request, cache: cache, tier: l2(for: cache.tenant.id), on: eventLoop)
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
        stopping.store(true, ordering: .releasing)
        try? await upstream.shutdown()
        let table = self.table
        for follower in table.purgeFollowers { await follower.stop() }
        for tier in table.allL2Tiers { await tier.shutdown() }
        audit.flush()
    }
}
