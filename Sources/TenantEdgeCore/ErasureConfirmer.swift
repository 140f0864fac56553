/// The rules for telling the origin that this node has erased a tenant (`POST /v1/erasures/<id>`),
/// as a state machine: the confirmation service performs the actions and reports the answers.
/// Each tenant is sent at once, retried on any answer but `200` with a backoff of 0.4 s doubling to
/// 10 s, and given up after `attempts` tries (about a minute) with one warning: the origin's
/// compliance report then shows the node as not confirmed, which is what an operator acts on.
public struct ErasureConfirmer: Sendable {
    public enum Action: Equatable, Sendable {
        case send(tenant: String)
        case retry(tenant: String, afterSeconds: Double)
        case confirmed(tenant: String)
        case giveUp(tenant: String, attempts: Int)
    }

    public static let attempts = 10
    public static let longestBackoff = 10.0

    /// Tries so far per tenant awaiting its confirmation.
    public private(set) var pending: [String: Int] = [:]

    public init() {}

    /// A tenant's data is gone from this node. A tenant already pending starts its count again.
    public mutating func erased(tenant: String) -> Action {
        pending[tenant] = 0
        return .send(tenant: tenant)
    }

    /// The origin answered `status` (nil: no answer at all) to the tenant's confirmation.
    public mutating func answered(tenant: String, status: Int?) -> Action {
        guard let tries = pending[tenant] else { return .confirmed(tenant: tenant) }
        if status == 200 {
            pending[tenant] = nil
            return .confirmed(tenant: tenant)
        }
        let attempt = tries + 1
        guard attempt < Self.attempts else {
            pending[tenant] = nil
            return .giveUp(tenant: tenant, attempts: attempt)
        }
        pending[tenant] = attempt
        return .retry(tenant: tenant, afterSeconds: min(Self.longestBackoff, 0.2 * Double(1 << min(attempt, 10))))
    }

    /// The retry's wait has elapsed.
    public mutating func waited(tenant: String) -> Action? {
        pending[tenant] == nil ? nil : .send(tenant: tenant)
    }
}
