/// What a sibling purge subscription concludes when it (re)subscribes, as a pure rule: pub/sub
/// delivers at most once, so after each subscription the follower reads every tenant's purge fence
/// and compares it with the fence it knew. A fence that moved means purges may have been missed
/// while no subscription lived (the node drops the tenant's L1 and acknowledges the fence).
///
/// Notices keep arriving, on the connection's own thread, while the fences are read and compared.
/// One higher than the fence read is a purge made after the read (Redis ran the `GET` before that
/// purge's `INCR`), so it is newer, never a sign of the fence going back. Compared with fences as
/// those notices had raised them, a read of 4 after notices 5 and 6 once looked like a fence that
/// went back, and the resync's acknowledgement of 4 replaced the one for purge 6: the node never
/// showed as having applied it (`IsolationUnderChangeTests`). So `known` is taken before the read,
/// notices since are `heard` apart, and the fence covered is the higher of the two.
public enum PurgeFenceResync {
    /// How the fence read compares with the one known before it.
    public enum Change: String, Sendable, CustomStringConvertible {
        /// No fence was known (a new tenant, or this node's first subscription).
        case unknown
        /// Higher than the one known: purges were made while no subscription lived.
        case forward
        /// Lower (a Redis restarted empty, a failover to a replica that was behind, an erased
        /// tenant's fence expired) or unreadable: the numbering restarted; acknowledgements follow it.
        case back
        public var description: String { rawValue }
    }

    /// A tenant whose purges up to `fence` may have been missed and are now covered.
    public struct Resync: Sendable, Equatable {
        public var tenant: String
        public var fence: Int
        public var change: Change
    }

    /// `known`: the fences known when the read began; `read`: each tenant's fence (nil when its value
    /// was no number: damaged, counted as gone back); `heard`: the highest notice per tenant since the
    /// read began. Returns the resyncs to make, and each tenant's fence to know from now on (nil to
    /// forget it).
    public static func compare(
        known: [String: Int], read: [(tenant: String, fence: Int?)], heard: [String: Int]
    ) -> (resyncs: [Resync], fences: [(tenant: String, fence: Int?)]) {
        var resyncs: [Resync] = []
        var fences: [(tenant: String, fence: Int?)] = []
        for (tenant, fence) in read {
            guard let fence else {
                resyncs.append(Resync(tenant: tenant, fence: heard[tenant] ?? 0, change: .back))
                fences.append((tenant, heard[tenant]))
                continue
            }
            // A resync covers every purge up to the fence read; those after it arrived as notices.
            let covered = max(fence, heard[tenant] ?? 0)
            if let before = known[tenant] {
                if before != fence {
                    resyncs.append(Resync(tenant: tenant, fence: covered, change: fence < before ? .back : .forward))
                }
            } else if fence > 0 {
                resyncs.append(Resync(tenant: tenant, fence: covered, change: .unknown))
            }
            // What this Redis says now: a fence that went back is followed, not kept at its old high.
            fences.append((tenant, covered))
        }
        return (resyncs, fences)
    }
}
