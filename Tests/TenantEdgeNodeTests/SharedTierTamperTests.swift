import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// Issue 11, item 16, on the real redis-server: someone who can write to the region's Redis edits
/// an entry's clear metadata or moves it into the next generation. Either way the sibling node
/// treats it as a miss and a `decrypt_failed` event, never as a fresh hit.
@Suite("Tampered L2 values", .serialized)
struct SharedTierTamperTests {
    static func securityEvents(_ edge: EdgeHarness) -> Int { edge.runtime.events.count.load(ordering: .relaxed) }

    /// Node `a` fetches `target`; its L2 key and value once Redis holds them.
    static func stored(_ target: String, by a: EdgeHarness, in redis: RedisConnection) async throws -> (
        key: String, value: [UInt8]
    ) {
        _ = try await a.get(target)
        let key = SharedTierTests.storedKey(a, tenant: "acme", target: target)
        try await waitUntil { (try? redis.command("EXISTS", key)) == .integer(1) }
        guard case .string(let value) = try redis.command("GET", key) else {
            throw EdgeError(.redisFailure, "no value at \(key)")
        }
        return (key, value)
    }

    @Test func anEditedLifetimeFailsToOpen() async throws {
        try await SharedTierTests.withTwoNodes(database: 15) { a, b, redis in
            let (key, original) = try await Self.stored("/v1/meta", by: a, in: redis)
            var value = original
            let forever = (1e9).bitPattern  // freshness: about 30 years
            for index in 0..<8 { value[17 + index] = UInt8(truncatingIfNeeded: forever >> UInt64(56 - 8 * index)) }
            _ = try redis.command([Array("SET".utf8), Array(key.utf8), value])
            let answer = try await b.get("/v1/meta")
            #expect(answer.cacheStatus.contains("fwd=miss"), "the edited value was not served: \(answer.cacheStatus)")
            #expect(Self.securityEvents(b) == 1)
        }
    }

    @Test func aValueCopiedIntoTheNextGenerationDoesNotUndoAPurge() async throws {
        try await SharedTierTests.withTwoNodes(database: 13) { a, b, redis in
            let value = try await Self.stored("/v1/undo", by: a, in: redis).value
            #expect(try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#).status == 200)
            let next = SharedTierTests.storedKey(a, tenant: "acme", target: "/v1/undo", generation: 1)
            _ = try redis.command([Array("SET".utf8), Array(next.utf8), value])
            let answer = try await b.get("/v1/undo")
            #expect(answer.cacheStatus.contains("fwd=miss"), "the copied value was not served: \(answer.cacheStatus)")
            #expect(Self.securityEvents(b) == 1)
        }
    }

    @Test func aGenerationSetBackInRedisDoesNotBringAPurgeBack() async throws {
        try await SharedTierTests.withTwoNodes(database: 17) { a, b, redis in
            _ = try await Self.stored("/v1/old", by: a, in: redis)
            #expect(try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#).status == 200)
            _ = try await b.get("/v1/other")  // b reads generation 1 from here on
            _ = try redis.command("SET", "te:acme:gen", "0")  // and someone sets it back
            let answer = try await b.get("/v1/old")
            #expect(answer.cacheStatus.contains("fwd=miss"), "the purged entry was not served: \(answer.cacheStatus)")
            #expect(
                try #require(b.runtime.l2(for: "acme")).counters.rolledBackGenerations.load(ordering: .relaxed) >= 1)
            // The node moves the generation above the highest it saw, and the tier works again.
            try await waitUntil { (try? redis.command("GET", "te:acme:gen")) == .string(Array("2".utf8)) }
            _ = try await b.get("/v1/after-raise")
            try await waitUntil {
                (try? redis.command(
                    "EXISTS",
                    SharedTierTests.storedKey(
                        b, tenant: "acme", target: "/v1/after-raise",
                        generation: 2))) == .integer(1)
            }
            _ = try redis.command("SET", "te:acme:gen", "-1")  // nonsense is this tenant's miss, not a dead tier
            _ = try await b.get("/v1/third")
            #expect(b.runtime.l2IsUp == true)
        }
    }
}

/// Issue 11, item 15: one tenant cannot fill the region's Redis.
@Suite("L2 quota per tenant", .serialized)
struct SharedTierQuotaTests {
    @Test func writesPastATenantsL2QuotaAreRefusedAndOthersKeepWriting() async throws {
        let url = try TestEnvironment.redisURL(database: 16)
        let body = String(repeating: "q", count: 4000)
        let configure: (inout EdgeConfig) -> Void = { config in
            config.cache.redis = .init(url: url, poolSize: 2, timeoutMs: 500)
            config.tenants[0].quotaBytesL2 = 20_000
        }
        try await withEdge(
            configure: configure, script: { _ in .init(headers: [("Cache-Control", "max-age=300")], body: body) }
        ) { edge in
            let redis = try RedisConnection.open(try #require(RedisEndpoint(parsing: url)), timeoutMs: 1000)
            for index in 0..<20 {
                _ = try await edge.get("/bust?\(index)")
                _ = try await edge.get("/bust?\(index)", host: "api.globex.test")
            }
            let tier = try #require(edge.runtime.l2(for: "acme"))
            try await waitUntil(seconds: 10) { tier.counters.quotaRefusedWrites.load(ordering: .relaxed) >= 10 }
            guard case .string(let total) = try redis.command("HGET", "te:acme:quota", "total") else {
                Issue.record("no ledger")
                return
            }
            let acmeBytes = Int(String(decoding: total, as: UTF8.self)) ?? .max
            #expect(acmeBytes <= 20_000, "acme holds \(acmeBytes) bytes")
            guard case .string(let other) = try redis.command("HGET", "te:globex:quota", "total") else {
                Issue.record("no ledger")
                return
            }
            #expect(
                (Int(String(decoding: other, as: UTF8.self)) ?? 0) > 60_000,
                "globex, under the default quota, stored all")
            // A purge of everything does not give the tenant a fresh quota while its old entries live on.
            #expect(try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#).status == 200)
            _ = try await edge.get("/after-purge")
            try await Task.sleep(for: .milliseconds(200))
            guard case .string(let after) = try redis.command("HGET", "te:acme:quota", "total") else {
                Issue.record("no ledger")
                return
            }
            #expect((Int(String(decoding: after, as: UTF8.self)) ?? .max) <= 20_000)
        }
    }
}
