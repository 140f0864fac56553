import Testing

@testable import TenantEdgeCore

/// Security events as bursts: one line when a burst starts, one with its count when its window
/// closes, and a bound on lines per window whatever the sources.
@Suite("Security event windows")
struct SecurityEventWindowTests {
    @Test func aBurstWritesItsFirstEventAndItsCountWhenTheWindowCloses() {
        var window = SecurityEventWindow(windowSeconds: 60, maxBursts: 4)
        let first = window.record(kind: "auth_failed", tenant: "-", source: "10.0.0.1", detail: "d", now: 100)
        guard case .started(let burst) = first.first, first.count == 1 else {
            Issue.record("the first event starts a burst: \(first)")
            return
        }
        #expect(burst.count == 1 && burst.key.source == "10.0.0.1")
        for second in 1..<500 {
            #expect(
                window.record(
                    kind: "auth_failed", tenant: "-", source: "10.0.0.1", detail: "d", now: 100 + 0.1 * Double(second)
                )
                .isEmpty)
        }
        #expect(window.closeIfDue(now: 159).isEmpty, "not before the window ends")
        let closed = window.closeIfDue(now: 160)
        guard case .closed(let summary) = closed.first, closed.count == 1 else {
            Issue.record("one line with the count: \(closed)")
            return
        }
        #expect(summary.count == 500 && summary.first == 100 && summary.last > 149)
        #expect(window.closeIfDue(now: 500).isEmpty, "nothing open, nothing written")
    }

    @Test func aBurstOfOneIsNotWrittenTwice() {
        var window = SecurityEventWindow(windowSeconds: 60)
        #expect(window.record(kind: "unknown_tenant", tenant: "-", source: "a", detail: "", now: 0).count == 1)
        #expect(window.close().isEmpty)
        #expect(window.recent.map(\.count) == [1], "it stays on the timeline")
    }

    /// A million events from a million addresses: lines stay under the bound, each kind keeps an
    /// overflow burst that counts the rest.
    @Test func manySourcesStayWithinTheBoundOfLines() {
        var window = SecurityEventWindow(windowSeconds: 60, maxBursts: 8)
        var lines = 0
        for index in 0..<1_000_000 {
            let kind = index % 2 == 0 ? "auth_failed" : "unknown_tenant"
            lines += window.record(kind: kind, tenant: "-", source: "ip-\(index)", detail: "", now: 10).count
        }
        let closed = window.close()
        lines += closed.count
        #expect(lines <= SecurityEventWindow.maxLinesPerWindow(maxBursts: 8, kinds: 2))
        let overflow = closed.compactMap { line -> SecurityEventWindow.Burst? in
            if case .closed(let burst) = line, burst.key.source == "*" { burst } else { nil }
        }
        #expect(overflow.map(\.count).reduce(0, +) == 1_000_000 - 16, "every event past the bound is counted")
    }

    /// A flood of one kind keeps no other kind from its own bursts.
    @Test func oneKindsFloodLeavesOtherKindsTheirSources() {
        var window = SecurityEventWindow(windowSeconds: 60, maxBursts: 4)
        for index in 0..<10_000 {
            _ = window.record(kind: "unknown_tenant", tenant: "-", source: "s\(index)", detail: "", now: 1)
        }
        let lines = window.record(kind: "auth_failed", tenant: "-", source: "10.9.9.9", detail: "", now: 2)
        guard case .started(let burst) = lines.first else {
            Issue.record("auth_failed starts its own burst: \(lines)")
            return
        }
        #expect(burst.key.source == "10.9.9.9")
    }

    @Test func aClockThatWentBackClosesTheWindow() {
        var window = SecurityEventWindow(windowSeconds: 60)
        _ = window.record(kind: "auth_failed", tenant: "-", source: "a", detail: "", now: 1000)
        _ = window.record(kind: "auth_failed", tenant: "-", source: "a", detail: "", now: 1001)
        let lines = window.record(kind: "auth_failed", tenant: "-", source: "a", detail: "", now: 10)
        #expect(lines.count == 2, "the old window's count, then a new burst: \(lines)")
    }

    @Test func theTimelineIsNewestFirstAndBounded() {
        var window = SecurityEventWindow(windowSeconds: 1, maxBursts: 4, timelineLength: 3)
        for second in 0..<10 {
            _ = window.record(
                kind: "auth_failed", tenant: "-", source: "s\(second)", detail: "", now: Double(second) * 2)
        }
        #expect(window.recent.map(\.key.source) == ["s9", "s8", "s7"])
    }
}
