import Foundation
import NIOHTTP1
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

@Suite("Admin API", .serialized)
struct AdminAPITests {
    static let script: TestUpstream.Script = { _ in
        TestUpstream.Reply(headers: [("Cache-Control", "max-age=300")], body: "b")
    }

    @Test func purgeNeedsAValidTokenWithScopeAndTenant() async throws {
        try await withEdge(script: Self.script) { edge in
            let body = #"{"tenant":"globex","all":true}"#
            #expect(try await edge.admin(.POST, "/_edge/purge", token: nil, body: body).status == 401)
            #expect(try await edge.admin(.POST, "/_edge/purge", token: "wrong", body: body).status == 401)
            let forbidden = try await edge.admin(.POST, "/_edge/purge", token: EdgeHarness.acmePurgeToken, body: body)
            #expect(forbidden.status == 403)
            #expect(forbidden.body.contains("not allowed for this call's tenant"))
            #expect(try await edge.admin(.GET, "/_edge/stats", token: EdgeHarness.acmePurgeToken).status == 403)
            let allowed = try await edge.admin(
                .POST, "/_edge/purge", token: EdgeHarness.acmePurgeToken, body: #"{"tenant":"acme","all":true}"#)
            #expect(allowed.status == 200)
        }
    }

    @Test func purgeByKeyPrefixAndAllClearsOnlyWhatItNames() async throws {
        try await withEdge(script: Self.script) { edge in
            for path in ["/v1/a?x=1", "/v1/b", "/v2/c", "/v1/d/e"] { _ = try await edge.get(path) }
            _ = try await edge.get("/v1/b", host: "api.globex.test")
            #expect(
                try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/v1/a?x=1"]}"#).body
                    .hasPrefix(#"{"purged":1,"id":"#))
            #expect(
                try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","prefixes":["/v1/"]}"#).body
                    .hasPrefix(#"{"purged":2,"id":"#))
            #expect(try await edge.get("/v2/c").cacheStatus.contains("hit"))
            #expect(
                try await edge.get("/v1/b", host: "api.globex.test").cacheStatus.contains("hit"),
                "other tenant untouched")
            #expect(
                try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#).body.hasPrefix(
                    #"{"purged":1,"id":"#))
        }
    }

    @Test func badPurgeBodiesGetA400WithAReasonAndChangeNothing() async throws {
        try await withEdge(script: Self.script) { edge in
            _ = try await edge.get("/keep")
            for body in ["not json", #"{"tenant":"acme","tagz":["x"]}"#, #"{"tenant":"acme"}"#] {
                let response = try await edge.admin(.POST, "/_edge/purge", body: body)
                #expect(response.status == 400)
                #expect(response.body.contains("\"error\":\"bad_request\""))
            }
            #expect(try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"nobody","all":true}"#).status == 404)
            #expect(try await edge.get("/keep").cacheStatus.contains("hit"))
        }
    }

    @Test func statsMetricsAndHealth() async throws {
        try await withEdge(script: Self.script) { edge in
            _ = try await edge.get("/s")
            _ = try await edge.get("/s")
            let stats = try await edge.admin(.GET, "/_edge/stats")
            #expect(stats.status == 200)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])
            let tenants = try #require(json["tenants"] as? [String: [String: Any]])
            #expect(tenants["acme"]?["hits"] as? Int == 1)
            #expect(tenants["acme"]?["misses"] as? Int == 1)
            #expect(tenants["acme"]?["entries"] as? Int == 1)
            #expect(tenants["acme"]?["encrypted"] as? Bool == true)
            let metrics = try await edge.admin(.GET, "/metrics", token: nil)
            #expect(metrics.status == 200)
            for family in [
                "edge_requests_total{tenant=\"acme\",cache_status=\"hit\"} 1", "edge_request_duration_seconds_bucket",
                "edge_cache_bytes{tenant=\"acme\",tier=\"memory\"}", "edge_config_version",
                "edge_tier_up{tier=\"memory\"} 1",
                "edge_invalidation_lag_seconds", "edge_security_events_total", "edge_invalidations_applied_total",
                "edge_cache_evictions_total",
            ] {
                #expect(metrics.body.contains(family), "missing \(family)")
            }
            #expect(try await edge.admin(.GET, "/healthz", token: nil).status == 200)
            #expect(try await edge.admin(.GET, "/readyz", token: nil).status == 200)
            #expect(try await edge.admin(.GET, "/nope").status == 404)
            #expect(try await edge.get("/_edge/stats").body == "b", "admin paths are not served on the tenant listener")
        }
    }

    @Test func metricsNeedATokenWhenMonitoringIsOff() async throws {
        try await withEdge(configure: { $0.monitoring = false }, script: Self.script) {
            (edge: EdgeHarness) async throws in
            #expect(try await edge.admin(.GET, "/metrics", token: nil).status == 401)
            #expect(try await edge.admin(.GET, "/metrics").status == 200)
        }
    }
}
