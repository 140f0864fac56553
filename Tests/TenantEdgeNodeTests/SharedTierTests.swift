import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// L2 on the real redis-server: the one `make test` started (each test in a database of its own),
/// or one the test starts and kills itself.
@Suite("Shared tier (L2) on Redis", .serialized)
struct SharedTierTests {
    /// Tagged `all-items`, except paths under `/untagged/`.
    static let body: TestUpstream.Script = { request in
        let tags = request.uri.hasPrefix("/untagged/") ? [] : [("Surrogate-Key", "all-items")]
        return TestUpstream.Reply(
            headers: [("Cache-Control", "max-age=300")] + tags, body: "\(request.header("host") ?? "?")|\(request.uri)")
    }

    static func redisURL(database: Int, file: String = #fileID) throws -> String {
        try TestEnvironment.redisURL(database: database, file: file)
    }

    /// Two nodes sharing one Redis: the suite's (in `database`), or `url` when a test brings its own.
    static func withTwoNodes(
        database: Int, url: String? = nil, timeoutMs: Int = 1000, file: String = #fileID,
        _ body: (EdgeHarness, EdgeHarness, RedisConnection) async throws -> Void
    ) async throws {
        let url = try url ?? redisURL(database: database, file: file)
        let endpoint = try #require(RedisEndpoint(parsing: url))
        let redis = try RedisConnection.open(endpoint, timeoutMs: 1000)
        try await EdgeHarness.withTwoNodes(
            configure: { $0.cache.redis = .init(url: url, poolSize: 4, timeoutMs: timeoutMs) }, script: Self.body
        ) { a, b in try await body(a, b, redis) }
    }

    static func storedKey(_ edge: EdgeHarness, tenant: String, target: String, generation: Int = 0) -> String {
        "te:\(tenant):g\(generation):\(edge.runtime.caches[tenant]!.primaryDigest(target: target).base64URL)"
    }

    /// An L2 hit leaves as an L1 hit does (the stored header block as it is): the upstream's fields
    /// reach the client, and a matching `If-None-Match` is a `304` with no body.
    @Test func anL2HitCarriesTheStoredFieldsAndAnswersAConditionalRequest() async throws {
        let tagged: TestUpstream.Script = { request in
            TestUpstream.Reply(
                headers: [("Cache-Control", "max-age=300"), ("ETag", "\"v7\""), ("X-Upstream-Field", "kept")],
                body: "body of \(request.uri)")
        }
        let url = try Self.redisURL(database: 5)
        try await EdgeHarness.withTwoNodes(
            configure: { $0.cache.redis = .init(url: url, poolSize: 1, timeoutMs: 1000) }, script: tagged
        ) { a, b in
            let redis = try RedisConnection.open(try #require(RedisEndpoint(parsing: url)), timeoutMs: 1000)
            _ = try await a.get("/etag/1")
            _ = try await a.get("/etag/2")
            for target in ["/etag/1", "/etag/2"] {
                let key = Self.storedKey(a, tenant: "acme", target: target)
                try await waitUntil { (try? redis.command("EXISTS", key)) == .integer(1) }
            }
            let plain = try await b.get("/etag/1")
            #expect(plain.cacheStatus.hasSuffix("detail=l2"))
            #expect(plain.status == 200 && plain.body == "body of /etag/1")
            #expect(plain.headers.first(name: "x-upstream-field") == "kept")
            #expect(plain.headers.first(name: "etag") == "\"v7\"")
            let conditional = try await b.get("/etag/2", headers: [("If-None-Match", "W/\"v7\"")])
            #expect(conditional.cacheStatus.hasSuffix("detail=l2"), "\(conditional.cacheStatus)")
            #expect(conditional.status == 304 && conditional.body.isEmpty)
            #expect(b.upstream.requests().isEmpty, "both from L2")
        }
    }

    @Test func aMissOnOneNodeIsAnL2HitOnItsSibling() async throws {
        try await Self.withTwoNodes(database: 1) { a, b, redis in
            let first = try await a.get("/v1/shared?x=1")
            #expect(first.cacheStatus == "node-a; fwd=miss; stored")
            let key = Self.storedKey(a, tenant: "acme", target: "/v1/shared?x=1")
            try await waitUntil { (try? redis.command("EXISTS", key)) == .integer(1) }
            let fromL2 = try await b.get("/v1/shared?x=1")
            #expect(fromL2.body == "api.acme.test|/v1/shared?x=1")
            #expect(fromL2.cacheStatus.hasPrefix("node-b; hit; ttl="))
            #expect(fromL2.cacheStatus.hasSuffix("detail=l2"))
            #expect(b.upstream.requests().isEmpty)
            let fromL1 = try await b.get("/v1/shared?x=1")
            #expect(!fromL1.cacheStatus.contains("detail=l2"), "promoted to B's L1")
            guard case .string(let raw) = try redis.command("GET", key) else {
                Issue.record("no value in Redis")
                return
            }
            #expect(!String(decoding: raw, as: UTF8.self).contains("/v1/shared"), "no URL or body in clear in Redis")
            guard case .integer(let ttl) = try redis.command("TTL", key) else {
                Issue.record("no TTL")
                return
            }
            #expect((290...300).contains(ttl), "Redis expires the entry with its storable lifetime")
            let stats = try await b.admin(.GET, "/_edge/stats")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])
            let tier = try #require((json["tiers"] as? [String: Any])?["redis"] as? [String: Any])
            #expect(tier["up"] as? Bool == true)
            #expect(tier["hits"] as? Int == 1)
            #expect((tier["bytes_read"] as? Int ?? 0) == raw.count)
            #expect((tier["calls"] as? Int ?? 0) >= 1)
            guard case .array(let keys) = try redis.command("KEYS", "*") else {
                Issue.record("KEYS")
                return
            }
            for case .string(let name) in keys { #expect(!String(decoding: name, as: UTF8.self).contains("shared")) }
        }
    }

