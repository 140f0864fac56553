import Testing

@testable import TenantEdgeCore

/// Issue 11: the pure parsers that take outside bytes, fed what an attacker would send. Each case
/// would have trapped, or keyed one resource several ways, before.
@Suite("Hostile parsing")
struct HostileParsingTests {
    @Test(
        "query strings never index past what is there",
        arguments: [
            ("=", [String: String]()), ("&&", [:]), ("=x", [:]), ("a", ["a": ""]), ("a=1&a=2", ["a": "1"]),
            ("a=%zz", ["a": "%zz"]), ("%61=b", ["a": "b"]), ("a==b", ["a": "=b"]),
        ])
    func queryStrings(_ text: String, _ expected: [String: String]) {
        #expect(QueryString.parse(Substring(text)) == expected)
    }

    @Test func queryStringSplit() {
        #expect(QueryString.split(target: "/a?b=1?c").path == "/a")
        #expect(QueryString.split(target: "/a?b=1?c").query == "b=1?c")
        #expect(QueryString.split(target: "/a").query == "")
    }

    @Test(
        "dates with absurd years are not dates",
        arguments: [
            "Sun, 06 Nov 1000000000000 08:49:37 GMT", "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun Nov  6 08:49:37 9223372036854775807",
            "Sun, 06 Nov 1994 999:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT", "Sun, 06 Nov 0 08:49:37 GMT",
        ])
    func absurdDates(_ text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test func formattingClampsInsteadOfTrapping() {
        #expect(HTTPDate.format(1e300) == "Fri, 31 Dec 9999 23:59:59 GMT")
        #expect(HTTPDate.format(.nan) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(-.infinity) == "Mon, 01 Jan 0001 00:00:00 GMT")
        #expect(
            HTTPDate.format(-60_000_000_000) == "Mon, 03 Sep 0068 13:20:00 GMT",
            "four-digit years, as IMF-fixdate requires")
        #expect(HTTPDate.parse("Sun, 17 Feb 079 2:59:60 GMT") == nil, "a three-digit year (found by make fuzz)")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
    }

    @Test func saturatingConversions() {
        #expect(Int.saturating(1e300) == .max)
        #expect(Int.saturating(-1e300) == .min)
        #expect(Int.saturating(.nan) == 0)
        #expect(Int.saturating(.infinity) == .max)
        #expect(Int.saturating(42.9) == 42)
        #expect(Int.saturatingSum(.max, 1) == .max)
        #expect(Int.saturatingSum(.min, -1) == .min)
    }

    @Test(
        "invalid or conflicting freshness is stale",
        arguments: [
            "max-age=-1", "max-age", "max-age=soon", "max-age=60, max-age=5", "s-maxage=-3",
        ])
    func invalidFreshness(_ header: String) {
        #expect(CacheControl(parsing: header).invalidFreshness)
        let decision = StoragePolicy.decide(
            requestHeaders: [], status: 200, responseHeaders: [HeaderField("Cache-Control", header)],
            responseTime: 1000, defaultTTL: 3600)
        #expect(decision == .doNotStore(reason: "stale-on-arrival"), "no validator: stale on arrival is not kept")
    }

    @Test func repeatedEqualMaxAgeIsFine() {
        #expect(!CacheControl(parsing: "max-age=60, max-age=60").invalidFreshness)
    }

    @Test func cookieRequestsAreStoredOnlyWhenExplicitlyPublic() {
        let cookie = [HeaderField("Cookie", "s=1")]
        let plain = StoragePolicy.decide(
            requestHeaders: cookie, status: 200, responseHeaders: [], responseTime: 0, defaultTTL: 60)
        #expect(plain == .doNotStore(reason: "cookie"))
        let optIn = StoragePolicy.decide(
            requestHeaders: cookie, status: 200, responseHeaders: [], responseTime: 0, defaultTTL: 60,
            sharesCookieRequests: true)
        guard case .store(let shared) = optIn else {
            Issue.record("opted in: stored")
            return
        }
        #expect(!shared.explicitlyPublic)
        let open = StoragePolicy.decide(
            requestHeaders: cookie, status: 200, responseHeaders: [HeaderField("Cache-Control", "public")],
            responseTime: 0, defaultTTL: 60)
        guard case .store(let lifetime) = open else {
            Issue.record("public: stored")
            return
        }
        #expect(lifetime.explicitlyPublic)
        #expect(StoragePolicy.mayServe(lifetime, requestHasCookie: true, tenantSharesCookies: false))
        #expect(!StoragePolicy.mayServe(shared, requestHasCookie: true, tenantSharesCookies: false))
    }

