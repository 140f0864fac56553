import NIOCore
import Synchronization
import TenantEdgeCore

/// Writes this node's purge acknowledgements to the tenants' Redis and keeps writing each until
/// Redis confirms it (`UnwrittenAcknowledgements` decides what goes when): a purge this node applied,
/// from its own admin API or heard from a sibling, must show as applied here in the purge status,
/// even when the first write met a timeout, an open breaker or a Redis that was restarting.
/// `RegionBeacon` calls `retry` on its timer.
final class PurgeAcknowledger: Sendable {
    private let node: String
    private let unwritten = Mutex(UnwrittenAcknowledgements())

    init(node: String) { self.node = node }

    /// Acknowledgements waiting for Redis, for `/metrics` and tests.
    var waiting: Int { unwritten.withLock { $0.count } }

    /// This node applied `tenant`'s purges up to `acknowledgement.fence` (with `tier` as its L2).
    func acknowledge(
        tenant: String, _ acknowledgement: PurgeAcknowledgement, tier: RedisTier, on eventLoop: any EventLoop
    ) {
        guard let due = unwritten.withLock({ $0.applied(tenant: tenant, acknowledgement) }) else { return }
        write(tenant: tenant, due, tier: tier, on: eventLoop)
    }

    /// The retry timer: writes again what Redis has not confirmed, each through the tier `tierOf`
    /// gives the tenant now (none: the tenant left, or has no L2 any more, and its write is dropped).
    func retry(tierOf: (String) -> RedisTier?, on eventLoop: any EventLoop) {
        for (tenant, acknowledgement) in unwritten.withLock({ $0.retryDue() }) {
            guard let tier = tierOf(tenant) else {
                unwritten.withLock { $0.forget(tenant) }
                continue
            }
            write(tenant: tenant, acknowledgement, tier: tier, on: eventLoop)
        }
    }

    /// After a table swap: only tenants served on the same tier keep their unwritten acknowledgements
    /// (another Redis counts its own fences; a tenant that left is erased with its acknowledgements).
    func keepOnly(_ tenants: Set<String>) { unwritten.withLock { $0.keepOnly(tenants) } }

    private func write(
        tenant: String, _ acknowledgement: PurgeAcknowledgement, tier: RedisTier, on eventLoop: any EventLoop
    ) {
        tier.acknowledge(tenant: tenant, node: node, acknowledgement, on: eventLoop).whenSuccess { [self] confirmed in
            let next = unwritten.withLock {
                $0.writeEnded(tenant: tenant, fence: acknowledgement.fence, confirmed: confirmed)
            }
            if let next { write(tenant: tenant, next, tier: tier, on: eventLoop) }
        }
    }
}
