import Foundation
@testable import TenantEdgeCore
import TenantEdgeNative
import Testing
@testable import TenantEdgeServer

/// `GET /_edge/route` on the test GeoIP database `make test` generates (mmdb-writer), and on
/// MaxMind's broken test databases when ../shared/geoip is present.
@Suite("Geo-IP routing")
struct GeoRouteTests {
    static func configure(_ config: inout EdgeConfig) {
        config.geoip.database = ProcessInfo.processInfo.environment["TE_TEST_MMDB"]
        config.node.region = "us-east"
        config.regions = [
            RegionConfig(name: "eu-west", lat: 53.35, lon: -6.26, publicURL: "https://eu-west.test"),      // Dublin
            RegionConfig(name: "eu-central", lat: 50.11, lon: 8.68, publicURL: "https://eu-central.test"), // Frankfurt
            RegionConfig(name: "us-east", lat: 38.9, lon: -77.0, publicURL: "https://us-east.test"),       // Washington
        ]
        config.tenants[0].residency = ["eu-west", "eu-central"]  // acme: EU only; globex: anywhere
    }

    static func route(_ edge: EdgeHarness, ip: String, tenant: String) async throws -> [String: Any] {
        let response = try await edge.admin(.GET, "/_edge/route?ip=\(ip)&tenant=\(tenant)")
        #expect(response.status == 200, "\(response.body)")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    @Test func addressesMapToTheirCountryAndTheNearestAllowedRegion() async throws {
        _ = try OriginHarness.environment("TE_TEST_MMDB")
        try await withEdge(configure: Self.configure, script: { _ in .init(body: "x") }) { (edge: EdgeHarness) async throws in
            let us = try await Self.route(edge, ip: "216.160.83.56", tenant: "globex")
            #expect(us["country"] as? String == "US" && us["region"] as? String == "us-east" && us["reason"] as? String == "nearest")
            #expect((us["distance_km"] as? Int ?? 0) > 3000)
            let usForEU = try await Self.route(edge, ip: "216.160.83.56", tenant: "acme")
            #expect(usForEU["region"] as? String == "eu-west", "an EU-only tenant goes to the nearest EU region")
            let gb = try await Self.route(edge, ip: "81.2.69.160", tenant: "acme")
            #expect(gb["country"] as? String == "GB" && gb["region"] as? String == "eu-west")
            let de = try await Self.route(edge, ip: "2001:db8:1::1", tenant: "globex")
            #expect(de["country"] as? String == "DE" && de["region"] as? String == "eu-central", "IPv6")
            let mapped = try await Self.route(edge, ip: "::ffff:81.2.69.160", tenant: "globex")
            #expect(mapped["country"] as? String == "GB", "IPv4-mapped IPv6")
            let unknown = try await Self.route(edge, ip: "10.1.2.3", tenant: "globex")
            #expect(unknown["region"] as? String == "us-east" && unknown["reason"] as? String == "unknown-address")
            #expect(try await edge.admin(.GET, "/_edge/route?ip=not-an-ip&tenant=acme").status == 400)
            #expect(try await edge.admin(.GET, "/_edge/route?ip=1.2.3.4&tenant=nobody").status == 400)
        }
    }

    @Test func aMissingOrCorruptDatabaseStopsStartUpWithTheReason() async throws {
        let directory = try temporaryDirectory("te-geo")
        try Data("not a maxmind database".utf8).write(to: URL(fileURLWithPath: directory + "/broken.mmdb"))
        for path in [directory + "/missing.mmdb", directory + "/broken.mmdb"] {
            do {
                let edge = try await EdgeHarness.start(configure: { $0.geoip.database = path }, script: { _ in .init(body: "x") })
                await edge.shutdown()
                Issue.record("started with \(path)")
            } catch let error as EdgeError {
                #expect(error.message.hasPrefix("geoip.database: cannot open GeoIP database"), "\(error.message)")
            }
        }
    }

    @Test func maxMindsCityTestDatabaseGivesTheCountriesOfItsSource() throws {
        guard let shared = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"], !shared.isEmpty else { return }  // only when present
        let database = try GeoIPDatabase(path: shared + "/GeoIP2-City-Test.mmdb")
        #expect(try database.lookup("81.2.69.160")?.countryISOCode == "GB")
        #expect(try database.lookup("216.160.83.56")?.countryISOCode == "US")
        #expect(try database.lookup("::ffff:81.2.69.160")?.countryISOCode == "GB")
        #expect(try database.lookup("10.0.0.1") == nil)
    }

    @Test func maxMindsBrokenTestDatabasesNeverCrashOrHang() async throws {
        guard let shared = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"], !shared.isEmpty else { return }  // only when present
        let directory = URL(fileURLWithPath: shared)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: shared + "/bad-data")).map { $0.map { "bad-data/" + $0 } } ?? []
        let broken = names + ((try? FileManager.default.contentsOfDirectory(atPath: shared)) ?? [])
            .filter { $0.contains("Broken") || $0.contains("broken") || $0.contains("Invalid") }
        var opened = 0, refused = 0
        for name in broken where name.hasSuffix(".mmdb") {
            guard let database = try? GeoIPDatabase(path: directory.appendingPathComponent(name).path) else { refused += 1; continue }
            opened += 1
            for ip in ["81.2.69.160", "216.160.83.56", "2001:db8::1", "1.1.1.1"] { _ = try? database.lookup(ip) }  // errors are fine, crashes are not
        }
        #expect(opened + refused > 0, "the broken databases were found")
    }
}
