import Testing

@testable import TenantEdgeCore

/// Purge acknowledgements Redis has not confirmed: what is written now, what waits for the retry
/// timer, what a confirmation clears, and that nothing is ever claimed above what was applied on
/// the Redis that counts it.
@Suite("Unwritten purge acknowledgements")
struct UnwrittenAcknowledgementsTests {
    typealias Ledger = UnwrittenAcknowledgements<String>
    static func ack(_ fence: Int) -> PurgeAcknowledgement { PurgeAcknowledgement(fence: fence, at: 1, removed: 0) }

    @Test func aFailedWriteWaitsForTheRetryTimerAndAConfirmationClearsIt() throws {
        var ledger = Ledger()
        let firstWrite = ledger.applied(tenant: "acme", Self.ack(3), on: "A")
        let first = try #require(firstWrite, "written at once")
        #expect(first.acknowledgement == Self.ack(3) && first.source == "A")
        #expect(ledger.writeEnded(first, confirmed: false) == nil, "no retry in a loop")
        #expect(ledger.count == 1)
        let due = ledger.retryDue()
        #expect(due.map(\.tenant) == ["acme"] && due.first?.acknowledgement == Self.ack(3))
        #expect(ledger.retryDue().isEmpty, "its write is in flight: not sent twice")
        let retried = try #require(due.first)
        #expect(ledger.writeEnded(retried, confirmed: true) == nil)
        #expect(ledger.count == 0 && ledger.retryDue().isEmpty)
    }

    @Test func theLatestAppliedReplacesTheWaitingOneEvenWhenLower() throws {
        var ledger = Ledger()
        let fortyWrite = ledger.applied(tenant: "acme", Self.ack(40), on: "A")
        let forty = try #require(fortyWrite)
        #expect(ledger.writeEnded(forty, confirmed: false) == nil)
        // Redis came back empty: the resync acknowledges fence 0; 40 must never be written to it.
        let zeroWrite = ledger.applied(tenant: "acme", Self.ack(0), on: "A")
        let zero = try #require(zeroWrite)
        #expect(zero.acknowledgement.fence == 0)
        #expect(ledger.retryDue().isEmpty, "0's write is in flight; 40 is gone")
        #expect(ledger.pending("acme", on: "A")?.fence == 0)
    }

    @Test func aWriteThatEndsAfterItWasReplacedNeitherClearsNorEndsTheNewerOne() throws {
        var ledger = Ledger()
        let threeWrite = ledger.applied(tenant: "acme", Self.ack(3), on: "A")
        let three = try #require(threeWrite)
        #expect(ledger.applied(tenant: "acme", Self.ack(5), on: "A") == nil, "one write per tenant in flight")
        let fiveWrite = ledger.writeEnded(three, confirmed: true)
        let five = try #require(fiveWrite, "5 goes out when 3's write ends")
        #expect(five.acknowledgement.fence == 5 && ledger.count == 1, "3's confirmation does not clear 5")
        #expect(ledger.writeEnded(three, confirmed: true) == nil, "a second end of 3's write changes nothing")
        #expect(ledger.retryDue().isEmpty, "5's write is still in flight")
        #expect(ledger.writeEnded(five, confirmed: true) == nil)
        #expect(ledger.count == 0)
    }

    @Test func eachRedisCountsItsOwnFencesAndKeepsItsOwnAcknowledgement() throws {
        var ledger = Ledger()
        let onAWrite = ledger.applied(tenant: "acme", Self.ack(500), on: "A")
        let onA = try #require(onAWrite)
        let onBWrite = ledger.applied(tenant: "acme", Self.ack(3), on: "B")
        let onB = try #require(onBWrite, "another Redis: its own write")
        #expect(ledger.pending("acme", on: "A")?.fence == 500 && ledger.pending("acme", on: "B")?.fence == 3)
        _ = ledger.writeEnded(onA, confirmed: false)
        _ = ledger.writeEnded(onB, confirmed: false)
        #expect(ledger.retryDue().map { "\($0.source)\($0.acknowledgement.fence)" } == ["A500", "B3"])
        ledger.keepOnly { _, source in source == "B" }  // the tenant is on B now
        #expect(ledger.pending("acme", on: "A") == nil && ledger.count == 1)
        ledger.forget("acme", on: "B")
        #expect(ledger.count == 0)
    }

    @Test func atTheLimitTheOldestAppliedGoes() {
        var ledger = Ledger()
        for index in 0..<Ledger.limit { _ = ledger.applied(tenant: "t\(index)", Self.ack(1), on: "A") }
        #expect(ledger.applied(tenant: "new", Self.ack(1), on: "A") != nil)
        #expect(ledger.count == Ledger.limit)
        #expect(ledger.pending("t0", on: "A") == nil && ledger.pending("new", on: "A") != nil)
    }
}
