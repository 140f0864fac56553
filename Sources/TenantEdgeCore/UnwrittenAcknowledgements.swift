/// This node's purge acknowledgements that Redis has not yet confirmed, one per tenant, as a state
/// machine. An acknowledgement is how the region learns that this node applied a tenant's purges up
/// to a fence (the purge status and the dashboard read it); written once and forgotten, one lost to a
/// timeout, an open breaker or a Redis restart showed the node as never having applied the purge,
/// for good (an AddressSanitizer run of `IsolationUnderChangeTests` waited 10 s for it).
///
/// Acknowledgements only ever raise a node's fence, so only the highest one per tenant is kept: it
/// covers every lower one. A write that succeeds clears the tenant unless a higher fence was applied
/// meanwhile; the rest are written again on the retry timer, one write per tenant in flight.
public struct UnwrittenAcknowledgements: Sendable {
    /// At most this many tenants wait; past it the lowest fences go (their purges are the oldest, and
    /// a later purge of the tenant writes a covering one). Bounded by the tenant count in practice.
    public static let limit = 4096

    private var pending: [String: PurgeAcknowledgement] = [:]
    /// Tenants with a write in flight: not sent again until it ends.
    private var inFlight: Set<String> = []

    public init() {}

    public var count: Int { pending.count }
    public func pending(_ tenant: String) -> PurgeAcknowledgement? { pending[tenant] }

    /// The node applied `tenant`'s purges up to `acknowledgement.fence`: the acknowledgement to
    /// write now, or nil when a write is in flight (the retry timer sends the newest after it) or a
    /// higher one is already waiting.
    public mutating func applied(tenant: String, _ acknowledgement: PurgeAcknowledgement) -> PurgeAcknowledgement? {
        if let waiting = pending[tenant], waiting.fence > acknowledgement.fence { return nil }
        if pending[tenant] == nil, pending.count >= Self.limit,
            let lowest = pending.min(by: { $0.value.fence < $1.value.fence })
        {
            pending[lowest.key] = nil
            inFlight.remove(lowest.key)
        }
        pending[tenant] = acknowledgement
        return inFlight.insert(tenant).inserted ? acknowledgement : nil
    }

    /// A write of `tenant`'s acknowledgement up to `fence` ended; `confirmed` when Redis stored it (or
    /// already held a higher one). The tenant is clear unless a higher fence came meanwhile: that one
    /// is returned, to write now. A failed write waits for the retry timer.
    public mutating func writeEnded(tenant: String, fence: Int, confirmed: Bool) -> PurgeAcknowledgement? {
        inFlight.remove(tenant)
        guard confirmed, let waiting = pending[tenant] else { return nil }
        guard waiting.fence > fence else {
            pending[tenant] = nil
            return nil
        }
        inFlight.insert(tenant)
        return waiting
    }

    /// The retry timer fired: the acknowledgements to write again, by tenant, none already in flight.
    public mutating func retryDue() -> [(tenant: String, acknowledgement: PurgeAcknowledgement)] {
        let due = pending.filter { !inFlight.contains($0.key) }.sorted { $0.key < $1.key }
        for (tenant, _) in due { inFlight.insert(tenant) }
        return due.map { ($0.key, $0.value) }
    }

    /// Forgets one tenant's acknowledgement (its tenant has no L2 here any more).
    public mutating func forget(_ tenant: String) {
        pending[tenant] = nil
        inFlight.remove(tenant)
    }

    /// Forgets tenants no longer served here (a removed tenant's acknowledgements are erased with it).
    public mutating func keepOnly(_ tenants: Set<String>) {
        pending = pending.filter { tenants.contains($0.key) }
        inFlight.formIntersection(tenants)
    }
}