    @Test func hugeLifetimesAreClamped() {
        let decision = StoragePolicy.decide(
            requestHeaders: [], status: 200,
            responseHeaders: [
                HeaderField("Cache-Control", "max-age=99999999999999999999999"),
                HeaderField("Age", "99999999999999999999"),
            ],
            responseTime: 0, defaultTTL: 60)
        guard case .store(let lifetime) = decision else {
            Issue.record("stored")
            return
        }
        #expect(lifetime.freshness <= StoragePolicy.longestLifetime)
        #expect(lifetime.initialAge <= StoragePolicy.longestLifetime)
    }

    @Test func safeMethods() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE"] { #expect(StoragePolicy.isSafeMethod(method)) }
        for method in ["POST", "PUT", "DELETE", "PATCH", "PURGE"] { #expect(!StoragePolicy.isSafeMethod(method)) }
    }

    @Test(
        "targets in normal form",
        arguments: [
            ("/a/../b", "/b"), ("//b", "/b"), ("/%62", "/b"), ("/./b", "/b"), ("/b/", "/b/"), ("/", "/"), ("/..", "/"),
            ("/a/.", "/a/"), ("/%2e%2E/b", "/b"), ("/a%2fb", "/a%2Fb"), ("/a%2Fb?x=%62&y=/../", "/a%2Fb?x=%62&y=/../"),
            ("/a//b///c?q", "/a/b/c?q"), ("/~user/%7E", "/~user/~"),
        ])
    func normalForm(_ raw: String, _ normal: String) {
        #expect(RequestTarget.normalize(raw) == normal)
    }

