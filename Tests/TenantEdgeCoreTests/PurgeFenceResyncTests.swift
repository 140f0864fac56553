import Testing

@testable import TenantEdgeCore

/// What a sibling purge subscription concludes from the fences it read, the fences it knew before
/// the read, and the notices heard meanwhile.
@Suite("Purge fence resync")
struct PurgeFenceResyncTests {
    typealias Resync = PurgeFenceResync.Resync

    static func compare(known: [String: Int], read: [(String, Int?)], heard: [String: Int] = [:])
        -> (resyncs: [Resync], fences: [String: Int?])
    {
        let outcome = PurgeFenceResync.compare(
            known: known, read: read.map { (tenant: $0.0, fence: $0.1) }, heard: heard)
        return (outcome.resyncs, Dictionary(uniqueKeysWithValues: outcome.fences.map { ($0.tenant, $0.fence) }))
    }

    /// Known 4, read 4, notices 5 and 6 heard while reading: purges after the read, nothing missed.
    /// Compared with the fence the notices had raised (6), the read once looked like a fence going
    /// back, and the resync's acknowledgement of 4 replaced the one for purge 6.
    @Test func noticesHeardAfterTheReadAreNewerNotAFenceGoingBack() {
        let outcome = Self.compare(known: ["acme": 4], read: [("acme", 4)], heard: ["acme": 6])
        #expect(outcome.resyncs.isEmpty)
        #expect(outcome.fences == ["acme": 6])
    }

    @Test func aFenceThatMovedOnIsCoveredUpToTheLastNoticeHeard() {
        let outcome = Self.compare(
            known: ["acme": 4, "globex": 2], read: [("acme", 5), ("globex", 9)], heard: ["acme": 7, "globex": 3])
        #expect(
            outcome.resyncs == [
                Resync(tenant: "acme", fence: 7, change: .forward),
                Resync(tenant: "globex", fence: 9, change: .forward),
            ], "a notice at or below the read happened before it")
        #expect(outcome.fences == ["acme": 7, "globex": 9])
    }

    /// A Redis that hands out the largest fence there is (damaged, or hostile): no arithmetic to
    /// overflow, and the rule still only compares.
    @Test func theLargestFenceIsComparedNotComputedWith() {
        let outcome = Self.compare(known: ["acme": Int.max], read: [("acme", 3)], heard: ["acme": Int.max])
        #expect(outcome.resyncs == [Resync(tenant: "acme", fence: Int.max, change: .back)])
        #expect(outcome.fences["acme"] == Int.max)
    }

    @Test func aFenceThatWentBackIsFollowedNotKeptAtItsOldHigh() {
        // A Redis restarted empty: fence 0 read where 20 was known, then purges 1 and 2 heard.
        let outcome = Self.compare(
            known: ["acme": 20, "globex": 5], read: [("acme", 0), ("globex", 3)], heard: ["acme": 2])
        #expect(
            outcome.resyncs == [
                Resync(tenant: "acme", fence: 2, change: .back), Resync(tenant: "globex", fence: 3, change: .back),
            ])
        #expect(outcome.fences == ["acme": 2, "globex": 3])
    }

    @Test func aTenantWithNoFenceKnownIsCoveredOnlyOnceItHasOne() {
        let outcome = Self.compare(
            known: [:], read: [("acme", 0), ("globex", 4), ("initech", 0)], heard: ["initech": 1])
        #expect(outcome.resyncs == [Resync(tenant: "globex", fence: 4, change: .unknown)])
        #expect(outcome.fences == ["acme": 0, "globex": 4, "initech": 1])
    }

    @Test func aDamagedFenceCountsAsGoneBackAndIsForgotten() {
        let outcome = Self.compare(
            known: ["acme": 3, "globex": 1], read: [("acme", Int?.none), ("globex", Int?.none)], heard: ["globex": 2])
        #expect(
            outcome.resyncs == [
                Resync(tenant: "acme", fence: 0, change: .back), Resync(tenant: "globex", fence: 2, change: .back),
            ])
        #expect(outcome.fences.count == 2 && outcome.fences["acme"] == .some(nil) && outcome.fences["globex"] == 2)
    }
}
