import Synchronization
import TenantEdgeCore
import Testing

/// The real clock's rule, with the system's two clocks injected: a step forward of the wall clock is
/// followed, a step backward is not, and the time never decreases.
@Suite struct SteadyWallClockTests {
    /// One settable reading of a clock.
    final class Reading: Sendable {
        private let mutex: Mutex<Double>  // protects the reading
        init(_ value: Double) { mutex = Mutex(value) }
        var value: Double { mutex.withLock { $0 } }
        func update(_ body: (inout Double) -> Void) { mutex.withLock { body(&$0) } }
    }

    final class Clocks: Sendable {
        let wall = Reading(1_000_000.0)
        let monotonic = Reading(50.0)
        func elapse(_ seconds: Double) {
            wall.update { $0 += seconds }
            monotonic.update { $0 += seconds }
        }
        func clock() -> SteadyWallClock {
            SteadyWallClock(wall: { self.wall.value }, monotonic: { self.monotonic.value })
        }
    }

    @Test func followsTheWallClockWhileItDoesNotStep() {
        let clocks = Clocks()
        let clock = clocks.clock()
        #expect(clock.now() == 1_000_000)
        clocks.elapse(12.5)
        #expect(clock.now() == 1_000_012.5)
        #expect(clock.wallBehind == 0)
    }

    @Test func aBackwardStepIsNotFollowedButConvergedOnSlowly() {
        let clocks = Clocks()
        let clock = clocks.clock()
        clocks.elapse(10)
        #expect(clock.now() == 1_000_010)
        clocks.wall.update { $0 -= 100 }  // stepped back 100 s
        #expect(abs(clock.now() - 1_000_010) < 0.001, "time goes on from where it stood")
        #expect(abs(clock.wallBehind - 100) < 0.01)
        // Read every 10 ms for 2,500 s: the clock never goes back, runs no slower than 95 % of real
        // time, and has caught up with the system clock by the end (100 s at 5 % takes 2,000 s).
        var last = clock.now()
        var steps = 0
        for _ in 0..<250_000 {
            clocks.elapse(0.01)
            let reading = clock.now()
            if reading < last || reading - last < 0.01 * (1 - SteadyWallClock.slewRate) - 1e-9 { steps += 1 }
            last = reading
        }
        #expect(steps == 0, "no reading went back or ran slower than the slew allows")
        #expect(clock.wallBehind <= SteadyWallClock.tolerance, "converged: \(clock.wallBehind) s ahead")
    }

    @Test func aForwardStepIsFollowedAndNoReadingGoesBack() {
        let clocks = Clocks()
        let clock = clocks.clock()
        var last = clock.now()
        clocks.wall.update { $0 += 900 }  // stepped forward 15 minutes
        #expect(clock.now() == 1_000_900)
        for step in [0.1, -50, 2, -0.4, 30] {  // drift and steps both ways
            clocks.monotonic.update { $0 += abs(step) }
            clocks.wall.update { $0 += step }
            let reading = clock.now()
            #expect(reading >= last, "readings never decrease")
            last = reading
        }
    }

    @Test func driftWithinTheToleranceDoesNotMoveTheClock() {
        let clocks = Clocks()
        let clock = clocks.clock()
        clocks.wall.update { $0 += SteadyWallClock.tolerance / 2 }
        #expect(clock.now() == 1_000_000, "NTP's small slews are not steps")
        clocks.wall.update { $0 += SteadyWallClock.tolerance }
        #expect(clock.now() == 1_000_000 + SteadyWallClock.tolerance * 1.5)
    }
}
