import Testing

@testable import TenantEdgeCore

@Suite("RFC 9111 storage policy")
struct StoragePolicyTests {
    static let now = 1_700_000_000.0

    static func decide(
        _ response: [(String, String)], status: Int = 200, request: [(String, String)] = [], ttl: Double = 300
    )
        -> StoragePolicy.Decision
    {
        StoragePolicy.decide(
            requestHeaders: request.map { HeaderField($0.0, $0.1) }, status: status,
            responseHeaders: response.map { HeaderField($0.0, $0.1) }, responseTime: now, defaultTTL: ttl)
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var response: [(String, String)]
        var status: Int = 200
        var request: [(String, String)] = []
        var reason: String
        var testDescription: String { reason }
    }

    @Test(
        "responses that must not be stored",
        arguments: [
            Refusal(response: [("Cache-Control", "no-store, max-age=60")], reason: "no-store"),
            Refusal(response: [("Cache-Control", "private, max-age=60")], reason: "private"),
            Refusal(response: [("Cache-Control", "max-age=60"), ("Set-Cookie", "a=b")], reason: "set-cookie"),
            Refusal(
                response: [("Cache-Control", "max-age=60")], request: [("Authorization", "Bearer x")],
                reason: "authorization"),
            Refusal(response: [("Cache-Control", "max-age=60"), ("Vary", "Accept, *")], reason: "vary-star"),
            Refusal(response: [("Cache-Control", "max-age=60")], status: 206, reason: "status"),
            Refusal(response: [], status: 500, reason: "status"),
            Refusal(response: [("Cache-Control", "max-age=0")], reason: "stale-on-arrival"),
            Refusal(response: [("Cache-Control", "no-cache")], reason: "stale-on-arrival"),
        ])
    func refusesToStore(_ refusal: Refusal) {
        #expect(
            Self.decide(refusal.response, status: refusal.status, request: refusal.request)
                == .doNotStore(reason: refusal.reason))
    }

    @Test func authorizationIsStoredWhenResponseAllowsSharedCaching() {
        for directive in ["public, max-age=60", "s-maxage=60", "must-revalidate, max-age=60"] {
            guard case .store = Self.decide([("Cache-Control", directive)], request: [("Authorization", "Bearer x")])
            else {
                Issue.record("\(directive) with Authorization should be stored")
                continue
            }
        }
    }

    @Test func sMaxAgeWinsOverMaxAgeAndForbidsStaleServing() throws {
        guard
            case .store(let life) = Self.decide([
                ("Cache-Control", "max-age=10, s-maxage=99, stale-while-revalidate=30")
            ])
        else {
            Issue.record("not stored")
            return
        }
        #expect(life.freshness == 99)
        #expect(life.staleWhileRevalidate == 0)
    }

    @Test func expiresGivesFreshnessRelativeToDate() {
        let response = [("Date", HTTPDate.format(Self.now - 10)), ("Expires", HTTPDate.format(Self.now + 50))]
        guard case .store(let life) = Self.decide(response) else {
            Issue.record("not stored")
            return
        }
        #expect(life.freshness == 60)
        #expect(life.initialAge == 10)
    }

    @Test func invalidExpiresMeansAlreadyStale() {
        #expect(Self.decide([("Expires", "0")]) == .doNotStore(reason: "stale-on-arrival"))
    }

    @Test func defaultTTLAppliesOnlyWithoutExplicitFreshness() {
        guard case .store(let life) = Self.decide([], ttl: 123) else {
            Issue.record("not stored")
            return
        }
        #expect(life.freshness == 123)
        guard case .store(let explicit) = Self.decide([("Cache-Control", "max-age=7")], ttl: 123) else {
            Issue.record("no")
            return
        }
        #expect(explicit.freshness == 7)
    }

    @Test func validatorKeepsNoCacheAndMaxAgeZeroResponsesForRevalidation() {
        for directive in ["no-cache", "max-age=0"] {
            guard case .store(let life) = Self.decide([("Cache-Control", directive), ("ETag", "\"v1\"")]) else {
                Issue.record("\(directive) with ETag should be kept")
                continue
            }
            #expect(life.freshness == 0)
            #expect(life.hasValidator)
            #expect(life.keep > 0)
        }
    }

    @Test func staleWindowsComeFromDirectivesUnlessRevalidationIsRequired() {
        guard
            case .store(let life) = Self.decide([
                ("Cache-Control", "max-age=10, stale-while-revalidate=20, stale-if-error=300")
            ])
        else {
            Issue.record("not stored")
            return
        }
        #expect(life.staleWhileRevalidate == 20)
        #expect(life.staleIfError == 300)
        #expect(life.keep == 310)
        guard
            case .store(let strict) = Self.decide([("Cache-Control", "max-age=10, must-revalidate, stale-if-error=300")]
            )
        else {
            Issue.record("not stored")
            return
        }
        #expect(strict.staleIfError == 0)
    }

    @Test func ageHeaderIsCountedAgainstFreshness() {
        guard case .store(let life) = Self.decide([("Cache-Control", "max-age=60"), ("Age", "25")]) else {
            Issue.record("no")
            return
        }
        #expect(life.initialAge == 25)
    }

    @Test func surrogateKeysAndVaryNamesAreNormalised() {
        #expect(StoragePolicy.tags(from: [HeaderField("Surrogate-Key", "a b  a c")]) == ["a", "b", "c"])
        #expect(
            StoragePolicy.varyNames(from: [
                HeaderField("Vary", "Accept-Language, accept"), HeaderField("vary", "Accept"),
            ])
                == ["accept", "accept-language"])
    }

    @Test func onlyGetAndHeadAreCacheable() {
        #expect(StoragePolicy.isCacheableMethod("GET"))
        #expect(StoragePolicy.isCacheableMethod("HEAD"))
        #expect(!StoragePolicy.isCacheableMethod("POST"))
        #expect(!StoragePolicy.isCacheableMethod("DELETE"))
    }
}

