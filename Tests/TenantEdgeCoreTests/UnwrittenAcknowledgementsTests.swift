import Testing

@testable import TenantEdgeCore

/// Purge acknowledgements Redis has not confirmed: what is written now, what waits for the retry
/// timer, and what a confirmation clears.
@Suite("Unwritten purge acknowledgements")
struct UnwrittenAcknowledgementsTests {
    static func ack(_ fence: Int) -> PurgeAcknowledgement { PurgeAcknowledgement(fence: fence, at: 1, removed: 0) }

    @Test func aFailedWriteWaitsForTheRetryTimerAndAConfirmationClearsIt() {
        var unwritten = UnwrittenAcknowledgements()
        #expect(unwritten.applied(tenant: "acme", Self.ack(3)) == Self.ack(3), "the first is written at once")
        #expect(unwritten.writeEnded(tenant: "acme", fence: 3, confirmed: false) == nil, "no retry in a loop")
        #expect(unwritten.count == 1)
        let due = unwritten.retryDue()
        #expect(due.map(\.tenant) == ["acme"] && due.first?.acknowledgement == Self.ack(3))
        #expect(unwritten.retryDue().isEmpty, "its write is in flight: not sent twice")
        #expect(unwritten.writeEnded(tenant: "acme", fence: 3, confirmed: true) == nil)
        #expect(unwritten.count == 0 && unwritten.retryDue().isEmpty)
    }

    @Test func aHigherFenceDuringAWriteGoesOutWhenThatWriteEnds() {
        var unwritten = UnwrittenAcknowledgements()
        _ = unwritten.applied(tenant: "acme", Self.ack(3))
        #expect(unwritten.applied(tenant: "acme", Self.ack(5)) == nil, "one write per tenant in flight")
        #expect(unwritten.applied(tenant: "acme", Self.ack(4)) == nil, "a lower one is covered by 5")
        #expect(unwritten.pending("acme")?.fence == 5)
        #expect(unwritten.writeEnded(tenant: "acme", fence: 3, confirmed: true) == Self.ack(5), "5 goes out now")
        #expect(unwritten.count == 1, "3's confirmation does not clear 5")
        #expect(unwritten.writeEnded(tenant: "acme", fence: 5, confirmed: true) == nil)
        #expect(unwritten.count == 0)
    }

    @Test func tenantsAreKeptApartAndForgottenWhenTheyLeave() {
        var unwritten = UnwrittenAcknowledgements()
        _ = unwritten.applied(tenant: "acme", Self.ack(1))
        _ = unwritten.applied(tenant: "globex", Self.ack(9))
        _ = unwritten.writeEnded(tenant: "acme", fence: 1, confirmed: false)
        _ = unwritten.writeEnded(tenant: "globex", fence: 9, confirmed: true)
        #expect(unwritten.retryDue().map(\.tenant) == ["acme"])
        unwritten.keepOnly(["globex"])
        #expect(unwritten.count == 0)
        #expect(unwritten.applied(tenant: "acme", Self.ack(2)) == Self.ack(2), "nothing in flight is left behind")
        unwritten.forget("acme")
        #expect(unwritten.count == 0)
    }

    @Test func atTheLimitTheLowestFenceGoes() {
        var unwritten = UnwrittenAcknowledgements()
        for index in 0..<UnwrittenAcknowledgements.limit {
            _ = unwritten.applied(tenant: "t\(index)", Self.ack(index + 10))
        }
        #expect(unwritten.applied(tenant: "new", Self.ack(1)) == Self.ack(1))
        #expect(unwritten.count == UnwrittenAcknowledgements.limit)
        #expect(unwritten.pending("t0") == nil && unwritten.pending("new") != nil)
    }
}
