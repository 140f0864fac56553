import Foundation
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// The node's dashboard endpoints: the page and its headers, the data it polls limited to the
/// token's tenants, and purge results per node through the region's Redis.
@Suite("Dashboard", .serialized)
struct DashboardTests {
    static func json(_ text: String) throws -> [String: JSONValue] {
        try #require(JSONValue.parse(Array(text.utf8))?.objectValue, "not a JSON object: \(text)")
    }

    @Test func thePageIsSelfContainedAndItsPolicyAllowsOnlyItsOwnScript() async throws {
        try await withEdge(script: SharedTierTests.body) { edge in
            let page = try await edge.admin(.GET, "/_edge/dashboard", token: nil)
            #expect(page.status == 200 && page.headers.first(name: "content-type") == "text/html; charset=utf-8")
            let policy = try #require(page.headers.first(name: "content-security-policy"))
            #expect(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"))
            #expect(!policy.contains("unsafe-inline") && !policy.contains("*"))
            let scripts = DashboardPage.blocks(of: "script", in: page.body)
            #expect(!scripts.isEmpty)
            for script in scripts { #expect(policy.contains(DashboardPage.hashSource(script))) }
            #expect(!page.body.contains("src=\"http") && !page.body.contains("href=\"http"), "no outside asset")
            #expect(!page.body.contains("localStorage.setItem"), "the token stays in sessionStorage")
            #expect(try await edge.admin(.POST, "/_edge/dashboard", token: nil).status == 405)
        }
    }

    @Test func dataNeedsAReadTokenAndShowsOnlyItsTenants() async throws {
        try await withEdge(script: SharedTierTests.body) { edge in
            _ = try await edge.get("/a")
            _ = try await edge.get("/a")
            _ = try await edge.get("/g", host: "api.globex.test")
            _ = try await edge.admin(.GET, "/_edge/stats", token: "wrong")  // an auth_failed with no tenant
            #expect(try await edge.admin(.GET, "/_edge/dashboard/data", token: nil).status == 401)
            #expect(
                try await edge.admin(.GET, "/_edge/dashboard/data", token: EdgeHarness.acmePurgeToken).status == 403)
            let all = try Self.json(try await edge.admin(.GET, "/_edge/dashboard/data").body)
            #expect(Set(all["tenants"]?.objectValue?.keys ?? [:].keys) == ["acme", "globex"])
            let acme = try #require(all["tenants"]?.objectValue?["acme"]?.objectValue)
            #expect(acme["requests"]?.objectValue?["hit"] == .integer(1))
            #expect(acme["requests"]?.objectValue?["miss"] == .integer(1))
            #expect(acme["latency"]?.objectValue?["cumulative"]?.arrayValue?.last == .integer(2))
            let nodes = try #require(all["nodes"]?.arrayValue)
            #expect(
                nodes.first?.objectValue?["self"] == .bool(true) && nodes.first?.objectValue?["id"] == .string("test-a")
            )
            #expect(all["events"]?.arrayValue?.contains { $0.objectValue?["kind"] == .string("auth_failed") } == true)
            let scoped = try Self.json(
                try await edge.admin(.GET, "/_edge/dashboard/data", token: EdgeHarness.acmeReadToken).body)
            #expect(Array(scoped["tenants"]?.objectValue?.keys ?? [:].keys) == ["acme"])
            #expect(scoped["events"]?.arrayValue == [], "events of no tenant are for tokens of every tenant")
            let versions = scoped["nodes"]?.arrayValue?.first?.objectValue?["key_versions"]?.objectValue
            #expect(versions.map { Array($0.keys) } == ["acme"])
            #expect(scoped["token"]?.objectValue?["scopes"] == .array([.string("config"), .string("read")]))
        }
    }

    @Test func aPurgeFromOneNodeIsAcknowledgedByEveryNodeOfTheRegion() async throws {
        try await SharedTierTests.withTwoNodes(database: 24) { a, b, _ in
            _ = try await a.get("/p")
            _ = try await b.get("/p")
            let answer = try Self.json(
                try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/p"]}"#).body)
            let id = try #require(answer["id"]?.stringValue)
            #expect(id.hasPrefix("acme:") && id != "acme:0")
            var nodes: [String: JSONValue] = [:]
            try await waitUntil(seconds: 5) {
                let status = try await a.admin(.GET, "/_edge/purges/\(id)", token: EdgeHarness.acmePurgeToken)
                nodes = try Self.json(status.body)["nodes"]?.objectValue ?? [:]
                return nodes.count == 2
            }
            #expect(Set(nodes.keys) == ["node-a", "node-b"])
            #expect(nodes["node-a"]?.objectValue?["purged"] == .integer(2), "a's L1 and L2 copies")
            #expect(try await b.get("/p").cacheStatus.contains("fwd=miss"), "b dropped its L1 copy")
            // Both nodes show up on either node's dashboard.
            try await waitUntil(seconds: 5) {
                let data = try Self.json(try await b.admin(.GET, "/_edge/dashboard/data").body)
                return data["nodes"]?.arrayValue?.compactMap { $0.objectValue?["id"]?.stringValue } == [
                    "node-b", "node-a",
                ]
            }
            for bad in [
                "globex:\(id.dropFirst(5))", "acme", "acme:-1", "acme:x", ":1", String(repeating: "a", count: 300),
            ] {
                let refused = try await a.admin(.GET, "/_edge/purges/\(bad)", token: EdgeHarness.acmePurgeToken)
                #expect(refused.status == 404, "\(bad): \(refused.status)")
            }
            #expect(try await a.admin(.GET, "/_edge/purges/\(id)", token: nil).status == 401)
        }
    }

    /// An acknowledgement whose write failed is written again until Redis holds it: here the acks hash
    /// is a string (every write gets `WRONGTYPE`) while a purge runs, and is repaired afterwards. Both
    /// nodes' acknowledgements then arrive on the retry timer, and the purge shows as applied on both.
    /// (Written once and forgotten, a failed one showed the sibling as never having applied the purge:
    /// an AddressSanitizer run of `IsolationUnderChangeTests` waited 10 s for it.)
    @Test func anAcknowledgementWhoseWriteFailedIsWrittenAgain() async throws {
        try await SharedTierTests.withTwoNodes(database: 6) { a, b, redis in
            _ = try redis.command("SET", "te:acme:acks", "not a hash")
            let answer = try Self.json(
                try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/p"]}"#).body)
            let id = try #require(answer["id"]?.stringValue)
            #expect(id.hasPrefix("acme:") && id != "acme:0")
            // Each node applied it and holds its acknowledgement, unwritten, as the metric shows. The
            // clocks move: a subscription that failed once under load retries on b's clock.
            try await waitUntil(seconds: 10, advancing: a.clock, b.clock) {
                a.runtime.acknowledger.waiting == 1 && b.runtime.acknowledger.waiting == 1
            }
            let scrape = try await b.admin(.GET, "/metrics").body
            #expect(scrape.contains("\nedge_purge_acknowledgements_unwritten 1"))
            #expect(scrape.contains("\nedge_sibling_purge_subscriptions_down 0"))
            let before = try await a.admin(.GET, "/_edge/purges/\(id)")
            #expect(try Self.json(before.body)["nodes"]?.objectValue?.keys.sorted() == ["node-a"], "\(before.body)")
            _ = try redis.command("DEL", "te:acme:acks")
            try await waitUntil(seconds: 10, advancing: a.clock, b.clock) {
                let status = try await a.admin(.GET, "/_edge/purges/\(id)")
                return try Self.json(status.body)["nodes"]?.objectValue?.count == 2
            }
            // The status names node-a from a's own record, so a's acknowledgement may still wait for
            // its retry timer, which moves only with the clocks (an ASan run waited 5 s without them).
            try await waitUntil(seconds: 10, advancing: a.clock, b.clock) {
                a.runtime.acknowledger.waiting == 0 && b.runtime.acknowledger.waiting == 0
            }
        }
    }

    /// Whatever is in the region's hash (2,000 forged fields, garbage, a beacon under another node's
    /// field, one from the future), the dashboard answers with the real nodes, the shared
    /// connection keeps serving L2 hits, and the next beacon write prunes what is stale.
    @Test func hostileRegionRecordsAreBoundedAndLeftOut() async throws {
        try await SharedTierTests.withTwoNodes(database: 27) { a, b, redis in
            for index in 0..<2_000 {
                _ = try redis.command("HSET", "te:_region:nodes", "forged-\(index)", "not json \(index)")
            }
            let forged =
                #"{"id":"node-x","region":"eu-west","at":1,"cursor":0,"config_version":0,"tiers":{},"key_versions":{}}"#
            _ = try redis.command("HSET", "te:_region:nodes", "node-b-shadow", forged)
            let future = forged.replacingOccurrences(of: #""at":1"#, with: #""at":99999999999"#)
                .replacingOccurrences(of: "node-x", with: "node-y")
            _ = try redis.command("HSET", "te:_region:nodes", "node-y", future)
            _ = try await a.get("/h")
            var ids: [String] = []
            try await waitUntil(seconds: 5, advancing: a.clock, b.clock) {
                let data = try Self.json(try await a.admin(.GET, "/_edge/dashboard/data").body)
                ids = data["nodes"]?.arrayValue?.compactMap { $0.objectValue?["id"]?.stringValue } ?? []
                return ids == ["node-a", "node-b"]
            }
            #expect(ids == ["node-a", "node-b"], "forged, future and garbage beacons are left out")
            var fromL2 = try await b.get("/h")
            for _ in 0..<20 where !fromL2.cacheStatus.contains("detail=l2") {
                try await Task.sleep(for: .milliseconds(50))
                fromL2 = try await b.get("/h")
            }
            #expect(fromL2.cacheStatus.contains("detail=l2"), "the shared connection still serves L2")
            // The prune runs with the next beacon write, which the dashboard's answer does not wait for.
            var left = -1
            try? await waitUntil(seconds: 10, advancing: a.clock, b.clock) {
                guard case .integer(let count) = try redis.command("HLEN", "te:_region:nodes") else { return false }
                left = count
                return count <= 4
            }
            #expect((0...4).contains(left), "the next beacon write dropped stale and unreadable fields: \(left) left")
        }
    }
}
