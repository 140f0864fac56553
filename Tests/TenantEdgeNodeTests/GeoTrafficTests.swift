import Foundation
import NIOHTTP1
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// `geo_mode` and residency on tenant traffic, with the test GeoIP database `make test` generates
/// and the client's address told by a trusted proxy (the test client connects from 127.0.0.1).
@Suite("Geo-IP on tenant traffic")
struct GeoTrafficTests {
    static let us = "216.160.83.56", gb = "81.2.69.160", brokenRecord = "198.51.100.7"

    /// A node in `home`, proxies on loopback trusted, L2 in Redis database 14; acme is EU-only.
    static func configure(
        home: String, acmeMode: TenantConfig.GeoMode, trustLoopback: Bool = true,
        redisURL: String? = nil
    ) -> (inout EdgeConfig) -> Void {
        #expect(
            ProcessInfo.processInfo.environment["TE_TEST_MMDB"] != nil, "make test generates the test GeoIP database")
        return { config in
            GeoRouteTests.configure(&config)
            config.node.region = home
            config.geoip.trustedProxies = trustLoopback ? ["127.0.0.0/8", "::1"] : []
            config.geoip.probeIntervalSeconds = 0
            config.tenants[0].geoMode = acmeMode
            if let redisURL { config.cache.redis = .init(url: redisURL, poolSize: 2, timeoutMs: 1000) }
        }
    }

    static func stats(_ edge: EdgeHarness) async throws -> [String: Any] {
        let response = try await edge.admin(.GET, "/_edge/stats")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    static func entries(_ stats: [String: Any], _ tenant: String) -> Int {
        ((stats["tenants"] as? [String: Any])?[tenant] as? [String: Any])?["entries"] as? Int ?? -1
    }

    @Test func anEUOnlyTenantAskedFromTheUSOnAUSNodeIsRedirectedToTheNearestEURegionAndNothingIsStored() async throws {
        let redisURL = try TestEnvironment.redisURL(database: 14)
        let script: TestUpstream.Script = { _ in .init(headers: [("Cache-Control", "max-age=60")], body: "eu data") }
        try await withEdge(
            configure: Self.configure(home: "us-east", acmeMode: .redirect, redisURL: redisURL), script: script
        ) {
            (edge: EdgeHarness) async throws in
            let redirected = try await edge.get("/v1/a?x=1", headers: [("X-Forwarded-For", Self.us)])
            #expect(redirected.status == 307)
            #expect(
                redirected.headers.first(name: "location") == "https://eu-west.test/v1/a?x=1",
                "nearest EU region to Seattle, path and query kept")
            #expect(redirected.cacheStatus == "test-a; fwd=bypass; detail=geo-redirect")
            #expect(redirected.headers.first(name: "x-edge-region") == "us-east")
            #expect(redirected.headers.first(name: "cache-control") == "private, no-store")
            let head = try await edge.request(.HEAD, "/v1/a?x=1", headers: [("X-Forwarded-For", Self.gb)])
            #expect(head.status == 307 && head.headers.first(name: "location") == "https://eu-west.test/v1/a?x=1")
            // Not GET or HEAD: served here, and (residency) never stored.
            let post = try await edge.request(.POST, "/v1/a?x=1", headers: [("X-Forwarded-For", Self.us)], body: "{}")
            #expect(post.status == 200 && post.cacheStatus == "test-a; fwd=bypass; detail=residency")
            #expect(edge.upstream.count("/v1/a?x=1") == 1, "only the POST reached the upstream")
            // The same tenant with geo_mode off on this node: served, bypassed, never stored in either tier.
            edge.runtime.activate(try edge.runtime.prepare(Self.withMode(.off, edge.runtime.config), version: 2))
            for _ in 0..<3 {
                let served = try await edge.get("/v1/b", headers: [("X-Forwarded-For", Self.us)])
                #expect(served.status == 200 && served.body == "eu data")
                #expect(served.cacheStatus == "test-a; fwd=bypass; detail=residency")
            }
            #expect(edge.upstream.count("/v1/b") == 3, "every request went upstream")
            #expect(Self.entries(try await Self.stats(edge), "acme") == 0)
            let redis = try RedisConnection.open(RedisEndpoint(parsing: redisURL)!, timeoutMs: 1000)
            #expect(
                try redis.command("KEYS", "*acme*") == .array([]),
                "nothing of the EU-only tenant in this region's Redis")
            // globex (no residency) is stored as usual in the same run: the bypass is acme's alone.
            _ = try await edge.get("/g", host: "api.globex.test")
            #expect(try await edge.get("/g", host: "api.globex.test").cacheStatus.hasPrefix("test-a; hit"))
            edge.runtime.audit.flush()
            let audit = try String(contentsOfFile: edge.runtime.audit.path, encoding: .utf8)
            let bypasses = audit.split(separator: "\n").filter { $0.contains(#""event":"residency_bypass""#) }
            #expect(bypasses.count == 1, "four bypassed requests within a minute: one audit entry")
            #expect(bypasses.first?.contains(#""tenant":"acme""#) == true)
            edge.clock.advance(by: 61)
            _ = try await edge.get("/v1/b", headers: [("X-Forwarded-For", Self.us)])
            edge.runtime.audit.flush()
            let later = try String(contentsOfFile: edge.runtime.audit.path, encoding: .utf8)
            let lines = later.split(separator: "\n").filter { $0.contains(#""event":"residency_bypass""#) }
            #expect(lines.count == 3, "a minute later: the first burst's count, and a new burst")
            #expect(lines.contains { $0.contains(#""burst":"closed""#) && $0.contains(#""count":"4""#) })
        }
    }

    static func withMode(_ mode: TenantConfig.GeoMode, _ config: EdgeConfig) -> EdgeConfig {
        var next = config
        next.tenants[0].geoMode = mode
        return next
    }

    @Test func anEUOnlyTenantAskedFromTheUSOnAnEUNodeIsServedAndCached() async throws {
        let script: TestUpstream.Script = { _ in .init(headers: [("Cache-Control", "max-age=60")], body: "eu data") }
        try await withEdge(configure: Self.configure(home: "eu-west", acmeMode: .redirect), script: script) {
            (edge: EdgeHarness) async throws in
            let first = try await edge.get("/v1/a", headers: [("X-Forwarded-For", Self.us)])
            #expect(first.status == 200 && first.cacheStatus == "test-a; fwd=miss; stored")
            #expect(
                try await edge.get("/v1/a", headers: [("X-Forwarded-For", Self.us)]).cacheStatus.hasPrefix(
                    "test-a; hit"))
            // A German client of the same tenant is sent to Frankfurt, which is nearer and allowed.
            let de = try await edge.get("/v1/a", headers: [("X-Forwarded-For", "2001:db8:1::9")])
            #expect(de.status == 307 && de.headers.first(name: "location") == "https://eu-central.test/v1/a")
        }
    }

    @Test func onlyATrustedProxyMayTellTheClientsAddress() async throws {
        let script: TestUpstream.Script = { _ in .init(headers: [("Cache-Control", "max-age=60")], body: "x") }
        try await withEdge(
            configure: Self.configure(home: "us-east", acmeMode: .hint, trustLoopback: false), script: script
        ) {
            (edge: EdgeHarness) async throws in
            let forged = try await edge.get("/h", headers: [("X-Forwarded-For", Self.gb)])
            #expect(forged.status == 200)
            #expect(
                forged.headers.first(name: "x-edge-preferred-region") == "eu-west",
                "the peer (127.0.0.1, unknown to the database) decides: acme's allowed region nearest to this node")
            let route = try await GeoRouteTests.route(edge, ip: "127.0.0.1", tenant: "acme")
            #expect(route["reason"] as? String == "unknown-address")
        }
        try await withEdge(configure: Self.configure(home: "us-east", acmeMode: .hint), script: script) {
            (edge: EdgeHarness) async throws in
            var hints: [String] = []
            for client in [Self.gb, "2001:db8:1::9", "1.1.1.1, \(Self.gb)"] {
                let response = try await edge.get("/h", headers: [("X-Forwarded-For", client)])
                #expect(response.status == 200)
                hints.append(response.headers.first(name: "x-edge-preferred-region") ?? "none")
            }
            #expect(
                hints == ["eu-west", "eu-central", "eu-west"],
                "the hop the trusted proxy added decides, not the client's own")
            _ = try await edge.get("/h", headers: [("X-Forwarded-For", Self.gb)])
            let geo = try #require(try await Self.stats(edge)["geo"] as? [String: Any])
            #expect(
                geo["cache_hits"] as? Int == 2 && geo["lookups"] as? Int == 2,
                "a repeated address is answered from the decision cache")
        }
    }

    @Test func aBrokenRecordFallsBackWithACountedErrorAndNo5xx() async throws {
        let script: TestUpstream.Script = { _ in .init(headers: [("Cache-Control", "max-age=60")], body: "x") }
        try await withEdge(configure: Self.configure(home: "eu-west", acmeMode: .redirect), script: script) {
            (edge: EdgeHarness) async throws in
            let response = try await edge.get("/b", headers: [("X-Forwarded-For", Self.brokenRecord)])
            #expect(response.status == 200, "served here: the fallback is this node's region")
            let geo = try #require(try await Self.stats(edge)["geo"] as? [String: Any])
            #expect(geo["lookup_errors"] as? Int == 1)
            let route = try await GeoRouteTests.route(edge, ip: Self.brokenRecord, tenant: "globex")
            #expect(route["region"] as? String == "eu-west" && route["reason"] as? String == "unknown-address")
            let metrics = try await edge.admin(.GET, "/metrics").body
            #expect(
                metrics.contains("edge_geoip_lookup_errors_total 2"),
                "\(metrics.split(separator: "\n").filter { $0.contains("geoip") })")
        }
    }
}
