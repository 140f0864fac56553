import Synchronization
import TenantEdgeCore

/// Where the shared tier's primary is: fixed by `cache.redis.url` (or a tenant's own URL), or what
/// the sentinels last named (`SentinelWatcher`). Each change moves `epoch`; a connection remembers
/// the epoch it was made at and is closed at its next use once the epoch moved, so after a failover
/// no call goes to the old primary a moment longer than it takes to learn of it.
final class RedisPrimaryAddress: Sendable {
    private let primary: Mutex<SentinelAnswer.Primary?>
    private let epochs = Atomic<Int>(0)
    /// True when the address comes from Sentinel: connections then check `ROLE` before use.
    let followsSentinel: Bool
    /// Fired when a connection failed or a write met `READONLY`: the watcher asks the sentinels again.
    let suspicion = WakeSignal()

    /// A fixed address.
    init(fixed endpoint: RedisEndpoint) {
        primary = Mutex(SentinelAnswer.Primary(host: endpoint.host, port: endpoint.port))
        followsSentinel = false
    }

    /// An address the sentinels will name; unknown until they do.
    init(followingSentinel: Void) {
        primary = Mutex(nil)
        followsSentinel = true
    }

    var epoch: Int { epochs.load(ordering: .acquiring) }

    /// The primary now and the epoch it belongs to; nil while no sentinel has named one.
    func current() -> (primary: SentinelAnswer.Primary, epoch: Int)? {
        primary.withLock { primary in primary.map { ($0, epochs.load(ordering: .acquiring)) } }
    }

    /// Records what a sentinel said; true when it is a change (the epoch then moved).
    @discardableResult
    func update(_ next: SentinelAnswer.Primary) -> Bool {
        primary.withLock { primary in
            guard primary != next else { return false }
            primary = next
            epochs.add(1, ordering: .releasing)
            return true
        }
    }

    /// A sign the primary may have moved; only an address that follows Sentinel acts on it.
    func suspect() {
        if followsSentinel { suspicion.fire() }
    }
}
