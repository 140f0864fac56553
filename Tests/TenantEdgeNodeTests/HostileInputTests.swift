import Foundation
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// Issue 11: what one hostile request (or a hostile upstream) does to a running node, each sent
/// over real sockets to a node in front of a real upstream. Every test ends by checking the node
/// still answers, since a trap would have taken the whole process (and this test run) down.
@Suite("Hostile input", .serialized)
struct HostileInputTests {
    static func reply(_ headers: [(String, String)], body: String = "body", status: Int = 200) -> TestUpstream.Reply {
        TestUpstream.Reply(status: status, headers: headers, body: body)
    }

    static func stillServes(_ edge: EdgeHarness) async throws {
        let health = try await edge.admin(.GET, "/healthz", token: nil)
        #expect(health.status == 200)
    }

    @Test func emptyQueryPairsOnTheAdminAPIAreRefusedNotATrap() async throws {
        try await withEdge(script: { _ in Self.reply([]) }) { edge in
            for query in ["?=", "?&&=&", "?=x&ip", "?ip=&tenant="] {
                let answer = try await edge.admin(.GET, "/_edge/route" + query)
                #expect(answer.status == 400, "\(query)")
            }
            let first = try await edge.admin(.GET, "/_edge/route?tenant=acme&tenant=globex&=&ip=1.2.3.4")
            #expect(first.status == 200, "the first of a repeated name counts")
            try await Self.stillServes(edge)
        }
    }

    @Test func upstreamDatesFarInTheFutureDoNotOverflow() async throws {
        try await withEdge(script: { request in
            switch request.uri {
            case "/date": return Self.reply([("Date", "Sun, 06 Nov 1000000000000 08:49:37 GMT")])
            case "/expires": return Self.reply([("Expires", "Sun, 06 Nov 999999999999 08:49:37 GMT")])
            case "/age":
                return Self.reply([
                    ("Age", "99999999999999999999999"), ("Cache-Control", "max-age=99999999999999999999"),
                ])
            default:
                return Self.reply([("Cache-Control", "max-age=9223372036854775807, stale-if-error=9223372036854775807")]
                )
            }
        }) { edge in
            for path in ["/date", "/expires", "/age", "/max"] {
                let first = try await edge.get(path)
                #expect(first.status == 200, "\(path)")
                edge.clock.advance(by: 1)
                _ = try await edge.get(path)
            }
            #expect(edge.upstream.count("/expires") == 2, "an Expires that is not a date is in the past")
            try await Self.stillServes(edge)
        }
    }

