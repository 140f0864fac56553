import NIOCore
import TenantEdgeCore

/// One request's view of the node, taken once when the request is admitted: the tenant table as it
/// was then (so the tenant, its cache, its L2 tier and the regions all come from one table and a
/// config swap in the middle of a request never mixes two), and when the request started.
struct RequestContext: Sendable {
    let table: TenantTable
    let cache: TenantCache
    let started: NIODeadline
    /// Timings and the request id, for tenants with `server_timing` or an access log; nil otherwise.
    let trace: RequestTrace?
    /// The tenant's L1 purge count when the request was admitted: what it fetched is not put into
    /// L1 if a purge ran meanwhile (the answer may predate the purge).
    let purgeCount: UInt64

    var tenant: TenantConfig { cache.tenant }
    /// The tenant's L2 tier in this request's table; nil without L2.
    var l2: RedisTier? { table.l2Tiers[cache.tenant.id] }
}
