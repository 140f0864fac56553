import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// A purge's id is the fence its own scripts made in Redis, on a real redis-server behind the
/// test's delaying proxy.
@Suite("Purge ids", .serialized)
struct PurgeIDTests {
    /// The fence moves after the purge's scripts ran and before their answers arrive (here directly;
    /// in production a sibling's purge, or an erasure's last step, which publishes no notice). An id
    /// read from the fence afterwards counted that move: the purging node's acknowledgement claimed a
    /// purge it had not applied, and after an erasure no sibling ever acknowledged the id.
    @Test func aPurgesIDIsTheFenceItsOwnScriptsMade() async throws {
        let redis = try RedisProcess()
        let proxy = try await StallingProxy(to: redis.port)
        do {
            try await withEdge(
                configure: {
                    $0.cache.redis = .init(url: "redis://127.0.0.1:\(proxy.port)/0", poolSize: 2, timeoutMs: 5000)
                },
                script: { _ in .init(headers: [("Cache-Control", "max-age=3600")], body: "v") }
            ) { edge in
                let direct = try RedisConnection.open(
                    RedisEndpoint(host: "127.0.0.1", port: redis.port), timeoutMs: 1000)
                _ = try await edge.get("/p")
                #expect(try direct.command("GET", "te:acme:fence") == .null, "no purge yet")
                proxy.set(.delay(milliseconds: 400))
                let purge = Task {
                    try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/p"]}"#).body
                }
                // A key purge runs two scripts (the key, then its variants' index): fence 2 once both ran.
                try await waitUntil(seconds: 5) {
                    (try? direct.command("GET", "te:acme:fence")) == .string(Array("2".utf8))
                }
                _ = try direct.command("INCR", "te:acme:fence")
                let answer = try DashboardTests.json(try await purge.value)
                #expect(answer["id"]?.stringValue == "acme:2", "\(answer)")
                #expect(try direct.command("GET", "te:acme:fence") == .string(Array("3".utf8)))
            }
        } catch {
            await proxy.stop()
            throw error
        }
        await proxy.stop()
    }
}
