import Testing

@testable import TenantEdgeCore

@Suite("Geo decision table")
struct GeoDecisionTableTests {
    static let dublin = RegionRouter.Location(country: "IE", continent: "EU", latitude: 53.3, longitude: -6.3)
    static func decision(_ region: String) -> RegionRouter.Decision {
        RegionRouter.Decision(region: region, distanceKm: 1, reason: "nearest")
    }

    @Test func anAddressAnswersPerResidencyAndKeepsItsLocation() {
        var table = GeoDecisionTable(capacity: 16)
        let client = IPAddress(ipv4: 0x5102_45A0)
        guard case .unknown = table.lookup(client, residency: []) else {
            Issue.record("empty table answered")
            return
        }
        #expect(table.record(Self.decision("eu-west"), for: client, residency: [], location: Self.dublin) == 1)
        guard case .decided(let anywhere) = table.lookup(client, residency: []) else {
            Issue.record("recorded decision not found")
            return
        }
        #expect(anywhere.region == "eu-west")
        // another residency: the location is known, the decision is not
        guard case .located(let location) = table.lookup(client, residency: ["us-east"]) else {
            Issue.record("another residency got a decision made for none")
            return
        }
        #expect(location == Self.dublin)
        #expect(table.record(Self.decision("us-east"), for: client, residency: ["us-east"], location: location) == 0)
        guard case .decided(let bound) = table.lookup(client, residency: ["us" + "-east"]) else {
            Issue.record("an equal residency in another array did not match")
            return
        }
        #expect(bound.region == "us-east")
        guard case .decided(let again) = table.lookup(client, residency: []) else { return }
        #expect(again.region == "eu-west", "one profile's decision does not replace another's")
        guard case .unknown = table.lookup(IPAddress(ipv4: 0x5102_45A1), residency: []) else {
            Issue.record("a neighbouring address shared the answer")
            return
        }
    }

    @Test func aLaterEpochEmptiesTheTableAndAnEarlierOneLeavesIt() {
        typealias Epoch = GeoDecisionTable.Epoch
        var table = GeoDecisionTable(capacity: 16)
        let first = Epoch(tableVersion: 3, resets: 0)
        #expect(table.enter(first) == 0 && table.epoch == first)
        for n: UInt32 in 0..<5 {
            _ = table.record(Self.decision("r"), for: IPAddress(ipv4: n), residency: [], location: nil)
        }
        #expect(table.enter(first) == 0 && table.count == 5)
        // a request that began before the bundle: the table stays, and the caller sees it is not its epoch
        #expect(table.enter(Epoch(tableVersion: 2, resets: 7)) == 0 && table.count == 5 && table.epoch == first)
        let reset = Epoch(tableVersion: 3, resets: 1)
        #expect(table.enter(reset) == -5 && table.count == 0 && table.epoch == reset)
        guard case .unknown = table.lookup(IPAddress(ipv4: 1), residency: []) else {
            Issue.record("a decision survived the reset")
            return
        }
        #expect(Epoch(tableVersion: 4, resets: 0) > reset, "a newer bundle is later whatever the resets")
    }

    @Test func profilesPerAddressAndEntriesAreBounded() {
        var table = GeoDecisionTable(capacity: 4)
        let client = IPAddress(ipv4: 7)
        for n in 0..<50 { _ = table.record(Self.decision("r\(n)"), for: client, residency: ["r\(n)"], location: nil) }
        guard case .decided(let newest) = table.lookup(client, residency: ["r49"]) else {
            Issue.record("newest profile lost")
            return
        }
        #expect(newest.region == "r49")
        guard case .located = table.lookup(client, residency: ["r0"]) else {
            Issue.record("the oldest profile was kept beyond the bound")
            return
        }
        for n in 0..<1000 {
            _ = table.record(Self.decision("r"), for: IPAddress(ipv4: UInt32(n)), residency: [], location: nil)
        }
        #expect(table.count <= 4)
    }
}