    @Test func hostMustBeOneValidHostAndTheUpstreamSeesTheCanonicalOne() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }) { edge in
            let port = edge.node.trafficPort
            let twoHosts = try await RawHTTP.exchange(
                port: port, "GET /x HTTP/1.1\r\nHost: api.acme.test\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
            #expect(twoHosts.hasPrefix("HTTP/1.1 400"))
            let userinfo = try await RawHTTP.exchange(
                port: port, "GET /x HTTP/1.1\r\nHost: api.acme.test:1@evil.example\r\nConnection: close\r\n\r\n")
            #expect(userinfo.hasPrefix("HTTP/1.1 400"))
            let noHost = try await RawHTTP.exchange(port: port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
            #expect(noHost.hasPrefix("HTTP/1.1 400"))
            let dotted = try await edge.get("/y", host: "API.acme.test.:8080")
            #expect(dotted.status == 200)
            let seen = try #require(edge.upstream.requests("/y").first)
            #expect(seen.header("host") == "api.acme.test")
            #expect(seen.header("x-forwarded-host") == "api.acme.test")
            #expect(edge.upstream.requests("/x").isEmpty, "nothing refused reached the upstream")
        }
    }

    @Test func varyOnHostSeesTheCanonicalHostOnly() async throws {
        try await withEdge(script: { request in
            Self.reply([("Cache-Control", "max-age=60"), ("Vary", "Host")], body: request.header("host") ?? "?")
        }) { edge in
            for host in ["api.acme.test", "API.acme.test:8080", "api.acme.test.", "Api.Acme.Test:1"] {
                let answer = try await edge.get("/v", host: host)
                #expect(answer.body == "api.acme.test")
            }
            #expect(edge.upstream.count("/v") == 1, "one variant, whatever Host the clients sent")
        }
    }

    @Test func forwardingHeadersFromAClientNeverReachTheUpstream() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }) { edge in
            _ = try await edge.get(
                "/fw",
                headers: [
                    ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "gopher"),
                    ("X-Forwarded-Scheme", "nope"),
                    ("X-Original-URL", "/admin"), ("X-Rewrite-URL", "/admin"), ("Forwarded", "host=evil.example"),
                    ("X-Forwarded-For", "6.6.6.6"), ("X-HTTP-Method-Override", "DELETE"),
                ])
            let seen = try #require(edge.upstream.requests("/fw").first)
            #expect(seen.header("x-forwarded-host") == "api.acme.test")
            #expect(seen.header("x-forwarded-proto") == "http")
            #expect(seen.header("x-forwarded-for") == "127.0.0.1")
            for name in [
                "x-forwarded-scheme", "x-original-url", "x-rewrite-url", "forwarded", "x-http-method-override",
            ] {
                #expect(seen.header(name) == nil, "\(name) was forwarded")
            }
        }
    }

    @Test func onlyOriginFormTargetsReachTheUpstream() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }) { edge in
            let port = edge.node.trafficPort
            let authority = try await RawHTTP.exchange(
                port: port, "GET @127.0.0.1:9/x HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
            #expect(authority.hasPrefix("HTTP/1.1 400"))
            let connect = try await RawHTTP.exchange(
                port: port, "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
            #expect(connect.hasPrefix("HTTP/1.1 405") || connect.hasPrefix("HTTP/1.1 400"))
            let trace = try await RawHTTP.exchange(
                port: port, "TRACE /t HTTP/1.1\r\nHost: api.acme.test\r\nCookie: s=1\r\nConnection: close\r\n\r\n")
            #expect(trace.hasPrefix("HTTP/1.1 405"))
            let absolute = try await RawHTTP.exchange(
                port: port, "GET http://api.acme.test/abs?q=1 HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n")
            #expect(absolute.hasPrefix("HTTP/1.1 200"))
            #expect(edge.upstream.count("/abs?q=1") == 1)
            #expect(edge.upstream.requests().allSatisfy { $0.uri.hasPrefix("/") })
        }
    }

    @Test func equivalentPathsAreOneKeyAndOnePurge() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")], body: "b") }) { edge in
            for path in ["/a/../b", "//b", "/%62", "/./b", "/b"] { _ = try await edge.get(path) }
            #expect(edge.upstream.count("/b") == 1, "one fetch for every spelling of /b")
            #expect(edge.upstream.requests().count == 1)
            let purged = try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/a/../b"]}"#)
            #expect(purged.body.hasPrefix(#"{"purged":1,"id":"#))
            #expect(try await edge.get("//b").cacheStatus.contains("fwd=miss"))
            let broken = try await RawHTTP.exchange(
                port: edge.node.trafficPort, "GET /%zz HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
            #expect(broken.hasPrefix("HTTP/1.1 400"))
        }
    }

    @Test func rawPathsWhenTheTenantTurnsNormalisationOff() async throws {
        try await withEdge(
            configure: { $0.tenants[0].normalizePath = false },
            script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }
        ) { edge in
            _ = try await edge.get("//raw")
            #expect(edge.upstream.count("//raw") == 1)
        }
    }

    @Test func aTenantWithABasePathCannotLeaveIt() async throws {
        try await withEdge(
            configure: { config in
                config.tenants[0].upstream += "/tenant-a"
                config.tenants[0].normalizePath = false
            }, script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }
        ) { edge in
            for target in ["/../tenant-b/private", "/..%2Ftenant-b/private", "/x/..;/..;/tenant-b"] {
                let answer = try await RawHTTP.exchange(
                    port: edge.node.trafficPort,
                    "GET \(target) HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(target)")
            }
            #expect(try await edge.get("/fine").status == 200)
            #expect(edge.upstream.requests().map(\.uri) == ["/tenant-a/fine"])
        }
    }

    @Test func headersNamedInConnectionDoNotSelectAVariant() async throws {
        try await withEdge(script: { request in
            Self.reply(
                [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                body: request.header("accept-language") ?? "default")
        }) { edge in
            let hidden = try await edge.get(
                "/v", headers: [("Accept-Language", "fr"), ("Connection", "accept-language")])
            #expect(hidden.body == "default")
            let french = try await edge.get("/v", headers: [("Accept-Language", "fr")])
            #expect(french.body == "fr", "the default answer was not stored as the French variant")
        }
    }

    @Test func cookieRequestsAreNotSharedUnlessTheAnswerIsPublic() async throws {
        try await withEdge(script: { request in
            request.uri == "/public" ? Self.reply([("Cache-Control", "public, max-age=60")]) : Self.reply([])
        }) { edge in
            _ = try await edge.get("/plain", headers: [("Cookie", "user=alice")])
            let second = try await edge.get("/plain", headers: [("Cookie", "user=bob")])
            #expect(second.cacheStatus.contains("fwd=miss"))
            #expect(edge.upstream.count("/plain") == 2, "alice's answer was not stored for bob")
            _ = try await edge.get("/public", headers: [("Cookie", "user=alice")])
            #expect(try await edge.get("/public", headers: [("Cookie", "user=bob")]).cacheStatus.contains("hit"))
        }
    }

    @Test func invalidMaxAgeMeansStale() async throws {
        try await withEdge(script: { request in
            request.uri == "/neg"
                ? Self.reply([("Cache-Control", "max-age=-1")])
                : Self.reply([("Cache-Control", "max-age=60, max-age=5")])
        }) { edge in
            _ = try await edge.get("/neg")
            _ = try await edge.get("/neg")
            #expect(edge.upstream.count("/neg") == 2)
            _ = try await edge.get("/twice")
            _ = try await edge.get("/twice")
            #expect(edge.upstream.count("/twice") == 2)
        }
    }

    @Test func safeMethodsDoNotInvalidate() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }) { edge in
            _ = try await edge.get("/keep")
            _ = try await edge.request(.OPTIONS, "/keep")
            #expect(try await edge.get("/keep").cacheStatus.contains("hit"))
            _ = try await edge.request(.POST, "/keep", body: "x")
            #expect(try await edge.get("/keep").cacheStatus.contains("fwd=miss"), "an unsafe method still invalidates")
        }
    }

    @Test func upstreamErrorsDoNotRevealTheUpstream() async throws {
        try await withEdge(
            configure: { $0.tenants[0].upstream = "http://127.0.0.1:9" },
            script: { _ in Self.reply([]) }
        ) { edge in
            let failed = try await edge.get("/down")
            #expect(failed.status == 502)
            #expect(!failed.body.contains("127.0.0.1"))
            #expect(!failed.body.contains(":9"))
        }
    }

    @Test func longTargetsAndDeepPathsAreBounded() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")]) }) { edge in
            let port = edge.node.trafficPort
            let long = try await RawHTTP.exchange(
                port: port, "GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: api.acme.test\r\n\r\n")
            #expect(long.hasPrefix("HTTP/1.1 414"))
            let deep = "/" + Array(repeating: "s", count: 3000).joined(separator: "/")
            #expect(try await edge.get(deep).status == 200)
            let occupancy = try #require(edge.runtime.caches["acme"]).occupancy()
            #expect(occupancy.entries == 1)
            #expect(occupancy.bytes < 64 << 10, "the index of one deep path is bounded and charged")
        }
    }

    @Test func adminAuthenticatesBeforeReadingAndLogsNoAttackerString() async throws {
        try await withEdge(script: { _ in Self.reply([]) }) { edge in
            let marker = "ATTACKER" + String(repeating: "x", count: 200_000)
            let answer = try await edge.admin(
                .POST, "/_edge/purge", token: "wrong",
                body: #"{"tenant":"\#(marker)","all":true}"#)
            #expect(answer.status == 401)
            edge.runtime.audit.flush()
            let audit = try String(contentsOfFile: edge.directory.path + "/audit.jsonl", encoding: .utf8)
            #expect(audit.contains("auth_failed"))
            #expect(!audit.contains("ATTACKER"))
        }
    }

    @Test func tenantScopedTokensStayInTheirTenant() async throws {
        try await withEdge(script: { _ in Self.reply([]) }) { edge in
            let token = EdgeHarness.acmeReadToken
            #expect(try await edge.admin(.GET, "/_edge/route?ip=1.2.3.4&tenant=acme", token: token).status == 200)
            #expect(try await edge.admin(.GET, "/_edge/route?ip=1.2.3.4&tenant=globex", token: token).status == 400)
            let push = try await edge.admin(.PUT, "/_edge/config", token: token, body: "{}")
            #expect(push.status == 403, "a bundle changes every tenant")
            _ = try await edge.get("/m", host: "api.globex.test")
            let metrics = try await edge.admin(.GET, "/metrics", token: token)
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("tenant=\"acme\""))
            #expect(!metrics.body.contains("tenant=\"globex\""))
            let everyone = try await edge.admin(.GET, "/metrics", token: EdgeHarness.adminToken)
            #expect(everyone.body.contains("tenant=\"globex\""))
        }
    }
}

