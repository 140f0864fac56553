import Foundation
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// A GeoIP database replaced on disk is used without a restart (watch or SIGHUP); a replacement
/// that does not open leaves the old one in use; lookups running meanwhile never fail.
@Suite("Geo-IP database reload")
struct GeoReloadTests {
    static func country(_ edge: EdgeHarness, _ ip: String) async throws -> String? {
        try await GeoRouteTests.route(edge, ip: ip, tenant: "globex")["country"] as? String
    }

    /// Puts `source` at `path` the way geoipupdate does: a new file renamed over the old one.
    static func replace(_ path: String, with contents: Data) throws {
        try contents.write(to: URL(fileURLWithPath: path + ".new"))
        guard rename(path + ".new", path) == 0 else { throw EdgeError(.io, "rename failed") }
    }

    static func geo(_ edge: EdgeHarness) async throws -> [String: Any] {
        try #require(try await GeoTrafficTests.stats(edge)["geo"] as? [String: Any])
    }

    /// A node on a copy of the test database at `path`, checking it every `watch` seconds (0: never);
    /// `swapped` is the database to put there.
    static func withNodeOnACopy(
        watch: Int, _ body: (EdgeHarness, _ path: String, _ swapped: String) async throws -> Void
    ) async throws {
        let original = try TestEnvironment.require("TE_TEST_MMDB")
        let swapped = try TestEnvironment.require("TE_TEST_MMDB_SWAPPED")
        let path = try temporaryDirectory("te-geo-swap") + "/city.mmdb"
        try FileManager.default.copyItem(atPath: original, toPath: path)
        try await withEdge(
            configure: { config in
                GeoRouteTests.configure(&config)
                config.geoip.database = path
                config.geoip.watchIntervalSeconds = watch
            }, script: { _ in .init(body: "x") }
        ) { edge in try await body(edge, path, swapped) }
    }

    @Test func aDatabaseSwappedOnDiskIsUsedWithoutARestartAndABrokenOneIsNot() async throws {
        try await Self.withNodeOnACopy(watch: 1) { (edge: EdgeHarness, path: String, swapped: String) async throws in
            #expect(try await Self.country(edge, GeoTrafficTests.gb) == "GB")
            // Lookups keep running through the swap: every one answers, with the old or the new country.
            let lookups = Task {
                var answers: [String?] = []
                while answers.count < 800 && answers.suffix(20).filter({ $0 == "US" }).count < 20 {
                    answers.append(try await Self.country(edge, GeoTrafficTests.gb))
                    try await Task.sleep(for: .milliseconds(10))
                }
                return answers
            }
            try Self.replace(path, with: Data(contentsOf: URL(fileURLWithPath: swapped)))
            try await waitUntil(seconds: 5, advancing: edge.clock) {
                try await Self.country(edge, GeoTrafficTests.gb) == "US"
            }
            let answers = try await lookups.value
            #expect(
                answers.allSatisfy { $0 == "GB" || $0 == "US" } && answers.last == "US",
                "\(Set(answers.map { $0 ?? "nil" }))")
            #expect(try await Self.geo(edge)["reloads"] as? Int == 1)
            // A broken file renamed over it: refused, counted, and the swapped database stays.
            try Self.replace(path, with: Data("not a maxmind database".utf8))
            try await waitUntil(seconds: 5, advancing: edge.clock) {
                try await Self.geo(edge)["reload_failures"] as? Int == 1
            }
            #expect(try await Self.country(edge, GeoTrafficTests.gb) == "US")
            #expect(try await edge.get("/x", host: "api.globex.test").status == 200)
        }
    }

    @Test func withoutAWatchSIGHUPsReloadIsWhatSwapsIt() async throws {
        try await Self.withNodeOnACopy(watch: 0) { (edge: EdgeHarness, path: String, swapped: String) async throws in
            try Self.replace(path, with: Data(contentsOf: URL(fileURLWithPath: swapped)))
            edge.clock.advance(by: 3600)  // an hour on the node's clock: no watch ever looks
            for _ in 0..<10 { await Task.yield() }
            #expect(try await Self.country(edge, GeoTrafficTests.gb) == "GB", "no watch: the old database until told")
            #expect(edge.node.reloadGeoIP())
            #expect(try await Self.country(edge, GeoTrafficTests.gb) == "US")
            try FileManager.default.removeItem(atPath: path)
            #expect(!edge.node.reloadGeoIP(), "a missing file is not a reload")
            #expect(try await Self.country(edge, GeoTrafficTests.gb) == "US")
        }
    }
}

/// Region health from the node's own probes of the other regions' `public_url` + `/healthz`,
/// against real nodes: a region whose node stops answering is no longer chosen.
@Suite("Region health probes")
struct RegionProbeTests {
    static func regions(_ edge: EdgeHarness) async throws -> [String: String] {
        try #require(try await GeoReloadTests.geo(edge)["regions"] as? [String: String])
    }

    @Test func aRegionWhoseNodeStopsAnsweringIsNoLongerChosen() async throws {
        let sibling = try await EdgeHarness.start(script: { _ in .init(body: "x") })  // eu-west
        let health = try await sibling.get("/healthz", host: "127.0.0.1")
        #expect(
            health.status == 200 && health.body.contains(#""region":"eu-west""#),
            "a hostname that is no tenant's answers the probe")
        #expect(
            try await sibling.get("/healthz").status != 200 || sibling.upstream.count("/healthz") == 1,
            "a tenant's /healthz is the tenant's")
        let siblingURL = "http://127.0.0.1:\(sibling.node.trafficPort)"
        var siblingStopped = false
        do {
            try await withEdge(
                configure: { config in
                    GeoRouteTests.configure(&config)  // this node: us-east
                    config.regions[0].publicURL = siblingURL  // eu-west: the sibling node
                    config.regions[1].publicURL = "http://127.0.0.1:1"  // eu-central: nothing listens
                    config.geoip.probeIntervalSeconds = 1
                }, script: { _ in .init(body: "x") }
            ) { (edge: EdgeHarness) async throws in
                try await waitUntil(seconds: 6, advancing: edge.clock) {
                    try await Self.regions(edge)["eu-central"] == "down"
                }
                #expect(try await Self.regions(edge) == ["eu-west": "up", "eu-central": "down", "us-east": "up"])
                let toSibling = try await GeoRouteTests.route(edge, ip: "2001:db8:1::1", tenant: "globex")
                #expect(
                    toSibling["region"] as? String == "eu-west", "Frankfurt is down: a German client goes to Dublin")
                await sibling.shutdown()
                siblingStopped = true
                try await waitUntil(seconds: 8, advancing: edge.clock) {
                    try await Self.regions(edge)["eu-west"] == "down"
                }
                let home = try await GeoRouteTests.route(edge, ip: "2001:db8:1::1", tenant: "globex")
                #expect(home["region"] as? String == "us-east", "both EU regions down: the one that is up")
                let euOnly = try await GeoRouteTests.route(edge, ip: "2001:db8:1::1", tenant: "acme")
                #expect(
                    (euOnly["region"] as? String)?.hasPrefix("eu-") == true,
                    "residency holds even when its regions are down")
                #expect(try await edge.admin(.GET, "/metrics").body.contains(#"edge_region_up{region="eu-west"} 0"#))
            }
        } catch {
            if !siblingStopped { await sibling.shutdown() }
            throw error
        }
        if !siblingStopped { await sibling.shutdown() }
    }
}
