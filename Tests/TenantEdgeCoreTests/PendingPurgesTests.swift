import Testing

@testable import TenantEdgeCore

/// Purges that did not reach Redis: who is untrusted, when drops go out, and when trust returns.
@Suite("Pending L2 purges")
struct PendingPurgesTests {
    @Test func aFailedPurgeMakesTheTenantUntrustedUntilItsDropSucceeds() {
        var pending = PendingPurges()
        var action = pending.retryDue()
        #expect(action == PendingPurges.Action.none)
        let first = pending.purgeFailed(tenant: "acme")
        let second = pending.purgeFailed(tenant: "acme")
        #expect(first, "the first failure is news")
        #expect(!second, "the second is not")
        #expect(pending.isUntrusted("acme") && !pending.isUntrusted("globex"))
        action = pending.retryDue()
        #expect(action == .dropGenerations(["acme"]))
        pending.roundFinished(dropped: [])
        #expect(pending.isUntrusted("acme"), "the drop failed: still untrusted")
        action = pending.retryDue()
        #expect(action == .dropGenerations(["acme"]))
        pending.roundFinished(dropped: ["acme"])
        #expect(pending.isEmpty && !pending.isUntrusted("acme"))
    }

    @Test func oneRoundAtATimeAndEachTenantOnItsOwn() {
        var pending = PendingPurges()
        var action: PendingPurges.Action
        _ = pending.purgeFailed(tenant: "b")
        _ = pending.purgeFailed(tenant: "a")
        action = pending.retryDue()
        #expect(action == .dropGenerations(["a", "b"]))
        action = pending.retryDue()
        #expect(action == PendingPurges.Action.none, "a round is in flight")
        pending.roundFinished(dropped: ["b"])
        #expect(pending.tenants == ["a"])
    }

    @Test func aPurgeThatFailsDuringARoundIsNotClearedByThatRound() {
        var pending = PendingPurges()
        _ = pending.purgeFailed(tenant: "acme")
        var action = pending.retryDue()
        #expect(action == .dropGenerations(["acme"]))
        _ = pending.purgeFailed(tenant: "acme")  // newer than the drop in flight
        _ = pending.purgeFailed(tenant: "globex")  // not part of the round
        pending.roundFinished(dropped: ["acme", "globex"])
        #expect(pending.tenants == ["acme", "globex"], "both need a drop sent after their failure")
        action = pending.retryDue()
        #expect(action == .dropGenerations(["acme", "globex"]))
        pending.roundFinished(dropped: ["acme", "globex"])
        #expect(pending.isEmpty)
    }
}