/// Issue 11, item 6: a collapsed waiter never gets what belongs to the leader.
@Suite("Collapsed waiters", .serialized)
struct CollapsedWaiterTests {
    @Test func aRevalidationThatSetsACookieIsNotHandedToWaiters() async throws {
        let cookies = Locked(0)
        try await withEdge(script: { request in
            guard request.header("if-none-match") != nil else {
                return TestUpstream.Reply(headers: [("Cache-Control", "max-age=1"), ("ETag", "\"v1\"")], body: "doc")
            }
            // The revalidation answers 304 with a cookie for whoever asked: slow, so a second client joins it.
            let number = cookies.modify { value -> Int in
                value += 1
                return value
            }
            return TestUpstream.Reply(
                status: 304, headers: [("Set-Cookie", "session=\(number)"), ("ETag", "\"v1\"")],
                delayMs: 300)
        }) { edge in
            _ = try await edge.get("/doc")
            edge.clock.advance(by: 5)
            async let first = edge.get("/doc")
            try await Task.sleep(for: .milliseconds(50))
            async let second = edge.get("/doc")
            let (a, b) = try await (first, second)
            let cookieA = a.headers.first(name: "set-cookie")
            let cookieB = b.headers.first(name: "set-cookie")
            #expect(cookieA != nil && cookieB != nil)
            #expect(cookieA != cookieB, "each client got its own revalidation's cookie, not the leader's")
            #expect(cookies.value == 2)
        }
    }