    @Test(
        "the quick check never calls a target normal that normalisation would change",
        arguments: [
            "/a/../b", "//b", "/%62", "/./b", "/b/", "/", "/..", "/a/.", "/a/..?x", "/a..b/c", "/.well-known/x",
            "/a?b=/../", "/a/b",
        ])
    func quickCheck(_ target: String) {
        if RequestTarget.isNormal(target) { #expect(RequestTarget.normalize(target) == target) }
        // `accept` finds the same answer in the pass that checks the target's bytes.
        guard case .success(let accepted) = RequestTarget.accept(method: "GET", rawTarget: target) else {
            Issue.record("refused \(target)")
            return
        }
        #expect(accepted.isNormal == RequestTarget.isNormal(target), "\(target)")
    }

    @Test func brokenPercentEncodingIsRefused() {
        for raw in ["/%", "/%4", "/%zz", "/a%G1"] { #expect(RequestTarget.normalize(raw) == nil, "\(raw)") }
    }

    @Test func targetForms() {
        #expect(RequestTarget.accept(method: "CONNECT", rawTarget: "h:443") == .failure(.methodNotAllowed))
        for raw in ["@10.0.0.7:8500/x", "*", "x", "http://a@evil/x", "ftp://h/x", "/a b", "/a#frag", "/\u{7f}"] {
            guard case .failure(.badTarget) = RequestTarget.accept(method: "GET", rawTarget: raw) else {
                Issue.record("accepted \(raw)")
                continue
            }
        }
        #expect(
            RequestTarget.accept(method: "GET", rawTarget: "HTTP://Api.Acme.test:8080/x?y")
                == .success(.init(target: "/x?y", authority: "Api.Acme.test:8080", isNormal: true)))
        #expect(
            RequestTarget.accept(method: "GET", rawTarget: "http://api.acme.test?y")
                == .success(.init(target: "/?y", authority: "api.acme.test", isNormal: true)))
        #expect(
            RequestTarget.accept(method: "GET", rawTarget: "http://api.acme.test//a/../b")
                == .success(.init(target: "//a/../b", authority: "api.acme.test", isNormal: false)))
    }

    @Test(
        "hosts",
        arguments: [
            ("api.acme.test", true), ("api.acme.test.", true), ("API.acme.test:8080", true), ("[::1]:80", true),
            ("10.0.0.1", true),
            ("api.acme.test:1@evil.example", false), ("", false), ("a b", false), ("a:b:c", false), ("a:99999", false),
            ("a..b", false), (".a", false), ("[::1", false), ("[zz]", false), ("a:", false), ("a/b", false),
        ])
    func hosts(_ value: String, _ valid: Bool) {
        #expect(HostName.isValid(value) == valid)
    }

    @Test func forwardingHeadersFromAnUntrustedPeerAreReplaced() {
        var headers = [
            HeaderField("X-Forwarded-Host", "evil"), HeaderField("Forwarded", "for=1.1.1.1"),
            HeaderField("X-Original-URL", "/a"),
            HeaderField("X-Forwarded-For", "6.6.6.6"), HeaderField("Host", "api.acme.test.:1"),
        ]
        ForwardingHeaders.apply(to: &headers, peer: "10.0.0.9", peerIsTrusted: false, canonicalHost: "api.acme.test")
        #expect(headers.first("x-forwarded-for") == "10.0.0.9")
        #expect(headers.first("x-forwarded-host") == "api.acme.test")
        #expect(headers.first("host") == "api.acme.test")
        #expect(headers.first("x-forwarded-proto") == "http")
        #expect(!headers.contains("forwarded") && !headers.contains("x-original-url"))
        var trusted = [
            HeaderField("X-Forwarded-For", "1.2.3.4"), HeaderField("X-Forwarded-Proto", "https"),
            HeaderField("X-Rewrite-URL", "/x"),
            HeaderField("X-Forwarded-Host", "evil.example"), HeaderField("Forwarded", "host=evil.example"),
            HeaderField("X_Forwarded_Host", "evil.example"), HeaderField("X_Forwarded_For", "6.6.6.6"),
        ]
        ForwardingHeaders.apply(to: &trusted, peer: "10.0.0.9", peerIsTrusted: true, canonicalHost: "api.acme.test")
        #expect(trusted.first("x-forwarded-for") == "1.2.3.4, 10.0.0.9")
        #expect(trusted.first("x-forwarded-proto") == "https")
        #expect(
            trusted.first("x-forwarded-host") == "api.acme.test",
            "a trusted proxy passes its client's X-Forwarded-Host on")
        #expect(!trusted.contains("x-rewrite-url") && !trusted.contains("forwarded"))
        #expect(!trusted.contains("x_forwarded_host") && !trusted.contains("x_forwarded_for"))
    }

    @Test func deepPathsIndexABoundedNumberOfPrefixes() {
        let deep = String(repeating: "/", count: 16_000) + "x"
        #expect(TenantCache.prefixes(of: deep).count <= 2 * TenantCache.maxIndexedSegments + 2)
        #expect(TenantCache.prefixes(of: "/v1/a?x") == ["/", "/v1", "/v1/", "/v1/a", "/v1/a?x"])
    }

    @Test func surrogateKeysAreCapped() {
        let many = (0..<500).map { "t\($0)" }.joined(separator: " ")
        #expect(StoragePolicy.tags(from: [HeaderField("Surrogate-Key", many)]).count == StoragePolicy.maxTags)
    }

    @Test func l2ValuesWithAbsurdLifetimesAreMalformed() {
        let lifetime = StoragePolicy.Lifetime(
            freshness: 60, initialAge: 0, staleWhileRevalidate: 0, staleIfError: 0,
            hasValidator: false, keep: 60, explicitlyPublic: true)
        let entry = CacheEntry(sealed: [0, 0, 0, 1, 9, 9], responseTime: 1_700_000_000, lifetime: lifetime)
        var bytes = L2EntryCodec.encode(entry)
        #expect(L2EntryCodec.decode(bytes)?.lifetime == lifetime)
        let huge = (1e300).bitPattern
        // freshness
        for index in 0..<8 { bytes[17 + index] = UInt8(truncatingIfNeeded: huge >> UInt64(56 - 8 * index)) }
        #expect(L2EntryCodec.decode(bytes) == nil)
    }

    @Test func configValuesThatWouldOverflowAreRefused() {
        var config = ConfigValidationTests.base()
        config.cache.defaultTTLSeconds = .max
        config.limits.upstreamConnectTimeoutMs = .max
        config.limits.upstreamReadTimeoutMs = .max
        config.tenants.append(TenantConfig(id: "b", hosts: ["b.test"], upstream: "http://h"))
        config.tenants[0].quotaBytes = .max
        config.tenants[1].quotaBytes = .max
        let keys = Set(config.validate().map(\.key))
        #expect(
            keys.isSuperset(of: [
                "cache.default_ttl_s", "limits.upstream_connect_timeout_ms", "limits.upstream_read_timeout_ms",
                "tenants[0].quota_bytes", "tenants",
            ]))
        _ = config.effectiveQuotas()  // must not trap on the sum
    }
}