@Suite("Cache-Control, HTTP dates and entry freshness")
struct HeaderParsingTests {
    @Test func parsesDirectivesCaseInsensitivelyWithQuotes() {
        let control = CacheControl(
            parsing: "Public, MAX-AGE=\"60\", s-maxage=x, no-cache=\"Set-Cookie\", stale-if-error=5")
        #expect(control.isPublic)
        #expect(control.maxAge == 60)
        #expect(control.sMaxAge == nil)
        #expect(control.noCache)
        #expect(control.staleIfError == 5)
    }

    @Test func headerNamesCompareUpToASCIICaseOnly() {
        #expect("Content-Length".caseInsensitiveEquals("content-length"))
        #expect("HOST".caseInsensitiveEquals("host"))
        #expect(!"host".caseInsensitiveEquals("hosts"))
        #expect(!"hos".caseInsensitiveEquals("host"))
        #expect(!"Hest".caseInsensitiveEquals("host"))
        #expect(!"[".caseInsensitiveEquals("{"))  // 0x5B and 0x7B differ by the case bit but are no letters
        #expect(!"É".caseInsensitiveEquals("é"))  // ASCII only, as HTTP field names are
        #expect("".caseInsensitiveEquals(""))
        let long = String(repeating: "X-Custom-", count: 20)
        #expect(long.caseInsensitiveEquals(long.lowercased()))
        #expect(!long.caseInsensitiveEquals(long.lowercased().dropLast() + "!"))
    }

    @Test func sameUTF8IsByteEqualityNotCanonicalEquivalence() {
        let composed = "/caf\u{E9}"
        let decomposed = "/cafe\u{301}"
        #expect(composed == decomposed, "Swift's == says these are one string")
        #expect(!composed.hasSameUTF8(as: decomposed))
        #expect(composed.hasSameUTF8(as: "/caf\u{E9}"))
        #expect(!"/a".hasSameUTF8(as: "/ab"))
        #expect("".hasSameUTF8(as: ""))
    }

    @Test func httpDatesRoundTripAndAcceptObsoleteForms() {
        let imf = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(HTTPDate.parse(imf) == 784_111_777)
        #expect(HTTPDate.format(784_111_777) == imf)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("yesterday") == nil)
    }

    @Test func entryMovesFromFreshToStaleWindowsToExpired() {
        let lifetime = StoragePolicy.Lifetime(
            freshness: 10, initialAge: 0, staleWhileRevalidate: 5, staleIfError: 20,
            hasValidator: false, keep: 30)
        let entry = CacheEntry(sealed: [], responseTime: 100, lifetime: lifetime)
        #expect(entry.freshness(at: 105) == .fresh(remaining: 5))
        #expect(entry.freshness(at: 112) == .staleWhileRevalidate)
        #expect(entry.freshness(at: 120) == .stale(servableOnError: true))
        #expect(entry.freshness(at: 131) == .expired)
        #expect(!entry.servableOnError(at: 131))
    }

    @Test func cacheStatusHeaderValuesFollowRFC9211() {
        #expect(CacheStatus.hit(ttl: 5).headerValue(cacheName: "n") == "n; hit; ttl=5")
        #expect(CacheStatus.miss(stored: true, detail: nil).headerValue(cacheName: "n") == "n; fwd=miss; stored")
        #expect(
            CacheStatus.revalidated(fwdStatus: 304, stored: true).headerValue(cacheName: "n")
                == "n; fwd=stale; fwd-status=304; stored")
        #expect(
            CacheStatus.bypass(detail: "residency").headerValue(cacheName: "n") == "n; fwd=bypass; detail=residency")
    }
}
