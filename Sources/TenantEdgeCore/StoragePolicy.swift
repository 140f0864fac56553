/// RFC 9111 storage rules for a shared cache, as the interface (section 3) narrows them:
/// whether a response may be stored, and for how long it is fresh, servable stale, and kept.
public enum StoragePolicy {
    /// Statuses a cache may store without explicit freshness (RFC 9110 15.1), less 206: partial
    /// content is never stored here.
    public static let heuristicallyCacheable: Set<Int> = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

    /// Whether a request may be answered from the cache at all. Other methods are forwarded and,
    /// when they are unsafe and succeed, invalidate the stored entries of their target (RFC 9111 4.4).
    public static func isCacheableMethod(_ method: String) -> Bool { method == "GET" || method == "HEAD" }

    /// Safe methods (RFC 9110 9.2.1) never invalidate: an `OPTIONS` or `TRACE` must not let any
    /// client empty a cached entry.
    public static func isSafeMethod(_ method: String) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE"
    }

    /// Whether a request with `Cookie` may be answered from an entry: only from one whose response
    /// said it is for everyone (`public` or `s-maxage`), unless the tenant opted in
    /// (`share_cookie_requests`). A cookie usually selects a user; the shared copy is someone else's.
    public static func mayServe(_ lifetime: Lifetime, requestHasCookie: Bool, tenantSharesCookies: Bool) -> Bool {
        !requestHasCookie || tenantSharesCookies || lifetime.explicitlyPublic
    }

    /// How long a response stays useful once stored, or why it is not stored.
    public enum Decision: Sendable, Equatable {
        case store(Lifetime)
        case doNotStore(reason: String)
    }

    public struct Lifetime: Sendable, Equatable {
        /// Seconds the response is fresh from when it was generated.
        public var freshness: Double
        /// Seconds of age already on the response when it arrived (`Age`, or `Date` in the past).
        public var initialAge: Double
        /// Stale window served while a background refresh runs; 0 when revalidation is mandatory.
        public var staleWhileRevalidate: Double
        /// Stale window served when the upstream fails; 0 when revalidation is mandatory.
        public var staleIfError: Double
        /// Seconds (of age) after which the entry is dropped: freshness plus the longest stale
        /// window, and at least `validatorGrace` past freshness when a validator makes keeping it useful.
        public var keep: Double
        /// A validator is present, so a stale copy can be refreshed by a conditional request.
        public var hasValidator: Bool
        /// The response said it may be shared (`public` or `s-maxage`), so it may answer requests
        /// that carry a `Cookie`.
        public var explicitlyPublic: Bool = false

        public init(
            freshness: Double, initialAge: Double, staleWhileRevalidate: Double, staleIfError: Double,
            hasValidator: Bool, keep: Double, explicitlyPublic: Bool = false
        ) {
            self.freshness = freshness
            self.initialAge = initialAge
            self.staleWhileRevalidate = staleWhileRevalidate
            self.staleIfError = staleIfError
            self.hasValidator = hasValidator
            self.keep = keep
            self.explicitlyPublic = explicitlyPublic
        }
    }

    /// Longest freshness, stale window or age taken from a response (about 68 years): values
    /// beyond it are clamped, so no lifetime can overflow arithmetic further on.
    public static let longestLifetime: Double = 2_147_483_648

    /// Decides storage for a response to a GET (HEAD misses are fetched as GET).
    /// - Parameters:
    ///   - requestHeaders: the client's request, for `Authorization`.
    ///   - responseTime: when the response arrived (the clock's `now()`).
    ///   - defaultTTL: freshness for cacheable statuses that state none (the tenant's `default_ttl_s`).
    ///   - sharesCookieRequests: the tenant opted in to storing answers to requests with `Cookie`.
    public static func decide(
        requestHeaders: [HeaderField],
        status: Int,
        responseHeaders: [HeaderField],
        responseTime: Double,
        defaultTTL: Double,
        sharesCookieRequests: Bool = false
    ) -> Decision {
        let control = CacheControl(parsing: responseHeaders.combined("cache-control"))
        if control.noStore { return .doNotStore(reason: "no-store") }
        if control.isPrivate { return .doNotStore(reason: "private") }
        if responseHeaders.contains("set-cookie") { return .doNotStore(reason: "set-cookie") }
        if status == 206 || status < 200 { return .doNotStore(reason: "status") }
        if let vary = responseHeaders.combined("vary"),
            vary.split(separator: ",").contains(where: { $0.trimmingSpaces() == "*" })
        {
            return .doNotStore(reason: "vary-star")
        }
        if requestHeaders.contains("authorization")
            && !(control.isPublic || control.sMaxAge != nil || control.mustRevalidate)
        {
            return .doNotStore(reason: "authorization")
        }
        let explicitlyPublic = control.isPublic || control.sMaxAge != nil
        if requestHeaders.contains("cookie") && !explicitlyPublic && !sharesCookieRequests {
            return .doNotStore(reason: "cookie")
        }

        let date = responseHeaders.first("date").flatMap(HTTPDate.parse)
        let explicit: Double?
        if control.invalidFreshness {
            explicit = 0  // RFC 9111 4.2.1: an invalid or conflicting freshness directive means stale
        } else if let sMaxAge = control.sMaxAge {
            explicit = Double(sMaxAge)
        } else if let maxAge = control.maxAge {
            explicit = Double(maxAge)
        } else if let expiresText = responseHeaders.first("expires") {
            let expires = HTTPDate.parse(expiresText) ?? 0
            explicit = max(0, expires - (date ?? responseTime))
        } else {
            explicit = nil
        }
        guard explicit != nil || heuristicallyCacheable.contains(status) || control.isPublic else {
            return .doNotStore(reason: "status")
        }
        var freshness = min(explicit ?? defaultTTL, longestLifetime)
        if control.noCache { freshness = 0 }

        let hasValidator = responseHeaders.contains("etag") || responseHeaders.contains("last-modified")
        // s-maxage implies proxy-revalidate (RFC 9111 5.2.2.10): no stale serving of any kind.
        let revalidate = control.mustRevalidate || control.proxyRevalidate || control.sMaxAge != nil || control.noCache
        let swr = revalidate ? 0 : Double(control.staleWhileRevalidate ?? 0)
        let sie = revalidate ? 0 : Double(control.staleIfError ?? 0)
        if freshness <= 0 && !hasValidator && swr == 0 && sie == 0 {
            return .doNotStore(reason: "stale-on-arrival")
        }

        let ageHeader = responseHeaders.first("age").flatMap { CacheControl.deltaSeconds($0.trimmingSpaces()) } ?? 0
        let apparentAge = max(0, responseTime - (date ?? responseTime))
        let initialAge = min(max(Double(ageHeader), apparentAge), longestLifetime)
        let validatorGrace = hasValidator ? min(max(defaultTTL, 60), longestLifetime) : 0
        let keep = freshness + max(swr, sie, validatorGrace)
        return .store(
            Lifetime(
                freshness: freshness, initialAge: initialAge, staleWhileRevalidate: swr, staleIfError: sie,
                hasValidator: hasValidator, keep: keep, explicitlyPublic: explicitlyPublic))
    }

    /// Most Surrogate-Key tags indexed for one response (Fastly's limit is about the same): each is an
    /// index entry in both tiers, and an upstream must not make one response cost unbounded memory.
    public static let maxTags = 64

    /// Surrogate-Key tags: space-separated, duplicates dropped, at most `maxTags` (the first ones).
    public static func tags(from headers: [HeaderField]) -> [String] {
        guard let value = headers.combined("surrogate-key") else { return [] }
        var seen = Set<String>()
        var tags: [String] = []
        for tag in value.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) where tags.count < maxTags {
            if seen.insert(String(tag)).inserted { tags.append(String(tag)) }
        }
        return tags
    }

    /// Lower-cased request header names in `Vary`, sorted so equal sets compare equal.
    public static func varyNames(from headers: [HeaderField]) -> [String] {
        guard let value = headers.combined("vary") else { return [] }
        return Set(value.split(separator: ",").map { $0.trimmingSpaces().lowercased() }).filter { !$0.isEmpty }.sorted()
    }
}
