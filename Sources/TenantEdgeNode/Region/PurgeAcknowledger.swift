import NIOCore
import Synchronization
import TenantEdgeCore

/// Writes this node's purge acknowledgements to the tenants' Redis and keeps writing each until
/// Redis confirms it (`UnwrittenAcknowledgements` decides what goes when): a purge this node applied,
/// from its own admin API or heard from a sibling, must show as applied here in the purge status,
/// even when the first write met a timeout, an open breaker or a Redis that was restarting. Each
/// acknowledgement goes only to the tier whose fence it counts, and only while the tenant is still
/// on that tier. `RegionBeacon` calls `retry` on its timer.
final class PurgeAcknowledger: Sendable {
    /// A tier by identity: fences are counted by each Redis on its own.
    struct Tier: Equatable, Sendable {
        let tier: RedisTier
        static func == (left: Tier, right: Tier) -> Bool { left.tier === right.tier }
    }

    private let node: String
    private let unwritten = Mutex(UnwrittenAcknowledgements<Tier>())

    init(node: String) { self.node = node }

    /// Acknowledgements waiting for Redis, for `/metrics` and tests.
    var waiting: Int { unwritten.withLock { $0.count } }

    /// This node applied `tenant`'s purges up to `acknowledgement.fence`, as `tier` counts them;
    /// `fenceWentBack` when a resync read the fence lower than the one known (only then may a lower
    /// acknowledgement replace a higher one waiting).
    func acknowledge(
        tenant: String, _ acknowledgement: PurgeAcknowledgement, tier: RedisTier, fenceWentBack: Bool = false,
        on eventLoop: any EventLoop
    ) {
        guard
            let write = unwritten.withLock({
                $0.applied(tenant: tenant, acknowledgement, on: Tier(tier: tier), fenceWentBack: fenceWentBack)
            })
        else { return }
        send(write, on: eventLoop)
    }

    /// The retry timer: writes again what Redis has not confirmed, each to its own tier while
    /// `tierOf` still gives the tenant that tier (otherwise it is dropped: the tenant left, or moved
    /// to a Redis that counts other fences).
    func retry(tierOf: (String) -> RedisTier?, on eventLoop: any EventLoop) {
        for write in unwritten.withLock({ $0.retryDue() }) {
            guard tierOf(write.tenant) === write.source.tier else {
                unwritten.withLock { $0.forget(write.tenant, on: write.source) }
                continue
            }
            send(write, on: eventLoop)
        }
    }

    /// After a table swap: only acknowledgements of tenants still on the same tier stay.
    func keepOnly(tiers: [String: RedisTier]) {
        unwritten.withLock { $0.keepOnly { tenant, source in tiers[tenant] === source.tier } }
    }

    private func send(_ write: UnwrittenAcknowledgements<Tier>.Write, on eventLoop: any EventLoop) {
        write.source.tier.acknowledge(tenant: write.tenant, node: node, write.acknowledgement, on: eventLoop)
            .whenSuccess { [self] confirmed in
                if let next = unwritten.withLock({ $0.writeEnded(write, confirmed: confirmed) }) {
                    send(next, on: eventLoop)
                }
            }
    }
}
