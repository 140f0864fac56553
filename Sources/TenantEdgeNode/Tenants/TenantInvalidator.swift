import NIOCore
import TenantEdgeCore

/// How a purge reaches every tier of one tenant: the admin API, the invalidation feed, siblings'
/// notices and unsafe methods all come through here, so a purge means the same wherever it starts.
struct TenantInvalidator: Sendable {
    let metrics: EdgeMetrics

    /// Purges one tenant in every tier: L1 at once; in L2 keys are deleted, tags and prefixes through
    /// their index sets, `all` by dropping the tenant's generation. A purge that cannot reach Redis
    /// makes the tenant's L2 untrusted until a generation drop succeeds. Returns the entries removed
    /// that could be counted.
    func purge(_ original: PurgeRequest, cache: TenantCache, tier: RedisTier?, on eventLoop: any EventLoop)
        -> EventLoopFuture<Int>
    {
        purgeReporting(original, cache: cache, tier: tier, on: eventLoop).map(\.removed)
    }

    /// `purge`, also telling whether the purge reached Redis now (`reachedL2`; true without L2). When
    /// it did not, siblings have not heard of it yet: it reaches them later as a generation drop.
    func purgeReporting(
        _ original: PurgeRequest, cache: TenantCache, tier: RedisTier?, on eventLoop: any EventLoop
    ) -> EventLoopFuture<(removed: Int, reachedL2: Bool)> {
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
        guard let l2 = tier else { return eventLoop.makeSucceededFuture((removed, true)) }
        if request.all {
            return l2.dropGeneration(tenant: tenant, on: eventLoop).map { dropped in
                if !dropped { l2.markUntrusted(tenant, on: eventLoop) }
                return (removed, dropped)
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
                return (removed, false)
            }
            return (removed + deleted + indexed, true)
        }
    }
}
