import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// What one upstream fetch produced, handed to its leader and to every collapsed waiter.
struct FetchOutcome: Sendable {
    var status: Int
    var headers: [HeaderField]
    var body: ByteBuffer
    var cacheStatus: CacheStatus
    /// Age to report (for responses served from a stored entry); nil for fresh upstream answers.
    var age: Int?
    /// May be handed to other clients: the response was storable for a shared cache.
    var shareable: Bool
    /// Request headers the response varies on, with the leader's values, for waiters to compare.
    var vary: [(name: String, value: String?)]
}

/// The tenant traffic listener's logic (interface section 3): resolve the tenant, answer hits from
/// L1, collapse misses into one upstream fetch, revalidate, serve stale where allowed, store per
/// RFC 9111, and label every response with `Cache-Status` and `X-Edge-Region`.
struct TenantTrafficResponder: HTTPResponder {
    let runtime: EdgeRuntime

    func decorate(_ headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: "x-edge-region", value: runtime.config.node.region)
    }

    func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> EventLoopFuture<EdgeResponse> {
        let started = NIODeadline.now()
        guard let host = request.head.headers.first(name: "host"), let cache = runtime.cache(forHost: host) else {
            var response = EdgeResponse.jsonError(.misdirectedRequest, code: "unknown_tenant")
            response.headers.add(name: "cache-status", value: CacheStatus.bypass(detail: "unknown-tenant")
                .headerValue(cacheName: runtime.config.node.id))
            runtime.metrics.recordRequest(tenant: nil, status: "bypass", elapsedNanoseconds: (NIODeadline.now() - started).nanoseconds)
            return eventLoop.makeSucceededFuture(response)
        }
        let future: EventLoopFuture<(EdgeResponse, CacheStatus)>
        let method = request.head.method.rawValue
        if !StoragePolicy.isCacheableMethod(method) {
            future = forwardUncacheable(request, cache: cache, on: eventLoop)
        } else if !runtime.mayStore(cache.tenant) {
            future = passThrough(request, cache: cache, status: .bypass(detail: "residency"), on: eventLoop)
        } else {
            future = serveCacheable(request, cache: cache, on: eventLoop)
        }
        return future.map { response, status in
            var response = response
            response.headers.replaceOrAdd(name: "cache-status", value: status.headerValue(cacheName: runtime.config.node.id))
            let label = response.status.code >= 500 && status.metricLabel != "stale" ? "error" : status.metricLabel
            switch label {
            case "hit": cache.counters.increment(.hit)
            case "stale": cache.counters.increment(.stale)
            case "bypass": cache.counters.increment(.bypass)
            case "error": cache.counters.increment(.error)
            default: cache.counters.increment(.miss)
            }
            runtime.metrics.recordRequest(tenant: cache.tenant.id, status: label, elapsedNanoseconds: (NIODeadline.now() - started).nanoseconds)
            return response
        }
    }

    // MARK: cacheable requests

    private func serveCacheable(_ request: EdgeRequest, cache: TenantCache, on eventLoop: any EventLoop)
        -> EventLoopFuture<(EdgeResponse, CacheStatus)>
    {
        let target = request.head.uri
        let now = runtime.clock.now()
        var stale: StaleEntry? = nil
        if let (storageKey, entry) = cache.lookup(target: target, requestHeaders: request.head.headers.fields) {
            switch entry.freshness(at: now) {
            case .fresh(let remaining):
                if let hit = respondFromEntry(entry, storageKey: storageKey, cache: cache, request: request, now: now,
                                              status: .hit(ttl: Int(remaining.rounded(.up)))) {
                    return eventLoop.makeSucceededFuture(hit)
                }
            case .staleWhileRevalidate:
                let ttl = Int((entry.lifetime.freshness - entry.age(at: now)).rounded(.down))
                if let hit = respondFromEntry(entry, storageKey: storageKey, cache: cache, request: request, now: now,
                                              status: .staleWhileRevalidate(ttl: ttl)) {
                    refreshInBackground(request, cache: cache, stale: StaleEntry(storageKey: storageKey, entry: entry), on: eventLoop)
                    return eventLoop.makeSucceededFuture(hit)
                }
            case .stale:
                stale = StaleEntry(storageKey: storageKey, entry: entry)
            case .expired:
                cache.remove(storageKey: storageKey)
            }
        }
        return collapsedFetch(request, cache: cache, stale: stale, on: eventLoop).map { outcome in
            (makeResponse(outcome, request: request), outcome.cacheStatus)
        }
    }

    /// Opens a stored entry straight into the response buffer. Nil when it fails to open: the entry
    /// is dropped, a `decrypt_failed` security event is recorded, and the request continues as a miss.
    private func respondFromEntry(_ entry: CacheEntry, storageKey: KeyDigest, cache: TenantCache, request: EdgeRequest,
                                  now: Double, status: CacheStatus) -> (EdgeResponse, CacheStatus)? {
        guard let count = cache.cipher.plaintextCount(ofSealed: entry.sealed) else {
            decryptFailed(cache, storageKey: storageKey)
            return nil
        }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        do {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { output in
                try cache.open(entry, storageKey: storageKey, into: output)
            }
        } catch {
            decryptFailed(cache, storageKey: storageKey)
            return nil
        }
        guard let head = buffer.withUnsafeReadableBytes({ ResponseRecord.decodeHead($0) }),
              let body = buffer.getSlice(at: buffer.readerIndex + head.bodyOffset, length: buffer.readableBytes - head.bodyOffset)
        else {
            decryptFailed(cache, storageKey: storageKey)
            return nil
        }
        let outcome = FetchOutcome(status: head.status, headers: head.headers, body: body, cacheStatus: status,
                                   age: Int(entry.age(at: now)), shareable: true, vary: [])
        return (makeResponse(outcome, request: request), status)
    }

    private func decryptFailed(_ cache: TenantCache, storageKey: KeyDigest) {
        cache.remove(storageKey: storageKey)
        runtime.securityEvent("decrypt_failed", tenant: cache.tenant.id, detail: "stored entry failed to open; served as a miss")
    }

    /// Builds the client's response from an outcome: stored headers, `Age`, `Content-Length`
    /// handling for HEAD, and a `304` for a matching `If-None-Match`.
    func makeResponse(_ outcome: FetchOutcome, request: EdgeRequest) -> EdgeResponse {
        var headers = HTTPHeaders(fields: outcome.headers)
        if let age = outcome.age { headers.replaceOrAdd(name: "age", value: String(max(age, 0))) }
        var response = EdgeResponse(status: HTTPResponseStatus(statusCode: outcome.status), headers: headers, body: outcome.body)
        if request.head.method == .HEAD {
            response.sendBody = false
            response.announcedLength = outcome.body.readableBytes
        }
        if outcome.status == 200, let condition = request.head.headers.first(name: "if-none-match"),
           let etag = outcome.headers.first("etag"), Self.etagMatches(condition, etag) {
            response.status = .notModified
            response.sendBody = false
            response.announcedLength = nil
            response.headers.remove(name: "content-length")
        }
        return response
    }

    /// Weak comparison (RFC 9110 13.1.2): `If-None-Match` uses weak matching; `*` matches any.
    static func etagMatches(_ condition: String, _ etag: String) -> Bool {
        func opaque(_ tag: String) -> String { tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag }
        let wanted = opaque(etag.trimmingSpaces())
        return condition.split(separator: ",").contains { candidate in
            let value = candidate.trimmingSpaces()
            return value == "*" || opaque(value) == wanted
        }
    }
}

/// A stored entry that is stale and must be revalidated (or may cover an upstream error).
struct StaleEntry: Sendable {
    var storageKey: KeyDigest
    var entry: CacheEntry
}
