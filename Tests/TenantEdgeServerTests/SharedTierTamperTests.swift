import Foundation
@testable import TenantEdgeCore
import TenantEdgeNative
import Testing
@testable import TenantEdgeServer

/// Issue 11, item 16, on the real redis-server: someone who can write to the region's Redis edits
/// an entry's clear metadata or moves it into the next generation. Either way the sibling node
/// treats it as a miss and a `decrypt_failed` event, never as a fresh hit.
@Suite("Tampered L2 values", .serialized)
struct SharedTierTamperTests {
    static func securityEvents(_ edge: EdgeHarness) -> Int { edge.runtime.securityEventCount.load(ordering: .relaxed) }

    @Test func anEditedLifetimeFailsToOpen() async throws {
        try await SharedTierTests.withTwoNodes(database: 15) { a, b, redis in
            _ = try await a.get("/v1/meta")
            let key = SharedTierTests.storedKey(a, tenant: "acme", target: "/v1/meta")
            try await waitUntil { (try? redis.command("EXISTS", key)) == .integer(1) }
            guard case .string(var value) = try redis.command("GET", key) else { Issue.record("no value"); return }
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
            _ = try await a.get("/v1/undo")
            let old = SharedTierTests.storedKey(a, tenant: "acme", target: "/v1/undo")
            try await waitUntil { (try? redis.command("EXISTS", old)) == .integer(1) }
            guard case .string(let value) = try redis.command("GET", old) else { Issue.record("no value"); return }
            #expect(try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#).status == 200)
            let next = SharedTierTests.storedKey(a, tenant: "acme", target: "/v1/undo", generation: 1)
            _ = try redis.command([Array("SET".utf8), Array(next.utf8), value])
            let answer = try await b.get("/v1/undo")
            #expect(answer.cacheStatus.contains("fwd=miss"), "the copied value was not served: \(answer.cacheStatus)")
            #expect(Self.securityEvents(b) == 1)
        }
    }
}