    @Test func varyingResponsesAreSharedPerVariantAndPurgedTogether() async throws {
        let url = try Self.redisURL(database: 7)
        let masterKey = try OpenSSL.randomBytes(32)
        let script: TestUpstream.Script = { request in
            TestUpstream.Reply(
                headers: [("Cache-Control", "max-age=300"), ("Vary", "Accept-Language")],
                body: "lang=\(request.header("accept-language") ?? "-")")
        }
        let configure: (inout EdgeConfig) -> Void = { $0.cache.redis = .init(url: url, poolSize: 2, timeoutMs: 1000) }
        let a = try await EdgeHarness.start(
            configure: configure, masterKey: masterKey, nodeID: "node-a", script: script)
        let b = try await EdgeHarness.start(
            configure: configure, masterKey: masterKey, nodeID: "node-b", script: script)
        let redis = try RedisConnection.open(try #require(RedisEndpoint(parsing: url)), timeoutMs: 1000)
        do {
            _ = try await a.get("/v", headers: [("Accept-Language", "en")])
            _ = try await a.get("/v", headers: [("Accept-Language", "de")])
            let cache = try #require(a.runtime.caches["acme"])
            func variantKey(_ language: String) -> String {
                let digest = cache.variantDigest(
                    target: "/v", varyNames: ["accept-language"],
                    requestHeaders: [HeaderField("Accept-Language", language)])
                return "te:acme:g0:\(digest.base64URL)"
            }
            try await waitUntil { (try? redis.command("EXISTS", variantKey("en"), variantKey("de"))) == .integer(2) }
            let en = try await b.get("/v", headers: [("Accept-Language", "en")])
            let de = try await b.get("/v", headers: [("Accept-Language", "de")])
            #expect(en.body == "lang=en" && en.cacheStatus.hasSuffix("detail=l2"))
            #expect(de.body == "lang=de" && de.cacheStatus.hasSuffix("detail=l2"))
            let fr = try await b.get("/v", headers: [("Accept-Language", "fr")])
            #expect(fr.body == "lang=fr" && fr.cacheStatus.contains("fwd=miss"))
            #expect(b.upstream.count("/v") == 1, "only the variant nobody had fetched")
            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/v"]}"#)
            #expect(
                try redis.command("EXISTS", variantKey("en"), variantKey("de"), variantKey("fr")) == .integer(0),
                "a purge by key removes every variant from L2")
        } catch {
            await a.shutdown()
            await b.shutdown()
            throw error
        }
        await a.shutdown()
        await b.shutdown()
    }

