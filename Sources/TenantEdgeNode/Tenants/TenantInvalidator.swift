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
        purgeReporting(original, cache: cache, tier: tier, on: eventLoop).map { $0.removed }
    }

    /// `purge`, also telling where it got in L2 (`PurgeReach`): siblings hear of it only once Redis
    /// took it; until then it reaches them later as a generation drop.
    func purgeReporting(
        _ original: PurgeRequest, cache: TenantCache, tier: RedisTier?, on eventLoop: any EventLoop
    ) -> EventLoopFuture<(removed: Int, reach: PurgeReach)> {
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
        guard let l2 = tier else { return eventLoop.makeSucceededFuture((removed, .noSharedTier)) }
        if request.all {
            return l2.dropGeneration(tenant: tenant, on: eventLoop).map { dropped in
                guard let dropped else {
                    l2.markUntrusted(tenant, on: eventLoop)
                    return (removed, .notReached)
                }
                return (removed, .reached(fence: dropped.fence, tier: l2))
            }
        }
        let primaries = request.keys.map { cache.primaryDigest(target: $0) }
        let byKey = l2.delete(tenant: tenant, digests: primaries, on: eventLoop)
        // A key's variants (responses with Vary) are indexed under its primary digest. A prefix goes
        // as its digest and as a target's (its primary): siblings' L1 does not index a plain entry
        // under its whole target (decision 79); in L2 that entry is in the prefix's set already.
        let indexes =
            primaries + request.tags.map(cache.tagDigest) + request.prefixes.map(cache.prefixDigest)
            + request.prefixes.map { cache.primaryDigest(target: $0) }
        let byIndex =
            indexes.isEmpty
            ? eventLoop.makeSucceededFuture(Optional((count: 0, fence: 0)))
            : l2.purge(tenant: tenant, indexes: indexes, on: eventLoop)
        return byKey.and(byIndex).map { deleted, indexed in
            guard let deleted, let indexed else {
                l2.markUntrusted(tenant, on: eventLoop)  // applied later as a generation drop: coarser, never lost
                return (removed, .notReached)
            }
            // The purge's id: the higher fence its two scripts made (each published its own notice).
            // Redis's counts are capped before they are added: no reply can overflow the sum.
            let counted = removed + min(deleted.count, 1 << 40) + min(indexed.count, 1 << 40)
            return (counted, .reached(fence: max(deleted.fence, indexed.fence), tier: l2))
        }
    }
}

/// Where a purge got in L2; a purge's id for `/_edge/purges/<id>` comes from it.
enum PurgeReach: Sendable {
    /// The tenant has no L2: no sibling hears of the purge.
    case noSharedTier
    /// Redis did not take it now: siblings hear of it later, as a generation drop.
    case notReached
    /// Redis took it: `fence` is the highest its scripts made, on `tier` (a table swap since could
    /// give the tenant another Redis, which counts other fences).
    case reached(fence: Int, tier: RedisTier)
}
