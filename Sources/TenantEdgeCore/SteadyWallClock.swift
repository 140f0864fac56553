import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Wall-clock seconds that never step backwards. Between readings it moves with the monotonic clock;
/// when the system clock steps (NTP correcting a bad boot time, an operator's `date -s`, a VM resumed
/// from a snapshot), a step forward is followed at once and a step backward is not: the clock goes on
/// from where it stood and then converges on the system clock by running `slewRate` (5 %) slower
/// than it, never back.
///
/// Why: every age is `now - response time`. Following a backward step would make every stored
/// response look younger than it is, and serve stale data as fresh for as long as the step. A step
/// forward only makes entries look older (served stale within their allowances, or fetched again),
/// which is safe. Staying ahead for good would not be: upstream `Date`s would look old, this node's
/// L2 entries would look young to its siblings, and their beacons old to it. Converging at 5 % keeps
/// every age within 5 % of the truth meanwhile (an hour's step takes 20 hours to absorb), where
/// following the step would be off by the whole hour at once. `wallBehind` tells how far ahead it is.
public final class SteadyWallClock: CacheClock {
    private let wall: @Sendable () -> Double
    private let monotonic: @Sendable () -> Double
    private let sleeper: (@Sendable (Double) async throws -> Void)?
    /// Added to the monotonic reading to give wall-clock seconds (a `Double`'s bits). It grows at once
    /// to follow a step forward and shrinks by at most `slewRate` of the time that passes.
    private let offset: Atomic<UInt64>
    /// The monotonic instant up to which shrinking has been accounted (a `Double`'s bits): each span of
    /// time is claimed by one reader, so the offset never shrinks faster than `slewRate`.
    private let slewedUntil: Atomic<UInt64>

    /// How far the system clock may run ahead before it is followed: NTP slews both clocks alike, so
    /// only a step (or drift past this) moves the offset.
    public static let tolerance = 0.5
    /// How much slower than the system clock this one runs while it is ahead of it.
    public static let slewRate = 0.05

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
        let start = monotonic()
        offset = Atomic((wall() - start).bitPattern)
        slewedUntil = Atomic(start.bitPattern)
    }

    public func now() -> Double {
        let steady = monotonic()
        let target = wall() - steady  // the offset that would give the system clock's reading
        var current = offset.load(ordering: .relaxed)
        while target - Double(bitPattern: current) > Self.tolerance {
            // The system clock is ahead (stepped forward): follow it; racing readers keep the larger.
            let (exchanged, seen) = offset.compareExchange(
                expected: current, desired: target.bitPattern, ordering: .relaxed)
            if exchanged { return steady + target }
            current = seen
        }
        let claimed = slewedUntil.load(ordering: .relaxed)
        let elapsed = steady - Double(bitPattern: claimed)
        // Claim the time since the last claim, at most 10 ms of it: an idle stretch is not made up at once,
        // so no reading is more than 0.5 ms below one taken just before on another thread.
        if elapsed > 0.001,
            slewedUntil.compareExchange(expected: claimed, desired: steady.bitPattern, ordering: .relaxed).exchanged,
            Double(bitPattern: current) - target > Self.tolerance
        {
            // Ahead of the system clock (it stepped back): converge, never faster than `slewRate`.
            while Double(bitPattern: current) - target > Self.tolerance {
                let eased = max(target, Double(bitPattern: current) - Self.slewRate * min(elapsed, 0.01))
                let (exchanged, seen) = offset.compareExchange(
                    expected: current, desired: eased.bitPattern, ordering: .relaxed)
                if exchanged {
                    current = eased.bitPattern
                    break
                }
                current = seen
            }
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
