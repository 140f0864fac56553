import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// L2 reads without a script (`RedisTier+PlainRead`), on a redis-server of the test's own, so its
/// command statistics count only these two nodes.
@Suite("L2 reads as one plain MGET", .serialized)
struct SharedTierPlainReadTests {
    /// Calls of `command` since the last `CONFIG RESETSTAT` (0 when Redis has not run it).
    static func calls(_ command: String, in redis: RedisConnection) throws -> Int {
        guard case .string(let info) = try redis.command("INFO", "commandstats") else { return -1 }
        let text = String(decoding: info, as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let field = line.split(separator: ",").first?.split(separator: "=").last
        else { return 0 }
        return Int(field) ?? -1
    }

    /// Two nodes on a Redis of this test's own.
    static func withTwoNodes(_ body: (EdgeHarness, EdgeHarness, RedisConnection) async throws -> Void) async throws {
        let server = try RedisProcess()
        // 5 s, not 1: a purge whose answer is late marks the tenant's L2 untrusted, and the writes
        // these tests wait for are then not made (CI on 08f4a9b, the whole suite running).
        try await SharedTierTests.withTwoNodes(
            database: 0, url: "redis://127.0.0.1:\(server.port)/0", timeoutMs: 5000, body)
        withExtendedLifetime(server) {}
    }

    /// `a` fetches `target` and waits until Redis holds it at `generation`.
    static func storeThroughA(
        _ target: String, _ a: EdgeHarness, _ redis: RedisConnection, generation: Int = 0
    ) async throws {
        _ = try await a.get(target)
        let key = SharedTierTests.storedKey(a, tenant: "acme", target: target, generation: generation)
        // A's write to L2 follows its answer; under ASan with the whole suite running it took over
        // 2 s (CI on 6e35e05).
        try await waitUntil(seconds: 10) { (try? redis.command("EXISTS", key)) == .integer(1) }
    }

    /// The entry key built as bytes is the key the scripts write (`te:<tenant>:g<generation>:<digest>`).
    @Test(arguments: [0, 7, 1234, UInt64.max])
    func theEntryKeyIsBuiltAsTheScriptsBuildIt(generation: UInt64) {
        for seed in 0..<20 {
            let digest = KeyDigest(bytes: (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ seed &* 11) })
            #expect(
                RedisTier.entryKey(tenant: "acme-\(seed)", generation: generation, digest: digest)
                    == Array("te:acme-\(seed):g\(generation):\(digest.base64URL)".utf8))
            var appended = Array("x".utf8)
            digest.appendBase64URL(to: &appended)
            #expect(appended == Array("x\(digest.base64URL)".utf8))
        }
    }

    /// A tenant's keys are `te:<tenant>:<name>`, the form `SharedTierScripts` and the Lua scripts
    /// share (the scripts get theirs from `tenantKey` too, so this pins the one definition).
    @Test func aTenantKeyIsItsNameUnderTheTenant() {
        for tenant in ["a", "acme", "a-tenant-with-a-long-name-\(String(repeating: "x", count: 300))"] {
            #expect(RedisTier.tenantKey(tenant, "fence") == Array("te:\(tenant):fence".utf8))
            #expect(RedisTier.tenantKey(tenant, "gen") == Array("te:\(tenant):gen".utf8))
        }
    }

    /// A generation read from Redis is decimal digits within `UInt64`; anything else is nil, as
    /// `UInt64(String)` of digits would say.
    @Test func aGenerationIsDigitsWithinUInt64() {
        let cases: [(String, UInt64?)] = [
            ("0", 0), ("7", 7), ("0012", 12), ("18446744073709551615", .max), ("18446744073709551616", nil),
            ("99999999999999999999", nil), ("000000000000000000001", nil), ("", nil), ("-1", nil), ("+1", nil),
            ("1a", nil), (" 1", nil), ("1.0", nil), ("\u{0}", nil),
        ]
        for (text, expected) in cases {
            #expect(RedisTier.generation(Array(text.utf8)) == expected, "\(text)")
        }
    }

    @Test func aKnownGenerationIsReadWithoutAScriptAndAMovedOneThroughIt() async throws {
        try await Self.withTwoNodes { a, b, redis in
            for target in ["/v1/first", "/v1/second", "/v1/purged"] { try await Self.storeThroughA(target, a, redis) }
            #expect(try await b.get("/v1/first").cacheStatus.hasSuffix("detail=l2"))  // b learns generation 0
            _ = try redis.command("CONFIG", "RESETSTAT")
            let second = try await b.get("/v1/second")
            #expect(second.cacheStatus.hasSuffix("detail=l2"))
            #expect(second.body == "api.acme.test|/v1/second")
            #expect(try Self.calls("mget", in: redis) == 1)
            #expect(try Self.calls("evalsha", in: redis) == 0, "no script on the read")

            // A purge of everything moves the generation while b still guesses 0, and the purged
            // entry is still in Redis at generation 0: the guess is noticed, and it is a miss.
            let purge = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#)
            #expect(purge.status == 200 && !purge.body.contains(":\(PurgeID.notPropagated)"), "\(purge.body)")
            let purged = try await b.get("/v1/purged")
            #expect(purged.cacheStatus.contains("fwd=miss"), "the purged entry was not served: \(purged.cacheStatus)")
            #expect(purged.body == "api.acme.test|/v1/purged")
            // b writes what it fetched to L2 (a script) after answering: waited for, so it cannot land
            // after the statistics are reset below (it did once, under ASan with the whole suite running).
            let written = SharedTierTests.storedKey(b, tenant: "acme", target: "/v1/purged", generation: 1)
            try await waitUntil(seconds: 10) { (try? redis.command("EXISTS", written)) == .integer(1) }

            // b now knows generation 1, and reads it plainly again.
            try await Self.storeThroughA("/v1/after", a, redis, generation: 1)
            _ = try redis.command("CONFIG", "RESETSTAT")
            let after = try await b.get("/v1/after")
            #expect(after.cacheStatus.hasSuffix("detail=l2"), "\(after.cacheStatus)")
            #expect(try Self.calls("mget", in: redis) == 1)
            #expect(try Self.calls("evalsha", in: redis) == 0)
        }
    }

    @Test func aRedisThatRefusesMGETIsReadThroughTheScript() async throws {
        try await Self.withTwoNodes { a, b, redis in
            try await Self.storeThroughA("/v1/first", a, redis)
            try await Self.storeThroughA("/v1/second", a, redis)
            #expect(try await b.get("/v1/first").cacheStatus.hasSuffix("detail=l2"))
            // An ACL from before the plain read: every command but MGET.
            #expect(try redis.command("ACL", "SETUSER", "default", "-mget") == .status("OK"))
            let second = try await b.get("/v1/second")
            #expect(second.cacheStatus.hasSuffix("detail=l2"), "read through the script: \(second.cacheStatus)")
            let tier = try #require(b.runtime.l2(for: "acme"))
            #expect(tier.plainReadsRefused)
            #expect(tier.isUp, "a refused MGET does not count against the tier")
            // A minute on, a plain read is tried again; once the ACL grants MGET it is used.
            #expect(try redis.command("ACL", "SETUSER", "default", "+mget") == .status("OK"))
            try await Self.storeThroughA("/v1/third", a, redis)
            b.clock.advance(by: RedisTier.plainReadPause + 1)
            #expect(!tier.plainReadsRefused)
            _ = try redis.command("CONFIG", "RESETSTAT")
            #expect(try await b.get("/v1/third").cacheStatus.hasSuffix("detail=l2"))
            #expect(try Self.calls("mget", in: redis) == 1)
            #expect(try Self.calls("evalsha", in: redis) == 0)
        }
    }
}
