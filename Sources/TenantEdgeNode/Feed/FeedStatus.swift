import Synchronization
import TenantEdgeCore

/// Where the invalidation feed stands, read by the traffic path and the admin API: the last event
/// applied, and when the origin last answered (the invalidation lag, and the bounded staleness
/// that follows from it). Standalone (no origin) there is no lag and no limit.
final class FeedStatus: Sendable {
    /// The most a node serves an entry without revalidating while the feed is silent
    /// (`origin.max_invalidation_lag_s`); nil standalone.
    private let maxLagSeconds: Double?
    /// The feed's cursor: the last event applied and durable.
    let cursor = Atomic<Int>(0)
    /// When the origin last answered (ms since the epoch, the clock's).
    private let heardMs = Atomic<Int>(0)
    /// Polls that failed and were tried again (`edge_feed_reconnects_total`).
    let reconnects = Atomic<Int>(0)
    /// Whether the last poll failed (`edge_tier_up{tier="origin_feed"}` is 0 while it does).
    private let failing = Atomic<Bool>(false)

    init(maxLagSeconds: Int?) { self.maxLagSeconds = maxLagSeconds.map(Double.init) }

    /// Whether the node follows an origin at all (false standalone).
    var follows: Bool { maxLagSeconds != nil }
    /// `origin.max_invalidation_lag_s`; nil standalone.
    var lagBound: Double? { maxLagSeconds }
    /// Following, and the last poll was answered.
    var isUp: Bool { follows && !failing.load(ordering: .relaxed) }

    func heard(at now: Double) {
        heardMs.store(Int(max(0, min(now, 1e15)) * 1000), ordering: .relaxed)
        failing.store(false, ordering: .relaxed)
    }

    /// A poll failed; the feed backs off and polls again.
    func failed() {
        reconnects.add(1, ordering: .relaxed)
        failing.store(true, ordering: .relaxed)
    }

    /// Seconds since the feed last heard from the origin; nil standalone.
    func lag(now: Double) -> Double? {
        guard maxLagSeconds != nil else { return nil }
        return max(0, now - Double(heardMs.load(ordering: .relaxed)) / 1000)
    }

    /// Bounded staleness: when the feed has been silent for longer than `max_invalidation_lag_s`,
    /// entries older than that are revalidated before they are served. Nil while the feed is
    /// healthy (or standalone): no limit.
    func stalenessLimit(now: Double) -> Double? {
        guard let maxLagSeconds, let lag = lag(now: now) else { return nil }
        return lag > maxLagSeconds ? maxLagSeconds : nil
    }
}
