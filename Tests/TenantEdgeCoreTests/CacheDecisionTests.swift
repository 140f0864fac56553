import Testing

@testable import TenantEdgeCore

/// The cache's RFC 9111 decisions as tables: what a stored entry allows at a given age, and what
/// the upstream's answer leads to.
@Suite("Cache decisions")
struct CacheDecisionTests {
    /// Fresh for 60 s, then 30 s of stale-while-revalidate, stale-if-error up to 120 s, kept 300 s.
    static let lifetime = StoragePolicy.Lifetime(
        freshness: 60, initialAge: 0, staleWhileRevalidate: 30, staleIfError: 120, hasValidator: true, keep: 300)
    static let entry = CacheEntry(sealed: [1, 2, 3], responseTime: 1000, lifetime: lifetime)

    @Test(arguments: [
        (1000.0, nil as Double?, true, CacheDecision.BeforeFetch.serve(ttl: 60)),
        (1059.5, nil, true, .serve(ttl: 1)),
        (1060, nil, true, .serveStaleAndRefresh(ttl: 0)),
        (1080, nil, true, .serveStaleAndRefresh(ttl: -20)),
        (1090, nil, true, .revalidate),
        (1299, nil, true, .revalidate),
        (1300, nil, true, .dropAndFetch),
        (1010, nil, false, .fetch),
        // The feed is silent: entries older than the limit are revalidated first, fresh or not.
        (1010, 5, true, .revalidate),
        (1010, 30, true, .serve(ttl: 50)),
        (1300, 5, true, .dropAndFetch),
    ])
    func beforeFetch(now: Double, limit: Double?, mayServe: Bool, expected: CacheDecision.BeforeFetch) {
        #expect(
            CacheDecision.beforeFetch(entry: Self.entry, now: now, stalenessLimit: limit, mayServe: mayServe)
                == expected)
    }

    @Test func nothingStoredIsAFetch() {
        #expect(CacheDecision.beforeFetch(entry: nil, now: 0, stalenessLimit: nil, mayServe: true) == .fetch)
    }

    @Test func afterFetch() {
        let store: () -> StoragePolicy.Decision = { .store(Self.lifetime) }
        let pass: () -> StoragePolicy.Decision = { .doNotStore(reason: "private") }
        let rows: [(Int?, Bool?, () -> StoragePolicy.Decision, CacheDecision.AfterFetch)] = [
            (200, nil, store, .store(Self.lifetime)),
            (200, nil, pass, .pass(reason: "private")),
            (200, true, store, .store(Self.lifetime)),  // a new answer replaces the stale one
            (304, true, store, .refreshed),
            (304, false, store, .refreshed),  // validated: no error window needed
            (304, nil, pass, .pass(reason: "private")),  // a 304 for nothing stored is passed on
            (503, true, store, .serveStale(fwdStatus: 503)),
            (503, false, pass, .pass(reason: "private")),  // past stale-if-error: the error goes out
            (503, nil, pass, .pass(reason: "private")),
            (404, true, pass, .pass(reason: "private")),  // a 4xx is an answer, not an outage
            (nil, true, pass, .serveStale(fwdStatus: 0)),
            (nil, false, pass, .fail),
            (nil, nil, pass, .fail),
        ]
        for (status, servable, storage, expected) in rows {
            let decision = CacheDecision.afterFetch(status: status, staleServableOnError: servable, storage: storage)
            #expect(
                decision == expected,
                "status \(status.map(String.init) ?? "none"), stale \(String(describing: servable))")
        }
    }

    @Test func theStorageRuleIsAskedOnlyWhenItMatters() {
        var asked = 0
        _ = CacheDecision.afterFetch(status: 304, staleServableOnError: true) {
            asked += 1
            return .doNotStore(reason: "x")
        }
        _ = CacheDecision.afterFetch(status: nil, staleServableOnError: true) {
            asked += 1
            return .doNotStore(reason: "x")
        }
        #expect(asked == 0)
    }
}
