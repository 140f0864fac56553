import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// Each L2 isolation strategy (`database`, `schema`, `row`, `hybrid`) stores where it says, on the real redis-server.
@Suite("L2 isolation strategies", .serialized)
struct IsolationStrategyTests {
    static func admin(database: Int) throws -> RedisConnection {
        let port = try #require(
            Int(ProcessInfo.processInfo.environment["TE_TEST_REDIS_PORT"] ?? ""),
            "TE_TEST_REDIS_PORT is not set: run the suite with `make test`")
        try TestEnvironment.claim(redisDatabase: database)
        let redis = try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 1000)
        _ = try redis.command("SELECT", String(database))
        return redis
    }

    static func keys(_ redis: RedisConnection) throws -> [String] {
        guard case .array(let items) = try redis.command("KEYS", "te:*") else { return [] }
        let names = items.compactMap { if case .string(let b) = $0 { String(decoding: b, as: UTF8.self) } else { nil } }
        return names.filter {  // entries only
            !$0.contains(":idx:") && !$0.hasSuffix(":bytes") && !$0.hasSuffix(":keys") && !$0.hasSuffix(":quota")
                && !$0.hasSuffix(":quota:minutes") && !$0.hasSuffix(":fence") && !$0.hasSuffix(":nodes")
                && !$0.hasSuffix(":acks")
                && $0.range(of: #":v\d+$"#, options: .regularExpression) == nil
        }.sorted()
    }

    /// A node whose acme uses the `database` strategy (its own database `own`), the other tenants
    /// the shared one; both databases emptied first.
    static func withDatabaseTenant(
        shared sharedDatabase: Int, own ownDatabase: Int,
        _ body: (EdgeHarness, RedisConnection, RedisConnection) async throws -> Void
    ) async throws {
        let shared = try Self.admin(database: sharedDatabase)
        let own = try Self.admin(database: ownDatabase)
        _ = try shared.command("FLUSHDB")
        _ = try own.command("FLUSHDB")
        let port = try TestEnvironment.require("TE_TEST_REDIS_PORT")
        try await withEdge(
            configure: { config in
                config.cache.redis = .init(
                    url: "redis://127.0.0.1:\(port)/\(sharedDatabase)", poolSize: 2, timeoutMs: 1000)
                config.tenants[0].isolation = .database
                config.tenants[0].redisURL = "redis://127.0.0.1:\(port)/\(ownDatabase)"
            }, script: SharedTierTests.body
        ) { edge in try await body(edge, shared, own) }
    }

    @Test func databaseStrategyPutsTheTenantInItsOwnDatabaseAndRowInTheShared() async throws {
        try await Self.withDatabaseTenant(shared: 21, own: 22) { edge, shared, own in
            _ = try await edge.get("/d")
            _ = try await edge.get("/d", host: "api.globex.test")
            try await waitUntil(seconds: 5) { (try? Self.keys(own).count) == 1 && (try? Self.keys(shared).count) == 1 }
            #expect(try Self.keys(own).allSatisfy { $0.hasPrefix("te:acme:g0:") })
            #expect(try Self.keys(shared).allSatisfy { $0.hasPrefix("te:globex:g0:") })
        }
    }

    /// A `database` tenant removed from the tenant set: its own Redis stays up until its keys are
    /// gone, then the erasure is confirmed; the shared database keeps the other tenants' entries.
    @Test func aRemovedDatabaseTenantIsErasedFromItsOwnDatabaseAndConfirmed() async throws {
        try await Self.withDatabaseTenant(shared: 19, own: 20) { edge, shared, own in
            let confirmed = Locked<[String]>([])
            edge.runtime.observeErasures { tenant in confirmed.update { $0.append(tenant) } }
            for index in 0..<5 { _ = try await edge.get("/e/\(index)") }
            _ = try await edge.get("/e", host: "api.globex.test")
            try await waitUntil(seconds: 5) { (try? Self.keys(own).count) == 5 && (try? Self.keys(shared).count) == 1 }
            var next = edge.runtime.config
            next.tenants.removeAll { $0.id == "acme" }
            edge.runtime.activate(try edge.runtime.prepare(next, version: 2))
            try await waitUntil(seconds: 5) { confirmed.value == ["acme"] }
            let left = try Self.keys(own)
            #expect(left.isEmpty, "nothing of the removed tenant is left in its own database: \(left)")
            guard case .array(let all) = try own.command("KEYS", "te:acme:*") else { return }
            #expect(all == [.string(Array("te:acme:fence".utf8))], "only the fence, which expires: \(all)")
            #expect(try Self.keys(shared).count == 1, "the other tenants keep their entries")
            #expect(try await edge.get("/e", host: "api.globex.test").cacheStatus.contains("hit"))
        }
    }

    @Test func schemaStrategyIsEnforcedByRedisACLs() async throws {
        let admin = try Self.admin(database: 0)
        let port = ProcessInfo.processInfo.environment["TE_TEST_REDIS_PORT"]!
        let masterKey = try OpenSSL.randomBytes(32)
        for tenant in ["acme", "globex"] {
            let password = try StandaloneKeyring.redisACLPassword(masterKey: masterKey, tenant: tenant)
            #expect(
                try admin.command(RedisACL.setUserArguments(tenant: tenant, password: password).map { Array($0.utf8) })
                    == .status("OK"))
        }
        let configure: (inout EdgeConfig) -> Void = { config in
            config.cache.redis = .init(url: "redis://127.0.0.1:\(port)/0", poolSize: 2, timeoutMs: 1000)
            config.cache.isolationStrategy = .schema
        }
        let a = try await EdgeHarness.start(
            configure: configure, masterKey: masterKey, nodeID: "node-a", script: SharedTierTests.body)
        let b = try await EdgeHarness.start(
            configure: configure, masterKey: masterKey, nodeID: "node-b", script: SharedTierTests.body)
        do {
            _ = try await a.get("/schema")
            var fromL2 = try await b.get("/schema")
            for _ in 0..<20 where !fromL2.cacheStatus.contains("detail=l2") {
                try await Task.sleep(for: .milliseconds(50))
                fromL2 = try await b.get("/schema", host: "api.acme.test")
            }
            #expect(fromL2.body == "api.acme.test|/schema")
            #expect(a.upstream.count("/schema") == 1)
            // Redis itself refuses acme's user any key of globex.
            var acme = try #require(RedisEndpoint(parsing: "redis://127.0.0.1:\(port)/0"))
            acme.user = RedisACL.user(for: "acme")
            acme.password = try StandaloneKeyring.redisACLPassword(masterKey: masterKey, tenant: "acme")
            let connection = try RedisConnection.open(acme, timeoutMs: 1000)
            guard case .error(let refusal) = try connection.command("GET", "te:globex:gen") else {
                Issue.record("acme's Redis user read a key of globex")
                return
            }
            #expect(refusal.hasPrefix("NOPERM"))
            guard case .error = try connection.command("KEYS", "*") else {
                Issue.record("KEYS allowed")
                return
            }
            if case .error(let message) = try connection.command("GET", "te:acme:gen") {
                Issue.record("acme's Redis user cannot read its own keys: \(message)")
            }
            guard case .error = try connection.command([Array("SET".utf8), Array("te:globex:x".utf8), [1]]) else {
                Issue.record("acme's Redis user wrote a key of globex")
                return
            }
            // Everything the node does as the tenant's user is allowed it: purges by key and tag (their
            // scripts move and keep fences), the acknowledgement b writes, a write and a read after.
            _ = try admin.command("ACL", "LOG", "RESET")
            let purge = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/schema"]}"#)
            #expect(purge.status == 200)
            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","tags":["t1"]}"#)
            _ = try await a.get("/schema/2")
            _ = try await b.get("/schema/2")
            try await Task.sleep(for: .milliseconds(300))
            guard case .array(let denied) = try admin.command("ACL", "LOG") else {
                Issue.record("ACL LOG answered")
                return
            }
            #expect(denied.isEmpty, "Redis refused the tenant's user nothing: \(denied)")
        } catch {
            await a.shutdown()
            await b.shutdown()
            throw error
        }
        await a.shutdown()
        await b.shutdown()
    }

    @Test func databaseStrategyWithoutAURLIsAConfigError() {
        var config = EdgeConfig()
        config.security.masterKeyFile = "/tmp/master.key"
        config.tenants = [TenantConfig(id: "acme", hosts: ["api.acme.test"], upstream: "http://127.0.0.1:18080")]
        config.cache.redis = .init(url: "redis://127.0.0.1:6379/0")
        config.cache.isolationStrategy = .database
        #expect(config.validate().map(\.key) == ["tenants[0].redis_url"])
    }
}
