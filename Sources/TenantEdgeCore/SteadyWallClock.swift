import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Wall-clock seconds that never step backwards. Between readings it moves with the monotonic clock;
/// when the system clock steps (NTP correcting a bad boot time, an operator's `date -s`, a VM resumed
/// from a snapshot), a step forward is followed at once and a step backward is not: the clock keeps
/// counting from where it stood until the system clock catches up.
///
/// Why: every age is `now - response time`. Following a backward step would make every stored
/// response look younger than it is, and serve stale data as fresh for as long as the step. A step
/// forward only makes entries look older (served stale within their allowances, or fetched again),
/// which is safe, and keeps the clock close to the other nodes' for the ages stored in L2.
public final class SteadyWallClock: CacheClock {
    private let wall: @Sendable () -> Double
    private let monotonic: @Sendable () -> Double
    private let sleeper: (@Sendable (Double) async throws -> Void)?
    /// Added to the monotonic reading to give wall-clock seconds; it only ever grows (a `Double`'s bits).
    private let offset: Atomic<UInt64>

    /// How far the system clock may run ahead before it is followed: NTP slews both clocks alike, so
    /// only a step (or drift past this) moves the offset.
    public static let tolerance = 0.5

    /// `wall` and `monotonic` are the system's clocks unless a test injects its own; `sleeper` waits
    /// (the default waits in real time).
    public init(
        wall: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        monotonic: @escaping @Sendable () -> Double = SteadyWallClock.monotonicSeconds,
        sleeper: (@Sendable (Double) async throws -> Void)? = nil
    ) {
        self.wall = wall
        self.monotonic = monotonic
        self.sleeper = sleeper
        offset = Atomic((wall() - monotonic()).bitPattern)
    }

    public func now() -> Double {
        let steady = monotonic()
        let wallNow = wall()
        var current = offset.load(ordering: .relaxed)
        while wallNow - (steady + Double(bitPattern: current)) > Self.tolerance {
            // The system clock is ahead (stepped forward): follow it; racing readers keep the larger.
            let (exchanged, seen) = offset.compareExchange(
                expected: current, desired: (wallNow - steady).bitPattern, ordering: .relaxed)
            if exchanged { return wallNow }
            current = seen
        }
        return steady + Double(bitPattern: current)
    }

    /// Seconds the system clock stands behind this one (a backward step not followed); 0 normally.
    public var wallBehind: Double { max(0, now() - wall()) }

    public func sleep(seconds: Double) async throws {
        if let sleeper { return try await sleeper(seconds) }
        try await Task.sleep(for: .milliseconds(Int64(max(0, min(seconds, 86_400)) * 1000)))
    }

    /// `CLOCK_MONOTONIC` in seconds: steady, slewed by NTP like the wall clock, never stepped.
    public static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
