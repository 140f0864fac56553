import Logging
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// A tenant removed and added back while this node still erases its data from L2 (Redis was away
/// when the erasure began), on a real redis-server behind the test's proxy.
@Suite("A tenant added back during its erasure", .serialized)
struct TenantReturnTests {
    /// Added back under the same keys (no wrapped keys in the bundle: they derive from the node's
    /// master key and the tenant id), the tenant used to read its erased entries from L2 into L1
    /// before the erasure reached them, and kept them after the erasure was confirmed. Now it
    /// neither reads nor writes L2 until a generation drop of its own.
    @Test func erasedEntriesAreNeverReadBack() async throws {
        let redis = try RedisProcess()
        let proxy = try await StallingProxy(to: redis.port)
        let fetches = Locked(0)
        let edge = try await EdgeHarness.start(
            configure: { config in
                // 1 s, not 300 ms: a node's first L2 call makes its connection within `timeout_ms`, and
                // with the whole suite under TSan that took longer, so the read failed and nothing was
                // written (CI on 75d7d67).
                config.cache.redis = .init(url: "redis://127.0.0.1:\(proxy.port)/0", poolSize: 2, timeoutMs: 1000)
            },
            script: { _ in
                let count = fetches.modify { count in
                    count += 1
                    return count
                }
                return .init(headers: [("Cache-Control", "max-age=3600")], body: "v\(count)")
            })
        do {
            let direct = try RedisConnection.open(RedisEndpoint(host: "127.0.0.1", port: redis.port), timeoutMs: 1000)
            #expect(try await edge.get("/a").body == "v1")
            try await waitUntil(seconds: 10) { (try? direct.command("EXISTS", "te:acme:keys")) == .integer(1) }
            let erased = Locked<[String]>([])
            edge.runtime.observeErasures { tenant in erased.update { $0.append(tenant) } }

            // Removed while Redis is away: the erasure's first round fails and waits on the node's clock.
            let original = edge.runtime.config
            var without = original
            without.tenants.removeAll { $0.id == "acme" }
            proxy.set(.partitioned)
            edge.runtime.activate(try edge.runtime.prepare(without, version: 2))
            #expect(try await edge.get("/a").status == 421)
            try await Task.sleep(for: .milliseconds(2300))  // both calls of the first round past 1 s

            // Back, same keys, Redis reachable again, the erasure not yet retried.
            edge.runtime.activate(try edge.runtime.prepare(original, version: 3))
            proxy.set(.pass)
            let back = try await edge.get("/a")
            #expect(back.body == "v2", "fetched again, not the erased entry: \(back.body) \(back.cacheStatus)")
            #expect(!back.cacheStatus.contains("detail=l2"))

            try await waitUntil(seconds: 10, advancing: edge.clock) { erased.value == ["acme"] }
            // The erasure ended with the tenant back: its generation (moved by its own drop) stays, so
            // no sibling that read it sees it go back to 0; only the earlier entries went.
            #expect(try direct.command("GET", "te:acme:gen") != .null, "the returned tenant's generation stays")
            let after = try await edge.get("/a")
            #expect(after.body != "v1", "the erased entry never comes back: \(after.cacheStatus)")
        } catch {
            await edge.shutdown()
            await proxy.stop()
            throw error
        }
        await edge.shutdown()
        await proxy.stop()
    }

    /// A node on a redis-server of its own with `/a` stored in L2; `body` gets the node, its tier
    /// for `acme` and a direct connection to that Redis.
    private func withStoredEntry(
        _ body: (EdgeHarness, RedisTier, RedisConnection) async throws -> Void
    ) async throws {
        let redis = try RedisProcess()
        try await withEdge(
            configure: {
                $0.cache.redis = .init(url: "redis://127.0.0.1:\(redis.port)/0", poolSize: 2, timeoutMs: 1000)
            },
            script: { _ in .init(headers: [("Cache-Control", "max-age=3600")], body: "v") }
        ) { edge in
            let direct = try RedisConnection.open(RedisEndpoint(host: "127.0.0.1", port: redis.port), timeoutMs: 1000)
            let tier = try #require(edge.runtime.l2(for: "acme"))
            #expect(try await edge.get("/a").body == "v")
            try await waitUntil(seconds: 5) { (try? direct.command("EXISTS", "te:acme:keys")) == .integer(1) }
            try await body(edge, tier, direct)
        }
    }

    /// The erasure's last step, decided `gone` while the tenant was away, may reach Redis after the
    /// tenant came back (a call that timed out stays queued on its connection). Redis itself checks
    /// the generation the erasure's drop made: once the returned tenant's own drop moved it, the
    /// step touches nothing (the generation, its entries and acknowledgements stay) and the erasure
    /// decides again.
    @Test func aGoneStepArrivingAfterTheReturnLeavesTheTenantsGeneration() async throws {
        try await withStoredEntry { edge, tier, direct in
            _ = try direct.command("HSET", "te:acme:acks", "test-b", "{}")
            let loop = edge.runtime.eventLoop
            let erasures = try #require(try await tier.dropGeneration(tenant: "acme", on: loop).get()).count
            let returned = try #require(try await tier.dropGeneration(tenant: "acme", on: loop).get()).count
            #expect(returned == erasures + 1)
            let late = try await tier.erase(tenant: "acme", back: false, generation: erasures, on: loop).get()
            #expect(!late, "a stale gone step reports that the erasure must decide again")
            #expect(try direct.command("GET", "te:acme:gen") == .string(Array(String(returned).utf8)))
            #expect(try direct.command("EXISTS", "te:acme:keys") == .integer(1), "nothing deleted")
            #expect(try direct.command("HEXISTS", "te:acme:acks", "test-b") == .integer(1))

            // Decided again with the generation as it is, the step runs.
            #expect(try await tier.erase(tenant: "acme", back: false, generation: returned, on: loop).get())
            #expect(try direct.command("EXISTS", "te:acme:gen", "te:acme:keys", "te:acme:acks") == .integer(0))
        }
    }

    /// A generation or fence `INCR` refuses (not a number, or at the 64-bit limit) starts again at 1:
    /// before, every generation drop failed on it, so the erasure (which now runs its steps only
    /// after a drop) never deleted the tenant's keys, and every purge of everything failed.
    @Test(arguments: [("x", "9223372036854775807"), ("9223372036854775807", "not a fence")])
    func aDamagedGenerationOrFenceStopsNeitherPurgesNorTheErasure(generation: String, fence: String) async throws {
        try await withStoredEntry { edge, tier, direct in
            _ = try direct.command("SET", "te:acme:gen", generation)
            _ = try direct.command("SET", "te:acme:fence", fence)
            let loop = edge.runtime.eventLoop
            let drop = try #require(try await tier.dropGeneration(tenant: "acme", on: loop).get())
            #expect(drop.fence == 1 && drop.count == 1, "each starts again at 1")
            #expect(try await tier.erase(tenant: "acme", back: false, generation: drop.count, on: loop).get())
            #expect(try direct.command("EXISTS", "te:acme:gen", "te:acme:keys") == .integer(0))
        }
    }
}
