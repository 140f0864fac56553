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

    @Test func aBackwardStepIsNotFollowedUntilTheWallClockCatchesUp() {
        let clocks = Clocks()
        let clock = clocks.clock()
        clocks.elapse(10)
        clocks.wall.update { $0 -= 3_600 }  // stepped back an hour
        #expect(clock.now() == 1_000_010, "time goes on from where it stood")
        #expect(clock.wallBehind == 3_600)
        clocks.elapse(60)
        #expect(clock.now() == 1_000_070, "60 s later is 60 s later, whatever the wall clock says")
        clocks.wall.update { $0 += 3_600 }  // corrected again
        clocks.elapse(1)
        #expect(clock.now() == 1_000_071)
        #expect(clock.wallBehind == 0)
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
