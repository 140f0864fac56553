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

    @Test func aFenceThatWentBackReplacesTheWaitingOneEvenWhenLower() throws {
        var ledger = Ledger()
        let fortyWrite = ledger.applied(tenant: "acme", Self.ack(40), on: "A")
        let forty = try #require(fortyWrite)
        #expect(ledger.writeEnded(forty, confirmed: false) == nil)
        // Redis came back empty: the resync acknowledges fence 0; 40 must never be written to it.
        let zeroWrite = ledger.applied(tenant: "acme", Self.ack(0), on: "A", fenceWentBack: true)
        let zero = try #require(zeroWrite)
        #expect(zero.acknowledgement.fence == 0)
        #expect(ledger.retryDue().isEmpty, "0's write is in flight; 40 is gone")
        #expect(ledger.pending("acme", on: "A")?.fence == 0)
    }

    /// At a table swap the old and the new table's followers run side by side: one heard purges 14
    /// and 15 while the other's resync, which had read fence 14, reported after them. The late 14
    /// once replaced 15, and the node never showed as having applied purge 15.
    @Test func aLateLowerAcknowledgementLeavesTheHigherOneWaiting() throws {
        var ledger = Ledger()
        let fourteenWrite = ledger.applied(tenant: "acme", Self.ack(14), on: "A")
        let fourteen = try #require(fourteenWrite)
        #expect(ledger.applied(tenant: "acme", Self.ack(15), on: "A") == nil, "15 waits for 14's write")
        #expect(ledger.applied(tenant: "acme", Self.ack(14), on: "A") == nil, "the late 14 writes nothing")
        #expect(ledger.pending("acme", on: "A")?.fence == 15, "and replaces nothing")
        let fifteenWrite = ledger.writeEnded(fourteen, confirmed: true)
        let fifteen = try #require(fifteenWrite, "15 goes out when 14's write ends")
        #expect(fifteen.acknowledgement.fence == 15)
        #expect(ledger.applied(tenant: "acme", Self.ack(13), on: "A") == nil, "nor while 15 is in flight")
        #expect(ledger.writeEnded(fifteen, confirmed: true) == nil)
        #expect(ledger.count == 0)
        // Once 15 is confirmed, a late lower one is written (Redis keeps the higher): nothing is lost.
        #expect(ledger.applied(tenant: "acme", Self.ack(14), on: "A")?.acknowledgement.fence == 14)
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
        // The oldest may be the same tenant's, on another Redis: it goes, and is not brought back.
        var same = Ledger()
        _ = same.applied(tenant: "acme", Self.ack(1), on: "A")
        for index in 1..<Ledger.limit { _ = same.applied(tenant: "t\(index)", Self.ack(1), on: "A") }
        #expect(same.applied(tenant: "acme", Self.ack(2), on: "B") != nil)
        #expect(same.count == Ledger.limit && same.pending("acme", on: "A") == nil)
    }
}
