/// `Cache-Status` values (RFC 9211), with this node's id as the cache name.
public enum CacheStatus: Sendable, Equatable {
    case hit(ttl: Int)
    /// Answered from the region's shared tier (L2) without reaching the upstream.
    case sharedHit(ttl: Int)
    /// Served stale while a background refresh runs.
    case staleWhileRevalidate(ttl: Int)
    /// Served stale because the upstream failed with `fwdStatus` (0 when it could not be reached).
    case staleIfError(ttl: Int, fwdStatus: Int)
    case miss(stored: Bool, detail: String?)
    /// A stale entry was revalidated with the upstream, which answered `fwdStatus`.
    case revalidated(fwdStatus: Int, stored: Bool)
    /// A collapsed miss: answered with another request's fetch.
    case collapsed(stored: Bool)
    case bypass(detail: String)
    case uncacheableMethod

    /// The label used in metrics and stats: hit, stale, miss, revalidated, bypass.
    public var metricLabel: String {
        switch self {
        case .hit, .sharedHit: "hit"
        case .staleWhileRevalidate, .staleIfError: "stale"
        case .miss, .collapsed: "miss"
        case .revalidated: "revalidated"
        case .bypass, .uncacheableMethod: "bypass"
        }
    }

    /// The counter a response with this status adds to (`metricLabel` as a `TenantCounters.Kind`).
    public var counterKind: TenantCounters.Kind {
        switch self {
        case .hit, .sharedHit: .hit
        case .staleWhileRevalidate, .staleIfError: .stale
        case .miss, .collapsed: .miss
        case .revalidated: .revalidated
        case .bypass, .uncacheableMethod: .bypass
        }
    }

    public func headerValue(cacheName: String) -> String {
        switch self {
        case .hit(let ttl): "\(cacheName); hit; ttl=\(ttl)"
        case .sharedHit(let ttl): "\(cacheName); hit; ttl=\(ttl); detail=l2"
        case .staleWhileRevalidate(let ttl): "\(cacheName); hit; ttl=\(ttl); detail=stale-while-revalidate"
        case .staleIfError(let ttl, let status):
            status == 0
                ? "\(cacheName); fwd=stale; ttl=\(ttl); detail=stale-if-error"
                : "\(cacheName); fwd=stale; fwd-status=\(status); ttl=\(ttl); detail=stale-if-error"
        case .miss(let stored, let detail):
            "\(cacheName); fwd=miss" + (stored ? "; stored" : "") + (detail.map { "; detail=\($0)" } ?? "")
        case .revalidated(let status, let stored):
            "\(cacheName); fwd=stale; fwd-status=\(status)" + (stored ? "; stored" : "")
        case .collapsed(let stored): "\(cacheName); fwd=miss; collapsed" + (stored ? "; stored" : "")
        case .bypass(let detail): "\(cacheName); fwd=bypass; detail=\(detail)"
        case .uncacheableMethod: "\(cacheName); fwd=method"
        }
    }
}
