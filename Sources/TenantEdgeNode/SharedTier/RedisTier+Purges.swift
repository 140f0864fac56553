import NIOCore
import TenantEdgeCore
import TenantEdgeNative

/// The purges the shared tier runs: each script moves the tenant's fence, publishes the notice
/// siblings follow, and answers the fence it made, which is the purge's id (`PurgeReach`).
extension RedisTier {
    /// What a purge script answers: how many it removed (the new generation, for a drop) and the
    /// fence it made, the purge's id.
    typealias PurgeAnswer = (count: Int, fence: Int)

    /// Deletes the entries of these digests; how many Redis removed, or nil when Redis was unavailable.
    func delete(tenant: String, digests: [KeyDigest], on eventLoop: any EventLoop) -> EventLoopFuture<PurgeAnswer?> {
        evaluatePurge(
            SharedTierScripts.purgeCall(
                SharedTierScripts.delete, tenant: tenant, database: endpoint.database, node: nodeID, digests: digests),
            what: "delete", on: eventLoop)
    }

    /// Deletes the entries indexed under these tag or prefix digests (O(entries removed), no scan);
    /// how many, or nil when Redis was unavailable.
    func purge(tenant: String, indexes: [KeyDigest], on eventLoop: any EventLoop) -> EventLoopFuture<PurgeAnswer?> {
        evaluatePurge(
            SharedTierScripts.purgeCall(
                SharedTierScripts.purgeIndexes, tenant: tenant, database: endpoint.database, node: nodeID,
                digests: indexes),
            what: "index purge", on: eventLoop)
    }

    /// Makes every stored entry of the tenant unreachable at once (O(1)); they expire on their own.
    /// Answers the generation it made (`count`) and its fence, or nil when Redis was unavailable.
    func dropGeneration(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<PurgeAnswer?> {
        evaluatePurge(
            SharedTierScripts.purgeCall(
                SharedTierScripts.dropGeneration, tenant: tenant, database: endpoint.database, node: nodeID, digests: []
            ),
            what: "generation drop", on: eventLoop)
    }

    private func evaluatePurge(_ arguments: [[UInt8]], what: String, on eventLoop: any EventLoop)
        -> EventLoopFuture<PurgeAnswer?>
    {
        run(arguments, on: eventLoop) { reply -> PurgeAnswer in
            switch reply {
            case .array(let fields):
                guard fields.count == 2, case .integer(let count) = fields[0], case .integer(let fence) = fields[1],
                    fence > 0, count >= 0
                else { throw EdgeError(.redisFailure, "\(what): unexpected reply") }
                return (count, fence)
            case .error(let message): throw EdgeError(.redisFailure, "\(what): \(message)")
            default: throw EdgeError(.redisFailure, "\(what): unexpected reply")
            }
        }
    }
}