    @Test func aValueMovedToAnotherTenantsKeyDoesNotOpen() async throws {
        try await Self.withTwoNodes(database: 2) { a, b, redis in
            _ = try await a.get("/moved")
            let acmeKey = Self.storedKey(a, tenant: "acme", target: "/moved")
            try await waitUntil { (try? redis.command("EXISTS", acmeKey)) == .integer(1) }
            guard case .string(let value) = try redis.command("GET", acmeKey) else {
                Issue.record("no value")
                return
            }
            let globexKey = Self.storedKey(a, tenant: "globex", target: "/moved")
            _ = try redis.command([Array("SET".utf8), Array(globexKey.utf8), value])
            let response = try await b.get("/moved", host: "api.globex.test")
            #expect(response.body == "api.globex.test|/moved", "globex never sees acme's body")
            #expect(response.cacheStatus.contains("fwd=miss"))
            #expect(b.runtime.events.count.load(ordering: .relaxed) == 1)
        }
    }

    @Test func purgeReachesL2ByKeyTagPrefixAndAll() async throws {
        try await Self.withTwoNodes(database: 3) { a, b, redis in
            let paths = ["/p/1", "/p/2", "/untagged/x", "/untagged/y", "/q/z"]
            for path in paths { _ = try await a.get(path) }
            let keys = paths.map { Self.storedKey(a, tenant: "acme", target: $0) }
            func exists(_ key: String) -> Bool { (try? redis.command("EXISTS", key)) == .integer(1) }
            try await waitUntil { keys.allSatisfy(exists) }
            let byKey = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/p/1"]}"#)
            #expect(byKey.body.hasPrefix(#"{"purged":2,"id":"#), "one entry in L1, one in L2")
            #expect(!exists(keys[0]))
            #expect(try await b.get("/p/1").cacheStatus.contains("fwd=miss"))
            let byTag = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","tags":["all-items"]}"#)
            #expect(byTag.status == 200)
            #expect(
                paths.indices.map { exists(keys[$0]) } == [false, false, true, true, false],
                "every tagged entry went (also /p/1, which b had just stored again), untagged ones stayed")
            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","prefixes":["/untagged/"]}"#)
            #expect(!exists(keys[2]) && !exists(keys[3]))
            #expect(try redis.command("GET", "te:acme:gen") == .null, "no generation drop for keys, tags or prefixes")
            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#)
            #expect(try redis.command("GET", "te:acme:gen") == .string(Array("1".utf8)))
            let globex = try await a.get("/p/1", host: "api.globex.test")
            #expect(globex.cacheStatus.contains("fwd=miss"))
        }
    }

    @Test func aPurgeThatCannotReachRedisIsAppliedWhenRedisAnswersAgain() async throws {
        let own = try RedisProcess()  // CLIENT PAUSE stops every client of a server: use one of our own
        try await Self.withTwoNodes(database: 0, url: "redis://127.0.0.1:\(own.port)/0") { a, b, redis in
            _ = try await a.get("/outage")
            let key = Self.storedKey(a, tenant: "acme", target: "/outage")
            try await waitUntil { (try? redis.command("EXISTS", key)) == .integer(1) }
            _ = try redis.command("CLIENT", "PAUSE", "1500", "ALL")  // Redis stops answering, keeping its data
            let purge = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/outage"]}"#)
            #expect(purge.body.hasPrefix(#"{"purged":1,"id":"#), "L1 purged now; L2 could not be reached")
            #expect(a.runtime.l2(for: "acme")?.isUntrusted("acme") == true)
            for _ in 0..<100 where a.runtime.l2(for: "acme")?.isUntrusted("acme") == true {
                a.clock.advance(by: 31)  // lets the breaker probe again
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(a.runtime.l2(for: "acme")?.isUntrusted("acme") == false)
            // At least one drop: retries that timed out during the pause may still run in Redis afterwards,
            // and each extra INCR only purges the tenant again.
            guard case .string(let generation) = try redis.command("GET", "te:acme:gen"),
                let dropped = Int(String(decoding: generation, as: UTF8.self))
            else {
                Issue.record("the queued purge did not become a generation drop")
                return
            }
            #expect(dropped >= 1)
            let fromB = try await b.get("/outage")
            #expect(fromB.cacheStatus.contains("fwd=miss"), "the sibling does not get the purged entry from L2")
        }
    }

    @Test func redisKilledMidLoadGivesNo5xxAndTheNodeReturnsToL2() async throws {
        let redis = try RedisProcess()
        let edge = try await EdgeHarness.start(
            configure: { $0.cache.redis = .init(url: "redis://127.0.0.1:\(redis.port)/0", poolSize: 4, timeoutMs: 50) },
            script: Self.body)
        do {
            for n in 0..<20 { _ = try await edge.get("/k/\(n)") }
            let failures = Locked(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<300 {
                    if n == 100 { redis.kill() }
                    group.addTask {
                        let response = try await edge.get("/k/\(n % 60)")
                        if response.status >= 500 { failures.update { $0 += 1 } }
                    }
                }
                try await group.waitForAll()
            }
            #expect(failures.value == 0)
            let down = try await edge.admin(.GET, "/metrics")
            #expect(down.body.contains(#"edge_tier_up{tier="redis"} 0"#))
            try redis.start()
            var up = down
            var acmeUp = false
            for attempt in 0..<50 {
                edge.clock.advance(by: 31)  // past the longest breaker backoff
                _ = try await edge.get("/recover/\(attempt)")
                // The metric is every tier's state (`l2IsUp`), not only acme's: a tier acme's traffic
                // has not yet brought back read 0 in one run of the whole suite. The wait ends on
                // the scrape itself: in a run on 12-08 the state read up and the scrape right after
                // it read 0 (a tier can go down again after it came back, say on a connection made
                // before the restart).
                up = try await edge.admin(.GET, "/metrics")
                acmeUp = edge.runtime.l2(for: "acme")?.isUp == true
                if acmeUp, up.body.contains(#"edge_tier_up{tier="redis"} 1"#) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(acmeUp, "acme's tier came back")
            #expect(up.body.contains(#"edge_tier_up{tier="redis"} 1"#))
        } catch {
            await edge.shutdown()
            throw error
        }
        await edge.shutdown()
    }

    @Test func aRedisThatNeverAnswersDoesNotStallRequestsBeyondTheTimeout() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // accepts, never answers
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = silent.localAddress!.port!
        try await withEdge(
            configure: { $0.cache.redis = .init(url: "redis://127.0.0.1:\(port)/0", poolSize: 2, timeoutMs: 50) },
            script: Self.body
        ) { edge in
            // Each call is settled by its own timer: a request that waited on Redis would never end.
            for n in 0..<10 {
                let response = try await edge.get("/silent/\(n)")
                #expect(response.status == 200)
            }
            let tiers = edge.runtime.allL2Tiers
            let calls = tiers.reduce(0) { $0 + $1.counters.calls.load(ordering: .relaxed) }
            let errors = tiers.reduce(0) { $0 + $1.counters.errors.load(ordering: .relaxed) }
            #expect(calls > 0 && errors == calls, "every call Redis was sent ended by the timeout, none by an answer")
        }
        try await silent.close()
    }
}
