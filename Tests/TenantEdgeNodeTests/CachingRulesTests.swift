import Foundation
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// One test per RFC 9111 rule the traffic listener applies, each through real sockets: client → edge node
/// → test upstream, with the node's clock moved by the test instead of sleeping.
@Suite("Caching rules over HTTP", .serialized)
struct CachingRulesTests {
    static func reply(_ headers: [(String, String)], body: String = "body", status: Int = 200) -> TestUpstream.Reply {
        TestUpstream.Reply(status: status, headers: headers, body: body)
    }

    @Test func missIsStoredThenHitWithAgeAndRegion() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")], body: "one") }) { edge in
            let first = try await edge.get("/v1/a?x=1")
            #expect(first.status == 200)
            #expect(first.body == "one")
            #expect(first.cacheStatus == "test-a; fwd=miss; stored")
            #expect(first.headers.first(name: "x-edge-region") == "eu-west")
            edge.clock.advance(by: 10)
            let second = try await edge.get("/v1/a?x=1")
            #expect(second.body == "one")
            #expect(second.cacheStatus == "test-a; hit; ttl=50")
            #expect(second.headers.first(name: "age") == "10")
            #expect(edge.upstream.count("/v1/a?x=1") == 1)
        }
    }

    @Test func sMaxAgeOverridesMaxAgeAndExpiresIsHonoured() async throws {
        try await withEdge(script: { request in
            if request.uri == "/expires" {
                let now = Date().timeIntervalSince1970
                return Self.reply([("Date", HTTPDate.format(now)), ("Expires", HTTPDate.format(now + 30))])
            }
            return Self.reply([("Cache-Control", "max-age=5, s-maxage=100")])
        }) { edge in
            // Expires first: the upstream's Date is real time, and the node's clock has not moved yet.
            _ = try await edge.get("/expires")
            edge.clock.advance(by: 10)
            #expect(try await edge.get("/expires").cacheStatus.contains("hit"))
            edge.clock.advance(by: 30)
            #expect(try await edge.get("/expires").cacheStatus.contains("fwd=miss"))
            #expect(edge.upstream.count("/expires") == 2)
            _ = try await edge.get("/s")
            edge.clock.advance(by: 50)
            #expect(try await edge.get("/s").cacheStatus.contains("hit"), "s-maxage=100 wins over max-age=5")
        }
    }

    @Test(
        "responses that are never stored",
        arguments: [
            ("/no-store", [("Cache-Control", "no-store")], [(String, String)]()),
            ("/private", [("Cache-Control", "private, max-age=60")], []),
            ("/cookie", [("Cache-Control", "max-age=60"), ("Set-Cookie", "session=1")], []),
            ("/auth", [("Cache-Control", "max-age=60")], [("Authorization", "Bearer user")]),
        ])
    func notStored(_ path: String, _ responseHeaders: [(String, String)], _ requestHeaders: [(String, String)])
        async throws
    {
        try await withEdge(script: { _ in Self.reply(responseHeaders) }) { edge in
            let first = try await edge.get(path, headers: requestHeaders)
            #expect(first.status == 200)
            #expect(first.cacheStatus.hasPrefix("test-a; fwd=miss"))
            #expect(!first.cacheStatus.contains("stored"))
            _ = try await edge.get(path, headers: requestHeaders)
            #expect(edge.upstream.count(path) == 2)
        }
    }

    @Test func authorizationResponseMarkedPublicIsStored() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "public, max-age=60")]) }) { edge in
            _ = try await edge.get("/p", headers: [("Authorization", "Bearer u")])
            #expect(try await edge.get("/p", headers: [("Authorization", "Bearer u")]).cacheStatus.contains("hit"))
            #expect(edge.upstream.count("/p") == 1)
        }
    }

    @Test func staleEntryWithETagIsRevalidatedAndA304RefreshesIt() async throws {
        try await withEdge(script: { request in
            if request.header("if-none-match") == "\"v1\"" {
                return Self.reply([("ETag", "\"v1\""), ("Cache-Control", "max-age=60")], status: 304)
            }
            return Self.reply([("ETag", "\"v1\""), ("Cache-Control", "max-age=60")], body: "payload")
        }) { edge in
            _ = try await edge.get("/e")
            edge.clock.advance(by: 61)
            let revalidated = try await edge.get("/e")
            #expect(revalidated.body == "payload")
            #expect(revalidated.cacheStatus == "test-a; fwd=stale; fwd-status=304; stored")
            #expect(edge.upstream.requests("/e").last?.header("if-none-match") == "\"v1\"")
            let hit = try await edge.get("/e")
            #expect(hit.cacheStatus.contains("hit"), "the 304 made the entry fresh again")
            #expect(edge.upstream.count("/e") == 2)
        }
    }

    /// A 304 usually carries only its validators: the stored tags stay (or follow the tags the 304
    /// names), and the entry is fresh again. Before, a tagged entry refreshed by a 304 without
    /// `Surrogate-Key` was never stored again and every request after went to the upstream.
    @Test func a304KeepsTheStoredTagsOrTakesTheOnesItNames() async throws {
        try await withEdge(script: { request in
            let renamed = request.uri.hasPrefix("/renamed")
            if request.header("if-none-match") == "\"v1\"" {
                let tags: [(String, String)] = renamed ? [("Surrogate-Key", "new-tag")] : []
                return Self.reply([("ETag", "\"v1\""), ("Cache-Control", "max-age=60")] + tags, status: 304)
            }
            return Self.reply(
                [("ETag", "\"v1\""), ("Cache-Control", "max-age=60"), ("Surrogate-Key", "old-tag")], body: "tagged")
        }) { edge in
            for path in ["/kept", "/renamed"] { _ = try await edge.get(path) }
            edge.clock.advance(by: 61)
            for path in ["/kept", "/renamed"] {
                #expect(try await edge.get(path).cacheStatus.hasSuffix("fwd-status=304; stored"))
            }
            #expect(try await edge.get("/kept").cacheStatus.contains("hit"), "fresh again after the 304")
            #expect(try await edge.get("/renamed").cacheStatus.contains("hit"))
            #expect(edge.upstream.count("/kept") == 2)
            let old = try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","tags":["old-tag"]}"#)
            #expect(old.body.hasPrefix(#"{"purged":1,"id":"#), "only /kept still carries the tag it was stored with")
            #expect(try await edge.get("/kept").cacheStatus.contains("fwd=miss"))
            let new = try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","tags":["new-tag"]}"#)
            #expect(new.body.hasPrefix(#"{"purged":1,"id":"#))
            #expect(try await edge.get("/renamed").cacheStatus.contains("fwd=miss"))
        }
    }

    @Test func lastModifiedIsUsedForRevalidation() async throws {
        let modified = "Sun, 06 Nov 1994 08:49:37 GMT"
        try await withEdge(script: { request in
            if request.header("if-modified-since") == modified {
                return Self.reply([("Cache-Control", "max-age=10")], status: 304)
            }
            return Self.reply([("Last-Modified", modified), ("Cache-Control", "max-age=10")], body: "lm")
        }) { edge in
            _ = try await edge.get("/lm")
            edge.clock.advance(by: 11)
            let response = try await edge.get("/lm")
            #expect(response.body == "lm")
            #expect(response.cacheStatus.contains("fwd-status=304"))
        }
    }

    @Test(
        "no-cache and max-age=0 with a validator are kept and revalidated on every use",
        arguments: ["no-cache", "max-age=0"])
    func alwaysRevalidated(_ directive: String) async throws {
        try await withEdge(script: { request in
            if request.header("if-none-match") == "\"n\"" {
                return Self.reply([("ETag", "\"n\""), ("Cache-Control", directive)], status: 304)
            }
            return Self.reply([("ETag", "\"n\""), ("Cache-Control", directive)], body: "fresh-each-time")
        }) { edge in
            let first = try await edge.get("/nc")
            #expect(first.cacheStatus == "test-a; fwd=miss; stored")
            let second = try await edge.get("/nc")
            #expect(second.body == "fresh-each-time")
            #expect(second.cacheStatus.contains("fwd-status=304"))
            #expect(edge.upstream.requests("/nc").map { $0.header("if-none-match") } == [nil, "\"n\""])
        }
    }

    @Test func varyKeepsOneVariantPerRequestHeaderValue() async throws {
        try await withEdge(script: { request in
            Self.reply(
                [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                body: "lang=\(request.header("accept-language") ?? "-")")
        }) { edge in
            #expect(try await edge.get("/v", headers: [("Accept-Language", "en")]).body == "lang=en")
            #expect(try await edge.get("/v", headers: [("Accept-Language", "de")]).body == "lang=de")
            let en = try await edge.get("/v", headers: [("Accept-Language", "en")])
            #expect(en.body == "lang=en")
            #expect(en.cacheStatus.contains("hit"))
            let de = try await edge.get("/v", headers: [("Accept-Language", "de")])
            #expect(de.body == "lang=de")
            #expect(de.cacheStatus.contains("hit"))
            #expect(edge.upstream.count("/v") == 2)
        }
    }

    /// Fields a client names in `Connection` are hop-by-hop: they select no stored variant and do not
    /// go upstream, however many names the client lists (removed in one pass, decision 76).
    @Test func fieldsNamedInConnectionSelectNoVariant() async throws {
        try await withEdge(script: { request in
            Self.reply(
                [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                body: "lang=\(request.header("accept-language") ?? "-")")
        }) { edge in
            #expect(try await edge.get("/h").body == "lang=-")
            let named = try await edge.get(
                "/h", headers: [("Accept-Language", "fr"), ("Connection", "Accept-Language")])
            #expect(named.body == "lang=-" && named.cacheStatus.contains("hit"))
            let many = (0..<2000).map { "x-\($0 % 50)" }.joined(separator: ",") + ", ACCEPT-LANGUAGE"
            let crowded = try await edge.get("/h", headers: [("Accept-Language", "de"), ("Connection", many)])
            #expect(crowded.body == "lang=-" && crowded.cacheStatus.contains("hit"))
            let plain = try await edge.get("/h", headers: [("Accept-Language", "de")])
            #expect(plain.body == "lang=de", "without Connection naming it, the field selects its variant")
            #expect(edge.upstream.count("/h") == 2)
        }
    }

    @Test func staleWhileRevalidateServesStaleAndRefreshesOnceInBackground() async throws {
        let version = VersionCounter()
        try await withEdge(script: { _ in
            Self.reply([("Cache-Control", "max-age=10, stale-while-revalidate=60")], body: "v\(version.next())")
        }) { edge in
            #expect(try await edge.get("/swr").body == "v1")
            edge.clock.advance(by: 20)
            let stale = try await edge.get("/swr")
            #expect(stale.body == "v1")
            #expect(stale.cacheStatus.contains("detail=stale-while-revalidate"))
            try await waitUntil { edge.upstream.count("/swr") == 2 }
            try await waitUntil { try await edge.get("/swr").body == "v2" }
            #expect(edge.upstream.count("/swr") == 2)
        }
    }

    @Test func staleIfErrorCoversUpstream5xxWithinItsWindowOnly() async throws {
        let failing = Flag()
        try await withEdge(script: { _ in
            failing.isSet
                ? Self.reply([], body: "broken", status: 503)
                : Self.reply([("Cache-Control", "max-age=10, stale-if-error=100")], body: "good")
        }) { edge in
            _ = try await edge.get("/sie")
            failing.set()
            edge.clock.advance(by: 50)
            let covered = try await edge.get("/sie")
            #expect(covered.status == 200)
            #expect(covered.body == "good")
            #expect(covered.cacheStatus.contains("fwd-status=503; ttl=-40; detail=stale-if-error"))
            edge.clock.advance(by: 100)
            let exposed = try await edge.get("/sie")
            #expect(exposed.status == 503)
            #expect(exposed.body == "broken")
        }
    }

    @Test func staleIfErrorCoversAnUnreachableUpstreamAndOtherwiseA502() async throws {
        try await withEdge(script: { _ in
            Self.reply([("Cache-Control", "max-age=10, stale-if-error=100")], body: "kept")
        }) { edge in
            _ = try await edge.get("/down")
            edge.upstream.refuseConnections()
            edge.clock.advance(by: 20)
            let covered = try await edge.get("/down")
            #expect(covered.body == "kept")
            #expect(covered.cacheStatus.contains("detail=stale-if-error"))
            let never = try await edge.get("/never-cached")
            #expect(never.status == 502)
            #expect(never.headers.first(name: "content-type") == "application/json")
            #expect(never.body.contains("\"error\":\"upstream_unavailable\""))
        }
    }

    @Test func slowUpstreamGivesA504() async throws {
        try await withEdge(
            configure: { $0.limits.upstreamReadTimeoutMs = 200 },
            script: { _ in TestUpstream.Reply(headers: [], body: "late", delayMs: 1500) }
        ) { edge in
            let response = try await edge.get("/slow")
            #expect(response.status == 504)
            #expect(response.body.contains("upstream_timeout"))
        }
    }

    @Test func surrogateKeysBecomeTagsAndAreStripped() async throws {
        try await withEdge(script: { _ in
            Self.reply([("Cache-Control", "max-age=60"), ("Surrogate-Key", "product-1 list")])
        }) { edge in
            let response = try await edge.get("/tagged")
            #expect(response.headers.first(name: "surrogate-key") == nil)
            _ = try await edge.get("/other")
            let purge = try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","tags":["product-1"]}"#)
            #expect(purge.body.hasPrefix(#"{"purged":2,"id":"#))
            #expect(try await edge.get("/tagged").cacheStatus.contains("fwd=miss"))
        }
    }

    @Test func headIsAnsweredFromTheCacheWithoutABody() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60")], body: "0123456789") }) { edge in
            _ = try await edge.get("/h")
            let head = try await edge.request(.HEAD, "/h")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.headers.first(name: "content-length") == "10")
            #expect(head.cacheStatus.contains("hit"))
        }
    }

    @Test func matchingIfNoneMatchOnAHitGetsA304() async throws {
        try await withEdge(script: { _ in Self.reply([("Cache-Control", "max-age=60"), ("ETag", "\"abc\"")]) }) {
            edge in
            _ = try await edge.get("/c")
            let response = try await edge.get("/c", headers: [("If-None-Match", "W/\"abc\"")])
            #expect(response.status == 304)
            #expect(response.body.isEmpty)
        }
    }

    @Test func unsafeMethodsAreForwardedAndInvalidateTheirTarget() async throws {
        let script: TestUpstream.Script = { request in
            Self.reply([("Cache-Control", "max-age=60")], body: "\(request.method)")
        }
        try await withEdge(script: script) { edge in
            _ = try await edge.get("/item")
            let post = try await edge.request(.POST, "/item", body: "{}")
            #expect(post.body == "POST")
            #expect(post.cacheStatus == "test-a; fwd=method")
            #expect(try await edge.get("/item").cacheStatus.contains("fwd=miss"))
            #expect(edge.upstream.requests("/item").map(\.method) == ["GET", "POST", "GET"])
        }
    }

    /// A purge that runs while a fetch is at the upstream: the fetch's answer goes to its client
    /// (asked before the purge) but is not kept, since it may be what the purge meant to remove. The
    /// race an attacker's review found: L1 had no check on insert, where L2's write script has the fence.
    @Test func anAnswerFetchedAcrossAPurgeIsServedButNotKept() async throws {
        let slow = Locked(true)
        try await withEdge(script: { _ in
            TestUpstream.Reply(
                headers: [("Cache-Control", "max-age=60")], body: "v-\(UUID().uuidString.prefix(8))",
                delayMs: slow.value ? 600 : 0)
        }) { edge in
            async let inFlight = edge.get("/race")
            try await waitUntil(seconds: 5) { edge.upstream.count("/race") == 1 }  // the fetch is at the upstream
            let purge = try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/race"]}"#)
            #expect(purge.status == 200)
            let first = try await inFlight
            #expect(first.status == 200)
            #expect(first.cacheStatus.contains("detail=purged-during-fetch"), "\(first.cacheStatus)")
            slow.update { $0 = false }
            let next = try await edge.get("/race")
            #expect(next.cacheStatus.contains("fwd=miss"), "not kept across the purge: \(next.cacheStatus)")
            #expect(next.body != first.body)
            #expect(try await edge.get("/race").cacheStatus.contains("hit"), "an answer fetched after it is kept")
        }
    }
}
