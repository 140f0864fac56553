import Foundation
import NIOCore
import NIOPosix
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// The purge fence and the byte ledger of the Redis tier, on the real redis-server.
@Suite("Shared tier fence and byte ledger", .serialized)
struct SharedTierLedgerTests {
    @Test func aWriteIsRefusedWhenAPurgeRanSinceItsMissWasRead() async throws {
        try await SharedTierTests.withTwoNodes(database: 8) { a, b, redis in
            let tier = try #require(a.runtime.l2(for: "acme"))
            let digest = a.runtime.caches["acme"]!.primaryDigest(target: "/v1/fenced")
            let key = SharedTierTests.storedKey(a, tenant: "acme", target: "/v1/fenced")
            let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
            let before = try #require(try await tier.get(tenant: "acme", digest: digest, on: eventLoop).get())
            #expect(before.value == nil)
            // Meanwhile another node purges something of the tenant: the late write must not land.
            #expect(
                try await b.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/v1/other"]}"#).status == 200
            )
            tier.set(
                tenant: "acme", digest: digest, value: Array("late".utf8), ttlSeconds: 60, fence: before.token.fence,
                keyVersion: 1, indexes: [], on: eventLoop)
            try await waitUntil { tier.counters.fencedWrites.load(ordering: .relaxed) == 1 }
            #expect(try redis.command("EXISTS", key) == .integer(0))
            // A write that read the fence after the purge is stored.
            let after = try #require(try await tier.get(tenant: "acme", digest: digest, on: eventLoop).get())
            #expect(after.token.fence != before.token.fence)
            tier.set(
                tenant: "acme", digest: digest, value: Array("fresh".utf8), ttlSeconds: 60, fence: after.token.fence,
                keyVersion: 1, indexes: [], on: eventLoop)
            try await waitUntil { (try? redis.command("EXISTS", key)) == .integer(1) }
            // A generation drop fences too.
            #expect(try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#).status == 200)
            tier.set(
                tenant: "acme", digest: digest, value: Array("late".utf8), ttlSeconds: 60, fence: after.token.fence,
                keyVersion: 1, indexes: [], on: eventLoop)
            try await waitUntil { tier.counters.fencedWrites.load(ordering: .relaxed) == 2 }
            #expect(
                try redis.command(
                    "EXISTS", SharedTierTests.storedKey(a, tenant: "acme", target: "/v1/fenced", generation: 1))
                    == .integer(0))
        }
    }

    @Test func statsAndMetricsShowEachTenantsLiveBytesInRedis() async throws {
        try await SharedTierTests.withTwoNodes(database: 9) { a, b, redis in
            let paths = (0..<5).map { "/v1/bytes/\($0)" }
            for path in paths { _ = try await a.get(path) }
            _ = try await a.get("/v1/bytes/other", host: "api.globex.test")
            let keys = paths.map { SharedTierTests.storedKey(a, tenant: "acme", target: $0) }
            try await waitUntil { keys.allSatisfy { (try? redis.command("EXISTS", $0)) == .integer(1) } }
            func length(_ key: String) throws -> Int {
                guard case .integer(let length) = try redis.command("STRLEN", key) else {
                    throw EdgeError(.redisFailure, "STRLEN")
                }
                return length
            }
            let total = try keys.reduce(0) { try $0 + length($1) }
            #expect(total > 5 * 100)
            #expect(try await Self.redisBytes(b, tenant: "acme") == total, "the sibling reads the same ledger")
            let metrics = try await b.admin(.GET, "/metrics").body
            #expect(metrics.contains(#"edge_cache_bytes{tenant="acme",tier="redis"} \#(total)"#))
            let globex = try await Self.redisBytes(b, tenant: "globex")
            #expect(globex > 0 && globex < total, "tenants are counted apart")

            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/v1/bytes/0"]}"#)
            #expect(try await Self.redisBytes(a, tenant: "acme") == total - (total / 5), "equal sizes: one fifth went")
            _ = try await a.get("/v1/bytes/1")  // an L1 hit: nothing written, nothing counted twice
            #expect(try await Self.redisBytes(a, tenant: "acme") == total - (total / 5))
            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#)
            #expect(try await Self.redisBytes(a, tenant: "acme") == 0)
            #expect(try await Self.redisBytes(a, tenant: "globex") == globex)
        }
    }

    static func redisBytes(_ edge: EdgeHarness, tenant: String) async throws -> Int {
        let stats = try await edge.admin(.GET, "/_edge/stats")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])
        let tenants = try #require(json["tenants"] as? [String: Any])
        let figures = try #require(tenants[tenant] as? [String: Any])
        return try #require(figures["redis_bytes"] as? Int, "redis_bytes missing for \(tenant)")
    }
}
