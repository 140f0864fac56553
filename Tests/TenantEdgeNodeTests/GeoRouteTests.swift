import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// `GET /_edge/route` on the test GeoIP database `make test` generates (mmdb-writer), and on
/// MaxMind's broken test databases when ../shared/geoip is present.
@Suite("Geo-IP routing")
struct GeoRouteTests {
    static func configure(_ config: inout EdgeConfig) {
        config.geoip.database = ProcessInfo.processInfo.environment["TE_TEST_MMDB"]
        config.geoip.probeIntervalSeconds = 0  // the regions' URLs do not resolve
        config.node.region = "us-east"
        config.regions = [
            RegionConfig(name: "eu-west", lat: 53.35, lon: -6.26, publicURL: "https://eu-west.test"),  // Dublin
            RegionConfig(name: "eu-central", lat: 50.11, lon: 8.68, publicURL: "https://eu-central.test"),  // Frankfurt
            RegionConfig(name: "us-east", lat: 38.9, lon: -77.0, publicURL: "https://us-east.test"),  // Washington
        ]
        config.tenants[0].residency = ["eu-west", "eu-central"]  // acme: EU only; globex: anywhere
    }

    static func route(_ edge: EdgeHarness, ip: String, tenant: String) async throws -> [String: Any] {
        let response = try await edge.admin(.GET, "/_edge/route?ip=\(ip)&tenant=\(tenant)")
        #expect(response.status == 200, "\(response.body)")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    @Test func addressesMapToTheirCountryAndTheNearestAllowedRegion() async throws {
        _ = try TestEnvironment.require("TE_TEST_MMDB")
        try await withEdge(configure: Self.configure, script: { _ in .init(body: "x") }) {
            (edge: EdgeHarness) async throws in
            let us = try await Self.route(edge, ip: "216.160.83.56", tenant: "globex")
            #expect(
                us["country"] as? String == "US" && us["region"] as? String == "us-east"
                    && us["reason"] as? String == "nearest")
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
                let edge = try await EdgeHarness.start(
                    configure: { $0.geoip.database = path }, script: { _ in .init(body: "x") })
                await edge.shutdown()
                Issue.record("started with \(path)")
            } catch let error as EdgeError {
                #expect(error.message.hasPrefix("geoip.database: cannot open GeoIP database"), "\(error.message)")
            }
        }
    }

    @Test func maxMindsCityTestDatabaseGivesTheCountriesOfItsSource() throws {
        // only when present
        guard let shared = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"], !shared.isEmpty else { return }
        let database = try GeoIPDatabase(path: shared + "/GeoIP2-City-Test.mmdb")
        #expect(try database.lookup("81.2.69.160")?.country == "GB")
        #expect(try database.lookup("216.160.83.56")?.country == "US")
        #expect(try database.lookup("::ffff:81.2.69.160")?.country == "GB")
        #expect(try database.lookup("10.0.0.1") == nil)
    }

    /// A Country database has no coordinates: a region that lists the country, else the continent.
    @Test func aCountryDatabaseRoutesByCountryListThenContinent() async throws {
        // only when present
        guard let shared = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"], !shared.isEmpty else { return }
        try await withEdge(
            configure: { config in
                Self.configure(&config)
                config.geoip.database = shared + "/GeoIP2-Country-Test.mmdb"
                config.regions[1].countries = ["GB"]  // eu-central serves GB clients (an operator's choice)
            }, script: { _ in .init(body: "x") }
        ) { (edge: EdgeHarness) async throws in
            let gb = try await Self.route(edge, ip: "81.2.69.160", tenant: "globex")
            #expect(
                gb["country"] as? String == "GB" && gb["lat"] is NSNull && gb["region"] as? String == "eu-central"
                    && gb["reason"] as? String == "country")
            let us = try await Self.route(edge, ip: "216.160.83.56", tenant: "globex")
            #expect(
                us["country"] as? String == "US" && us["region"] as? String == "us-east"
                    && us["reason"] as? String == "continent")
        }
    }

    /// Every network of MaxMind's City test database's JSON source that has a country: its first
    /// address gets that country, and the region chosen is the nearest by an independent formula
    /// (spherical law of cosines) among one region per continent.
    @Test func addressesFromMaxMindsJSONSourceMapToTheirCountryAndNearestRegion() async throws {
        // only when present
        guard let shared = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"], !shared.isEmpty else { return }
        let source = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: shared + "/GeoIP2-City-Test.json"))) as? [[String: Any]])
        let regions = [
            RegionConfig(name: "eu", lat: 50.11, lon: 8.68, publicURL: "https://eu.test"),
            RegionConfig(name: "na", lat: 38.9, lon: -77.0, publicURL: "https://na.test"),
            RegionConfig(name: "ap", lat: 35.68, lon: 139.69, publicURL: "https://ap.test"),
            RegionConfig(name: "sa", lat: -23.55, lon: -46.63, publicURL: "https://sa.test"),
            RegionConfig(name: "oc", lat: -33.87, lon: 151.21, publicURL: "https://oc.test"),
        ]
        func cosineDistance(_ a: (Double, Double), _ b: (Double, Double)) -> Double {
            let r = Double.pi / 180
            return acos(min(1, sin(a.0 * r) * sin(b.0 * r) + cos(a.0 * r) * cos(b.0 * r) * cos((b.1 - a.1) * r)))
        }
        try await withEdge(
            configure: { config in
                config.geoip.database = shared + "/GeoIP2-City-Test.mmdb"
                config.geoip.probeIntervalSeconds = 0
                config.regions = regions
                config.node.region = "eu"
            }, script: { _ in .init(body: "x") }
        ) { (edge: EdgeHarness) async throws in
            var checked = 0
            for entry in source {
                guard let (network, record) = entry.first, let record = record as? [String: Any],
                    let country = (record["country"] as? [String: Any])?["iso_code"] as? String
                else { continue }
                var address = String(network.split(separator: "/")[0])
                // IPv4 networks in the IPv6 tree
                if address.hasPrefix("::"), address.contains(".") { address.removeFirst(2) }
                let route = try await Self.route(
                    edge, ip: address.replacingOccurrences(of: ":", with: "%3A"), tenant: "globex")
                #expect(route["country"] as? String == country, "\(network)")
                if let location = record["location"] as? [String: Any], let lat = location["latitude"] as? Double,
                    let lon = location["longitude"] as? Double
                {
                    let nearest = regions.min {
                        cosineDistance((lat, lon), ($0.lat, $0.lon)) < cosineDistance((lat, lon), ($1.lat, $1.lon))
                    }!
                    #expect(
                        route["region"] as? String == nearest.name && route["reason"] as? String == "nearest",
                        "\(network)")
                }
                checked += 1
            }
            #expect(checked > 200, "the source's networks were read")
        }
    }

    /// Each broken database in ../shared/geoip (`bad-data/` and the `*Broken*`, `*broken*`,
    /// `*Invalid*` files) is refused at start with the reason, or, where libmaxminddb opens it,
    /// serves tenant traffic with lookups that fall back: never a crash, a hang or a 5xx.
    @Test func maxMindsBrokenTestDatabasesAreRefusedOrFallBackWithoutA5xx() async throws {
        // only when present
        guard let shared = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"], !shared.isEmpty else { return }
        let names =
            (try? FileManager.default.contentsOfDirectory(atPath: shared + "/bad-data")).map {
                $0.map { "bad-data/" + $0 }
            } ?? []
        let broken =
            (names
            + ((try? FileManager.default.contentsOfDirectory(atPath: shared)) ?? [])
            .filter { $0.contains("Broken") || $0.contains("broken") || $0.contains("Invalid") }).filter {
                $0.hasSuffix(".mmdb")
            }
        #expect(broken.count >= 10, "the broken databases were found")
        var opened = 0
        var refused = 0
        var lookupErrors = 0
        for name in broken.sorted() {
            let edge: EdgeHarness
            do {
                edge = try await EdgeHarness.start(
                    configure: { config in
                        Self.configure(&config)
                        config.geoip.database = shared + "/" + name
                        config.geoip.trustedProxies = ["127.0.0.1"]
                        config.tenants[1].geoMode = .redirect
                    }, script: { _ in .init(body: "x") })
            } catch let error as EdgeError {
                #expect(
                    error.message.hasPrefix("geoip.database: cannot open GeoIP database"), "\(name): \(error.message)")
                refused += 1
                continue
            }
            opened += 1
            do {
                for ip in ["81.2.69.160", "216.160.83.56", "2001:db8::1", "1.1.1.1", "::1.2.3.4", "255.255.255.255"] {
                    let response = try await edge.get("/x", host: "api.globex.test", headers: [("X-Forwarded-For", ip)])
                    #expect(response.status == 200 || response.status == 307, "\(name) \(ip): \(response.status)")
                    let route = "/_edge/route?ip=\(ip.replacingOccurrences(of: ":", with: "%3A"))&tenant=globex"
                    #expect(try await edge.admin(.GET, route).status == 200)
                }
            } catch {
                Issue.record("\(name): \(error)")
            }
            lookupErrors += edge.runtime.geo.lookupErrors.load(ordering: .relaxed)
            await edge.shutdown()
        }
        #expect(refused > 0 && opened > 0, "some are refused at start (\(refused)), some open (\(opened))")
        #expect(lookupErrors > 0, "lookups into broken data fail and are counted")
    }
}