    @Test func aSharedTierHitOfAnotherVariantIsNotHandedToWaiters() async throws {
        let url = try TestEnvironment.redisURL(database: 18)
        let masterKey = try OpenSSL.randomBytes(32)
        let script: TestUpstream.Script = { request in
            TestUpstream.Reply(
                headers: [("Cache-Control", "max-age=300"), ("Vary", "Accept-Language")],
                body: request.header("accept-language") ?? "none", delayMs: 300)
        }
        let configure: (inout EdgeConfig) -> Void = { $0.cache.redis = .init(url: url, poolSize: 2, timeoutMs: 500) }
        let a = try await EdgeHarness.start(
            configure: configure, masterKey: masterKey, nodeID: "node-a", script: script)
        let b = try await EdgeHarness.start(
            configure: configure, masterKey: masterKey, nodeID: "node-b", script: script)
        do {
            _ = try await a.get("/page", headers: [("Accept-Language", "fr")])  // L2 holds the French variant
            try await Task.sleep(for: .milliseconds(200))
            async let french = b.get("/page", headers: [("Accept-Language", "fr")])
            async let german = b.get("/page", headers: [("Accept-Language", "de")])
            let (fr, de) = try await (french, german)
            #expect(fr.body == "fr")
            #expect(de.body == "de", "the German client did not get the French variant from L2")
        } catch {
            Issue.record("\(error)")
        }
        await a.shutdown()
        await b.shutdown()
    }
}
