import NIOCore
import ServiceLifecycle
import Synchronization
import TenantEdgeCore

/// The node's view of its region for the dashboard: its own status, its siblings' beacons from the
/// region's Redis, and which nodes have applied a purge. Without Redis a node knows only itself.
final class RegionPeers: Sendable {
    /// Purges this node was asked for through its admin API, by id: when it applied them and what
    /// it removed (the last 256).
    private let ownPurges = Mutex<[(id: String, acknowledgement: PurgeAcknowledgement)]>([])

    /// The tier beacons are kept on: the region's shared endpoint, as used by any tenant of the
    /// `row` or `hybrid` strategy (with the node's own credentials). Without one (every tenant in its
    /// own database or ACL user) there is no beacon: the dashboard shows this node alone.
    func beaconTier(_ runtime: EdgeRuntime) -> RedisTier? {
        for tenant in runtime.table.tenants.sorted(by: { $0.id < $1.id }) {
            let isolation = runtime.config.isolation(of: tenant)
            if isolation == .row || isolation == .hybrid, let tier = runtime.l2(for: tenant.id) { return tier }
        }
        return nil
    }

    /// This node's status now.
    func beacon(_ runtime: EdgeRuntime) -> NodeBeacon {
        let now = runtime.clock.now()
        let feed = runtime.feedStatus
        let redis = runtime.l2IsUp.map { $0 ? "up" : "down" } ?? "none"
        let originFeed = feed.follows ? (feed.isUp ? "up" : "down") : "standalone"
        var keyVersions: [String: [UInt32]] = [:]
        for tenant in runtime.table.tenants {
            let held = tenant.wrappedKeys.map(\.version)
            keyVersions[tenant.id] = held.isEmpty ? runtime.caches[tenant.id].map { [$0.cipher.keyVersion] } : held
        }
        return NodeBeacon(
            id: runtime.config.node.id, region: runtime.config.node.region, at: now,
            cursor: feed.cursor.load(ordering: .relaxed), lagSeconds: feed.lag(now: now),
            configVersion: runtime.table.version,
            tiers: ["redis": redis, "origin_feed": originFeed, "geoip": runtime.geo.hasDatabase ? "loaded" : "none"],
            keyVersions: keyVersions)
    }

    func publishBeacon(_ runtime: EdgeRuntime) {
        beaconTier(runtime)?.publish(beacon(runtime), on: runtime.eventLoop)
    }

    /// This node first, then the siblings whose beacons Redis holds.
    func nodes(_ runtime: EdgeRuntime, on eventLoop: any EventLoop) -> EventLoopFuture<[NodeBeacon]> {
        let own = beacon(runtime)
        guard let tier = beaconTier(runtime) else { return eventLoop.makeSucceededFuture([own]) }
        return tier.beacons(now: own.at, on: eventLoop).map { beacons in
            [own] + (beacons ?? []).filter { $0.id != own.id && $0.region == own.region }.sorted { $0.id < $1.id }
        }
    }

    /// After a purge through the admin API: its id (the fence its own scripts made, or 0 without
    /// L2), with this node's acknowledgement recorded here and in the Redis that made the fence. A
    /// purge that did not reach Redis gets `PurgeID.notPropagated`: no sibling has heard of it, so
    /// none may be counted, and no such fence is written as an acknowledgement (it would count for
    /// every later purge). The id is never a fence read afterwards: that could count a sibling's
    /// purge this node has not applied yet, or an erasure's fence move no sibling acknowledges.
    func purged(tenant: String, removed: Int, reach: PurgeReach, runtime: EdgeRuntime, on eventLoop: any EventLoop)
        -> PurgeID
    {
        let fence: Int
        switch reach {
        case .noSharedTier: fence = 0
        case .notReached: fence = PurgeID.notPropagated
        case .reached(let made, _): fence = made
        }
        let id = PurgeID(tenant: tenant, fence: fence)
        let acknowledgement = PurgeAcknowledgement(fence: id.fence, at: runtime.clock.now(), removed: removed)
        ownPurges.withLock { purges in
            purges.append((id.description, acknowledgement))
            if purges.count > 256 { purges.removeFirst(purges.count - 256) }
        }
        if case .reached(_, let tier) = reach {
            runtime.acknowledger.acknowledge(tenant: tenant, acknowledgement, tier: tier, on: eventLoop)
        }
        return id
    }

    /// Which nodes have applied the purge `id`: this node when it ran it here, and every sibling
    /// whose acknowledgement in Redis reached its fence (a purge without L2 reaches no sibling).
    func acknowledgements(of id: PurgeID, runtime: EdgeRuntime, on eventLoop: any EventLoop)
        -> EventLoopFuture<[String: PurgeAcknowledgement]>
    {
        let node = runtime.config.node.id
        var own: [String: PurgeAcknowledgement] = [:]
        if let purge = ownPurges.withLock({ $0.last { $0.id == id.description } }) { own[node] = purge.acknowledgement }
        guard id.fence > 0, let tier = runtime.l2(for: id.tenant) else { return eventLoop.makeSucceededFuture(own) }
        return tier.acknowledgements(tenant: id.tenant, on: eventLoop).map { [own] acks in
            var result = own
            for (peer, ack) in acks ?? [:] where peer != node && ack.fence >= id.fence { result[peer] = ack }
            return result
        }
    }
}

/// Writes this node's beacon to the region's Redis every 2 s on the node's clock, and with it the
/// purge acknowledgements Redis has not confirmed yet (`PurgeAcknowledger`).
struct RegionBeacon: Service {
    static let interval = 2.0
    let runtime: EdgeRuntime

    func run() async throws {
        await cancelWhenGracefulShutdown { [runtime] in
            runtime.regionPeers.publishBeacon(runtime)
            while (try? await runtime.clock.sleep(seconds: Self.interval)) != nil {
                runtime.regionPeers.publishBeacon(runtime)
                runtime.acknowledger.retry(tierOf: { runtime.l2(for: $0) }, on: runtime.eventLoop)
            }
        }
    }
}
