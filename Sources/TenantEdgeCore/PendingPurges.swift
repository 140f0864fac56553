/// Purges that did not reach Redis, per tier, as a state machine. A tenant with one is untrusted:
/// the node neither reads nor writes its L2 entries until a generation drop for it succeeds (which
/// makes everything of it stored so far unreachable, so no purge is lost to an outage). Drops are
/// retried in rounds while any tenant is pending.
///
/// A purge that fails while a round is in flight could be newer than the drop that round sends;
/// so each failure bumps the tenant's count, and a round's success clears only the tenants whose
/// count has not moved since the round began.
public struct PendingPurges: Sendable {
    public enum Action: Equatable, Sendable {
        /// Nothing to do now.
        case none
        /// Drop these tenants' generations, then call `roundFinished(dropped:)`.
        case dropGenerations([String])
    }

    /// Failures so far per untrusted tenant.
    private var failures: [String: Int] = [:]
    /// The counts as a round in flight saw them when it began.
    private var round: [String: Int]?

    public init() {}

    public var isEmpty: Bool { failures.isEmpty }
    public var tenants: Set<String> { Set(failures.keys) }
    public func isUntrusted(_ tenant: String) -> Bool { failures[tenant] != nil }

    /// A purge of `tenant` did not reach Redis. True the first time (for one log line per outage).
    public mutating func purgeFailed(tenant: String) -> Bool {
        let first = failures[tenant] == nil
        failures[tenant, default: 0] += 1
        return first
    }

    /// The retry timer fired: the drops to send now; none while a round is still in flight.
    public mutating func retryDue() -> Action {
        guard round == nil, !failures.isEmpty else { return .none }
        round = failures
        return .dropGenerations(failures.keys.sorted())
    }

    /// The round's drops ended; `dropped` succeeded. Those tenants are trusted again unless a purge
    /// of theirs failed after the round began.
    public mutating func roundFinished(dropped: Set<String>) {
        let began = round ?? [:]
        round = nil
        for tenant in dropped where failures[tenant] == began[tenant] { failures[tenant] = nil }
    }
}
