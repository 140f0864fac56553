import Synchronization
import TenantEdgeCore

/// Per-tier counters for stats and metrics.
final class TierCounters: Sendable {
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let bytesRead = Atomic<Int>(0)
    let bytesWritten = Atomic<Int>(0)
    /// Writes Redis refused because a purge ran between the read of the miss and the write.
    let fencedWrites = Atomic<Int>(0)
    /// Writes Redis refused because the tenant's live L2 bytes would pass its quota.
    let quotaRefusedWrites = Atomic<Int>(0)
    /// Reads whose generation was below one already seen (set back in Redis): not used.
    let rolledBackGenerations = Atomic<Int>(0)
    /// Calls made, and the time from submit to reply of those answered (waiting for a connection included).
    let calls = Atomic<Int>(0)
    let callDuration = LaneHistogram(
        boundsNanoseconds: TenantCounters.durationBoundsSeconds.map { Int64($0 * 1e9) })
}
