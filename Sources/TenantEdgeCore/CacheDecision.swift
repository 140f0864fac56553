/// The RFC 9111 decisions of one cacheable request, out of the I/O code's future chains: before
/// the upstream (what a stored entry allows) and after it (what to do with its answer). The
/// traffic responder performs them; these tables are tested on their own.
public enum CacheDecision {
    /// What a stored entry allows before anything goes upstream.
    public enum BeforeFetch: Equatable, Sendable {
        /// Fresh: a hit, `ttl` seconds of freshness left.
        case serve(ttl: Int)
        /// Within `stale-while-revalidate`: serve it and refresh it in the background.
        case serveStaleAndRefresh(ttl: Int)
        /// Stale: go upstream (conditionally when it has validators), the entry as the fallback
        /// within `stale-if-error`.
        case revalidate
        /// Nothing servable stored: fetch.
        case fetch
        /// Past its keep time: drop the entry, then fetch.
        case dropAndFetch
    }

    /// What to do with the upstream's answer (`status`; nil when the upstream could not be reached).
    public enum AfterFetch: Equatable, Sendable {
        /// A `304` for the stored entry: refresh its headers, keep its body (RFC 9111 4.3.4).
        case refreshed
        /// The upstream failed (`fwdStatus` 0 when unreachable): the stale entry answers, within
        /// `stale-if-error`.
        case serveStale(fwdStatus: Int)
        /// Store the answer for `lifetime`.
        case store(StoragePolicy.Lifetime)
        /// Pass the answer on without storing it, for `reason`; a stale entry it replaces is dropped.
        case pass(reason: String)
        /// Unreachable and nothing stale to serve: answer with the error.
        case fail
    }

    /// `mayServe`: the entry may answer this request at all (a cookie request and a response that
    /// is not public, say). `stalenessLimit`: while the invalidation feed is silent, entries older
    /// than it are revalidated before they are served, whatever their freshness.
    public static func beforeFetch(entry: CacheEntry?, now: Double, stalenessLimit: Double?, mayServe: Bool)
        -> BeforeFetch
    {
        guard let entry, mayServe else { return .fetch }
        var freshness = entry.freshness(at: now)
        if let stalenessLimit, entry.age(at: now) > stalenessLimit, freshness != .expired {
            freshness = .stale(servableOnError: false)
        }
        switch freshness {
        case .fresh(let remaining):
            return .serve(ttl: Int.saturating(remaining.rounded(.up)))
        case .staleWhileRevalidate:
            return .serveStaleAndRefresh(
                ttl: Int.saturating((entry.lifetime.freshness - entry.age(at: now)).rounded(.down)))
        case .stale:
            return .revalidate
        case .expired:
            return .dropAndFetch
        }
    }

    /// `staleServableOnError`: whether the entry being revalidated may still answer on an error now
    /// (nil: no stale entry). `storage`: what `StoragePolicy` says of the answer (asked only when
    /// it matters).
    public static func afterFetch(
        status: Int?, staleServableOnError: Bool?, storage: () -> StoragePolicy.Decision
    ) -> AfterFetch {
        guard let status else { return staleServableOnError == true ? .serveStale(fwdStatus: 0) : .fail }
        if status == 304, staleServableOnError != nil { return .refreshed }
        if status >= 500, staleServableOnError == true { return .serveStale(fwdStatus: status) }
        switch storage() {
        case .store(let lifetime): return .store(lifetime)
        case .doNotStore(let reason): return .pass(reason: reason)
        }
    }
}