@Suite("Hostile control-plane input")
struct HostileControlPlaneTests {
    @Test func purgeBodiesAreBounded() {
        let many = (0..<257).map { "\"/\($0)\"" }.joined(separator: ",")
        #expect(throws: EdgeError.self) { try PurgeRequest(json: Array(#"{"tenant":"a","keys":[\#(many)]}"#.utf8)) }
        let long = String(repeating: "x", count: 8193)
        #expect(throws: EdgeError.self) {
            try PurgeRequest(json: Array(#"{"tenant":"a","prefixes":["\#(long)"]}"#.utf8))
        }
        #expect(throws: EdgeError.self) { try PurgeRequest(json: [UInt8](repeating: 0x20, count: (256 << 10) + 1)) }
        let fine = (0..<256).map { "\"/\($0)\"" }.joined(separator: ",")
        #expect(throws: Never.self) { try PurgeRequest(json: Array(#"{"tenant":"a","keys":[\#(fine)]}"#.utf8)) }
    }

    static func event(_ seq: Int, bytes: Int) -> InvalidationEvent {
        InvalidationEvent(
            seq: seq, purge: PurgeRequest(tenant: "t", keys: [String(repeating: "k", count: bytes)]), publishedAt: "")
    }

    @Test func theWindowKeepsWithinItsByteBudget() {
        var window = InvalidationWindow(retention: 1000, byteBudget: 10_000)
        for seq in 1...50 { window.append(Self.event(seq, bytes: 1000)) }
        #expect(window.retainedBytes <= 10_000)
        #expect(window.head == 50)
        #expect(window.read(after: 1, limit: 10) == .expired(head: 50), "old events left the window")
        guard case .events(let recent, _) = window.read(after: window.oldest - 1, limit: 1000) else {
            Issue.record("readable")
            return
        }
        #expect(recent.last?.seq == 50)
    }

    @Test func answersAreCappedByBytesButNeverEmpty() {
        var window = InvalidationWindow(retention: 1000)
        for seq in 1...10 { window.append(Self.event(seq, bytes: 5000)) }
        guard case .events(let some, _) = window.read(after: 0, limit: 1000, maxBytes: 12_000) else {
            Issue.record("events")
            return
        }
        #expect(some.map(\.seq) == [1, 2])
        guard case .events(let one, _) = window.read(after: 0, limit: 1000, maxBytes: 10) else {
            Issue.record("events")
            return
        }
        #expect(one.map(\.seq) == [1], "the first event always goes, however large")
    }

    @Test func securityEventsAreThrottledPerKind() {
        var throttle = SecurityEventThrottle(linesPerWindow: 3, windowSeconds: 60)
        let first = (0..<10).map { _ in throttle.admit(kind: "auth_failed", now: 100) }
        #expect(first.filter { $0 != .suppress }.count == 3)
        #expect(throttle.admit(kind: "decrypt_failed", now: 100) == .write(suppressed: 0), "kinds are counted apart")
        #expect(throttle.admit(kind: "auth_failed", now: 161) == .write(suppressed: 7))
        #expect(throttle.admit(kind: "auth_failed", now: 162) == .write(suppressed: 0))
    }
}

@Suite("Targets under an upstream base path")
struct BasePathTests {
    @Test(
        "targets that could leave the base path",
        arguments: [
            "/../b/x", "/a/..;/b", "/..%2Fb", "/a%2fb", "/a%5Cb", "/%2e%2e/b", "/./x", "/.%2e/x",
        ])
    func leaving(_ target: String) {
        #expect(!RequestTarget.staysUnderBasePath(target))
    }

    @Test func ordinaryTargetsStay() {
        for target in ["/a/b", "/a..b/c", "/a/.well-known/x", "/x?y=../..%2F"] {
            #expect(RequestTarget.staysUnderBasePath(target), "\(target)")
        }
    }

    @Test func backslashIsNoTargetCharacter() {
        guard case .failure(.badTarget) = RequestTarget.accept(method: "GET", rawTarget: "/a\\..\\b") else {
            Issue.record("a backslash was accepted")
            return
        }
    }
}
