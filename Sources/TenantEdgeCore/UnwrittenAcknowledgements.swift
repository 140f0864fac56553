/// This node's purge acknowledgements that Redis has not yet confirmed, as a state machine. An
/// acknowledgement is how the region learns that this node applied a tenant's purges up to a fence
/// (the purge status and the dashboard read it); written once and forgotten, one lost to a timeout,
/// an open breaker or a Redis restart showed the node as never having applied the purge, for good
/// (an AddressSanitizer run of `IsolationUnderChangeTests` waited 10 s for it).
///
/// Fences are counted by each Redis (`Source`) on its own, so one acknowledgement waits per tenant
/// and source, and it only ever goes to that source. A higher fence replaces the one waiting; a
/// lower one replaces it only when the caller saw the fence go back (`fenceWentBack`: a Redis
/// restarted empty, a failover to a replica that was behind), since that is the truth now and
/// writing the old higher one would claim purges this node never saw. Otherwise a lower one is a
/// late report: the old and the new tenant table's followers run side by side at a swap, and one
/// follower's resync that read fence 14 once replaced the 15 another had just heard, so the node
/// never showed as having applied purge 15 (`IsolationUnderChangeTests`). (Redis keeps the highest
/// fence written, so a lower one arriving late claims nothing more.)
///
/// One write per tenant and source is in flight; each carries the sequence number of what it
/// wrote, so a write that ends after its acknowledgement was replaced neither clears the newer one
/// nor ends the newer one's write.
public struct UnwrittenAcknowledgements<Source: Equatable & Sendable>: Sendable {
    /// At most this many acknowledgements wait; past it the oldest applied goes (a later purge of its
    /// tenant writes a covering one). Bounded by tenants × tiers in practice.
    public static var limit: Int { 4096 }

    public struct Write: Sendable {
        public var tenant: String
        public var source: Source
        public var acknowledgement: PurgeAcknowledgement
        public var sequence: UInt64
    }

    private struct Waiting {
        var source: Source
        var acknowledgement: PurgeAcknowledgement
        var sequence: UInt64
        var inFlight: UInt64?
    }

    private var waiting: [String: [Waiting]] = [:]
    private var sequence: UInt64 = 0

    public init() {}

    public var count: Int { waiting.values.reduce(0) { $0 + $1.count } }

    /// The acknowledgement waiting for `tenant` on `source`, if any.
    public func pending(_ tenant: String, on source: Source) -> PurgeAcknowledgement? {
        waiting[tenant]?.first { $0.source == source }?.acknowledgement
    }

    /// The node applied `tenant`'s purges up to `acknowledgement.fence`, as `source` counts them: the
    /// write to make now, or nil while one to the same source is in flight (it is sent when that ends)
    /// or when a higher one waits and the fence did not go back.
    public mutating func applied(
        tenant: String, _ acknowledgement: PurgeAcknowledgement, on source: Source, fenceWentBack: Bool = false
    ) -> Write? {
        if var entries = waiting[tenant], let index = entries.firstIndex(where: { $0.source == source }) {
            if acknowledgement.fence < entries[index].acknowledgement.fence && !fenceWentBack { return nil }
            sequence &+= 1
            entries[index].acknowledgement = acknowledgement
            entries[index].sequence = sequence
            waiting[tenant] = entries
            return entries[index].inFlight == nil ? startWrite(tenant: tenant, source: source) : nil
        }
        sequence &+= 1
        if count >= Self.limit { dropOldest() }  // before reading the tenant's entries: it may take one
        var entries = waiting[tenant] ?? []
        entries.append(Waiting(source: source, acknowledgement: acknowledgement, sequence: sequence, inFlight: nil))
        waiting[tenant] = entries
        return startWrite(tenant: tenant, source: source)
    }

    /// `write` ended; `confirmed` when Redis stored it (or held a higher fence). Clears what it wrote
    /// unless a newer acknowledgement replaced it meanwhile: that one is returned, to write now. A
    /// failed write waits for the retry timer.
    public mutating func writeEnded(_ write: Write, confirmed: Bool) -> Write? {
        guard var entries = waiting[write.tenant],
            let index = entries.firstIndex(where: { $0.source == write.source }),
            entries[index].inFlight == write.sequence
        else { return nil }  // forgotten, or no longer this write's to end
        entries[index].inFlight = nil
        let replaced = entries[index].sequence != write.sequence
        if confirmed && !replaced {
            entries.remove(at: index)
        }
        waiting[write.tenant] = entries.isEmpty ? nil : entries
        return replaced ? startWrite(tenant: write.tenant, source: write.source) : nil
    }

    /// The retry timer fired: the writes to make again, none already in flight.
    public mutating func retryDue() -> [Write] {
        var due: [Write] = []
        for tenant in waiting.keys.sorted() {
            for entry in waiting[tenant] ?? [] where entry.inFlight == nil {
                if let write = startWrite(tenant: tenant, source: entry.source) { due.append(write) }
            }
        }
        return due
    }

    /// Forgets `tenant`'s acknowledgement on `source` (the tenant is no longer on it).
    public mutating func forget(_ tenant: String, on source: Source) {
        guard var entries = waiting[tenant] else { return }
        entries.removeAll { $0.source == source }
        waiting[tenant] = entries.isEmpty ? nil : entries
    }

    /// Keeps only what `keep` accepts (after a table swap: tenants still on the same source).
    public mutating func keepOnly(_ keep: (String, Source) -> Bool) {
        for (tenant, entries) in waiting {
            let kept = entries.filter { keep(tenant, $0.source) }
            waiting[tenant] = kept.isEmpty ? nil : kept
        }
    }

    private mutating func startWrite(tenant: String, source: Source) -> Write? {
        guard var entries = waiting[tenant], let index = entries.firstIndex(where: { $0.source == source }),
            entries[index].inFlight == nil
        else { return nil }
        entries[index].inFlight = entries[index].sequence
        waiting[tenant] = entries
        let entry = entries[index]
        return Write(tenant: tenant, source: source, acknowledgement: entry.acknowledgement, sequence: entry.sequence)
    }

    private mutating func dropOldest() {
        var oldest: (tenant: String, index: Int, sequence: UInt64)?
        for (tenant, entries) in waiting {
            for (index, entry) in entries.enumerated() where entry.sequence < (oldest?.sequence ?? .max) {
                oldest = (tenant, index, entry.sequence)
            }
        }
        guard let oldest, var entries = waiting[oldest.tenant] else { return }
        entries.remove(at: oldest.index)
        waiting[oldest.tenant] = entries.isEmpty ? nil : entries
    }
}
