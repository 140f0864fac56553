/// Request collapsing as a state machine (groupcache's `singleflight`, AHC's style of returning
/// actions): the first miss for a key becomes the leader and fetches; later misses for the same key
/// wait and are handed the leader's result. No I/O here; the server performs the actions.
///
/// States per key: absent → inFlight(waiters) on the first `join`; inFlight grows on later joins;
/// `finish` returns the waiters and makes the key absent again.
public struct RequestCollapser<Key: Hashable, Waiter> {
    public enum JoinAction {
        /// No fetch is running for this key: the caller fetches and must call `finish`.
        case lead
        /// A fetch is running: the waiter was queued and will be returned by `finish`.
        case wait
    }

    private var inFlight: [Key: [Waiter]] = [:]

    public init() {}

    public mutating func join(_ key: Key, waiter: Waiter) -> JoinAction {
        if inFlight[key] != nil {
            inFlight[key]!.append(waiter)
            return .wait
        }
        inFlight[key] = []
        return .lead
    }

    /// Starts a fetch for `key` only when none is running (a background refresh); true if started.
    public mutating func leadIfIdle(_ key: Key) -> Bool {
        guard inFlight[key] == nil else { return false }
        inFlight[key] = []
        return true
    }

    /// Ends the fetch for `key`, returning every waiter to hand the result to.
    public mutating func finish(_ key: Key) -> [Waiter] {
        inFlight.removeValue(forKey: key) ?? []
    }

    public var inFlightCount: Int { inFlight.count }
}
