import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// The node's clock stepped under it: the real clock's rule (`SteadyWallClock`) with the system's two
/// clocks played by the test. Monotonic time is the harness's manual clock; the wall clock is that
/// plus a step the test sets. A stored answer must go stale when its max-age has passed in real
/// (monotonic) time, whatever the wall clock was set back to meanwhile.
@Suite("Clock steps on a node", .serialized)
struct ClockStepTests {
    final class WallStep: Sendable {
        let seconds = Mutex(0.0)  // protects the step applied to the wall clock
    }

    static let script: TestUpstream.Script = { _ in
        let version = UUID().uuidString.prefix(8)
        return .init(headers: [("Cache-Control", "max-age=60")], body: "fetched \(version)")
    }

    @Test func aWallClockSetBackDoesNotServeStaleDataAsFresh() async throws {
        let step = WallStep()
        let edge = try await EdgeHarness.start(
            nodeClock: { manual in
                SteadyWallClock(
                    wall: { manual.now() + step.seconds.withLock { $0 } }, monotonic: { manual.now() },
                    sleeper: { try await manual.sleep(seconds: $0) })
            }, script: Self.script)
        do {
            let first = try await edge.get("/stepped")
            #expect(first.cacheStatus.contains("stored"))
            edge.clock.advance(by: 30)
            #expect(try await edge.get("/stepped").cacheStatus.contains("hit; ttl=30"))
            step.seconds.withLock { $0 = -3_600 }  // the system clock is set back an hour
            edge.clock.advance(by: 40)  // 70 s after the answer was stored: past its max-age
            let after = try await edge.get("/stepped")
            #expect(!after.cacheStatus.contains("hit"), "stale after 70 s, not fresh: \(after.cacheStatus)")
            #expect(after.body != first.body, "fetched again")
            // A step forward makes entries older at once: stale, fetched again, never served fresh.
            edge.clock.advance(by: 1)
            #expect(try await edge.get("/stepped").cacheStatus.contains("hit"))
            step.seconds.withLock { $0 = 600 }
            let forward = try await edge.get("/stepped")
            #expect(!forward.cacheStatus.contains("hit"), "\(forward.cacheStatus)")
            FaultReport.record(
                "node clock stepped back an hour, then forward ten minutes",
                [("stale answers served as fresh", 0)])
        } catch {
            await edge.shutdown()
            throw error
        }
        await edge.shutdown()
    }
}
