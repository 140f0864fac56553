import NIOCore
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

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
    /// May be handed to a waiter whose request carries `Cookie` (explicitly public, or the tenant
    /// shares answers to cookie requests).
    var servesCookieRequests: Bool = true
    /// The stored header block in wire form, for an answer opened from a stored entry (an L2 hit):
    /// it goes out as it is, as an L1 hit's does, and `headers` is then empty.
    var rawHeaders: ByteBuffer? = nil
    /// The stored `ETag`, when `rawHeaders` is used and the request that opened it was conditional.
    var etag: String? = nil
}

/// The tenant traffic listener's logic: resolve the tenant, answer hits from
/// L1, collapse misses into one upstream fetch, revalidate, serve stale where allowed, store per
/// RFC 9111, and label every response with `Cache-Status` and `X-Edge-Region`.
struct TenantTrafficResponder: HTTPResponder {
    let runtime: EdgeRuntime
    /// `x-edge-region` on every answer, in wire form once.
    let fixedHeaders: FixedHeaderLines
    /// The node's id: the cache name in `Cache-Status`.
    let cacheName: String

    init(runtime: EdgeRuntime) {
        self.runtime = runtime
        fixedHeaders = FixedHeaderLines([("x-edge-region", runtime.config.node.region)])
        cacheName = runtime.config.node.id
    }

    func respond(to original: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        let started = NIODeadline.now()
        if runtime.awaitingBundle.load(ordering: .relaxed) {
            // Holding for the origin's bundle (decision 63): no tenant, and no "ok" to sibling regions' probes.
            var pending = EdgeResponse.jsonError(.serviceUnavailable, code: "config_pending")
            pending.headers.add(name: "retry-after", value: "5")
            return .now(bypassed(pending, detail: "config-pending", started: started))
        }
        let table = runtime.table  // the one snapshot this request uses, whatever is swapped meanwhile
        switch admit(original, in: table) {
        case .admitted(let changed?, let cache, let host):
            return serveAdmitted(changed, cache: cache, host: host, table: table, started: started, on: eventLoop)
        case .admitted(nil, let cache, let host):
            // The request as it came, passed on borrowed: no copy of it (about ten retains and
            // releases a hit, `make bench-instructions`).
            return serveAdmitted(original, cache: cache, host: host, table: table, started: started, on: eventLoop)
        case .refused(let response):
            return .now(bypassed(response, detail: "refused", started: started))
        case .noTenant(let target):
            if original.head.method == .GET || original.head.method == .HEAD, target == "/healthz" {
                return .now(regionHealth())  // the probe of a sibling region's node, at the region's own hostname
            }
            let response = EdgeResponse.jsonError(.misdirectedRequest, code: "unknown_tenant")
            runtime.events.record(
                "unknown_tenant", tenant: "-", source: original.peer?.ipAddress ?? "-",
                detail: "a Host that is no tenant's")  // the Host itself is the client's text: not recorded
            return .now(bypassed(response, detail: "unknown-tenant", started: started))
        }
    }

    /// Serves a request admitted for a tenant (`host`: the host the client named).
    private func serveAdmitted(
        _ request: EdgeRequest, cache: TenantCache, host: String, table: TenantTable, started: NIODeadline,
        on eventLoop: any EventLoop
    ) -> ResponderResult {
        // Timings and the request id kept only for tenants that show or log them.
        let tenant = cache.tenant
        let trace = tenant.serverTiming || tenant.accessLogSample > 0 ? RequestTrace() : nil
        let context = RequestContext(
            table: table, cache: cache, started: started, trace: trace, purgeCount: cache.purgeCount)
        var hint: String? = nil  // the preferred region, sent back in `hint` mode
        if cache.tenant.geoMode != .off, let address = runtime.geo.clientAddress(of: request) {
            if runtime.geo.forwardedForIsUntrusted(request) {
                runtime.events.record(
                    "forwarded_for_untrusted", tenant: cache.tenant.id, source: address.description,
                    detail: "X-Forwarded-For from a peer that is no trusted proxy; the peer's address was used")
            }
            let decision = runtime.geo.decide(
                address: address, residency: cache.tenant.residency, tableVersion: table.version,
                regions: { table.regions })
            if cache.tenant.geoMode == .hint { hint = decision.region }
            if cache.tenant.geoMode == .redirect, decision.region != runtime.config.node.region,
                let redirect = redirect(request, host: host, to: decision.region, regions: table.regions)
            {
                return .now(finish(redirect, context: context, request: request, hint: decision.region))
            }
        }
        let pending: EventLoopFuture<TrafficAnswer>
        if !runtime.mayStore(cache.tenant) {
            runtime.events.record(
                "residency_bypass", tenant: cache.tenant.id, source: "-",
                detail: "served without storing: the tenant's residency excludes \(runtime.config.node.region)")
            pending = passThrough(request, context: context, status: .bypass(detail: "residency"), on: eventLoop)
        } else if !StoragePolicy.isCacheableMethod(request.head.method.rawValue) {
            pending = forwardUncacheable(request, context: context, on: eventLoop)
        } else {
            switch serveCacheable(request, context: context, on: eventLoop) {
            case .ready(let answer): return .now(finish(answer, context: context, request: request, hint: hint))
            case .fetching(let outcome):
                // One `map` from the fetch to the response (not one to the answer and one more to the
                // response): every future costs an allocation and a generic deinit that looks up its
                // type metadata at run time, about 2,000 instructions (bench/instructions.sh TIER=l2).
                return .later(
                    outcome.map { [hint] outcome in
                        let answer = TrafficAnswer(
                            response: makeResponse(outcome, request: request), status: outcome.cacheStatus)
                        return finish(answer, context: context, request: request, hint: hint)
                    })
            }
        }
        return .later(pending.map { [hint] in finish($0, context: context, request: request, hint: hint) })
    }

    /// An answer given before any tenant is known: labelled a bypass and counted for no tenant.
    private func bypassed(_ original: EdgeResponse, detail: String, started: NIODeadline) -> EdgeResponse {
        var response = original
        response.cacheStatus = CacheStatusField(.bypass(detail: detail), cacheName: cacheName)
        runtime.metrics.recordUnknownTenantRequest(elapsedNanoseconds: (NIODeadline.now() - started).nanoseconds)
        return response
    }

    /// `geo_mode: redirect`: a `307` to the chosen region's `public_url` with
    /// the path and query kept, for GET and HEAD only (a redirected POST would be replayed by the
    /// client elsewhere; it is served here, without storing when residency says so). Nil when the
    /// request is served here. The answer depends on the client's address, so no cache may keep it.
    private func redirect(_ request: EdgeRequest, host: String, to region: String, regions: [RegionConfig])
        -> TrafficAnswer?
    {
        guard request.head.method == .GET || request.head.method == .HEAD,
            let target = regions.first(where: { $0.name == region }), !target.publicURL.isEmpty
        else { return nil }
        let location = target.redirectLocation(host: TenantDirectory.normalize(host: host), target: request.head.uri)
        var response = EdgeResponse.json(
            .temporaryRedirect, "{\"region\":\(JSONText.quote(region)),\"location\":\(JSONText.quote(location))}")
        response.headers.add(name: "location", value: location)
        response.headers.add(name: "cache-control", value: "private, no-store")
        if request.head.method == .HEAD {
            response.sendBody = false
            response.announcedLength = response.body?.readableBytes
        }
        return TrafficAnswer(response: response, status: .bypass(detail: "geo-redirect"))
    }

    /// `GET /healthz` at a hostname that is no tenant's: whether this node serves, for the other
    /// regions' probes (`RegionConfig.healthURL`). Tenant paths are never shadowed.
    private func regionHealth() -> EdgeResponse {
        let answer = JSONValue.object([
            "status": .string("ok"), "region": .string(runtime.config.node.region),
            "node": .string(runtime.config.node.id),
        ])
        return .json(.ok, (try? answer.canonicalText) ?? "{}")
    }

    /// Labels the response and records it in the tenant's counters and the metrics.
    /// `Server-Timing` and the access log line, for tenants with them on, come from `context.trace`.
    /// The answer's response, finished in place: `answer` is consumed, so its response is not copied
    /// (a copy is a retain of each of its buffers and strings).
    private func finish(
        _ answer: consuming TrafficAnswer, context: RequestContext, request: EdgeRequest, hint: String? = nil
    ) -> EdgeResponse {
        let cache = context.cache
        answer.response.cacheStatus = CacheStatusField(answer.status, cacheName: cacheName)
        if let hint { answer.response.preferredRegion = hint }
        let outcome = answer.status.counterKind
        cache.counters.increment(answer.response.status.code >= 500 && outcome != .stale ? .error : outcome)
        if case .sharedHit = answer.status { cache.counters.incrementSharedTierHit() }
        let elapsed = (NIODeadline.now() - context.started).nanoseconds
        cache.counters.duration.record(nanoseconds: elapsed)
        if let trace = context.trace {
            if cache.tenant.serverTiming {
                answer.response.headers.replaceOrAdd(
                    name: "server-timing", value: trace.serverTiming(totalNanoseconds: elapsed))
            }
            runtime.accessLog.write(
                request: request, response: answer.response, tenant: cache.tenant, trace: trace,
                elapsedNanoseconds: elapsed)
        }
        return answer.response
    }

    // MARK: cacheable requests

    private enum CacheableAnswer {
        case ready(TrafficAnswer)
        /// The one fetch for the target (led or joined), to be made into the response.
        case fetching(EventLoopFuture<FetchOutcome>)
    }

    private func serveCacheable(_ request: EdgeRequest, context: RequestContext, on eventLoop: any EventLoop)
        -> CacheableAnswer
    {
        let cache = context.cache
        let target = request.head.uri
        let now = runtime.clock.now()
        var stale: StaleEntry? = nil
        let hasCookie = request.head.headers.contains(name: "cookie")
        let stored = cache.lookup(target: target, requestHeaders: request.head.headers.fields)
        let decision = CacheDecision.beforeFetch(
            entry: stored?.1, now: now, stalenessLimit: runtime.feedStatus.stalenessLimit(now: now),
            mayServe: stored.map {
                StoragePolicy.mayServe(
                    $0.1.lifetime, requestHasCookie: hasCookie, tenantSharesCookies: cache.tenant.shareCookieRequests)
            } ?? false)
        if let (storageKey, entry) = stored {
            switch decision {
            case .serve(let ttl):
                if let hit = respondFromEntry(
                    entry, storageKey: storageKey, cache: cache, request: request, now: now, status: .hit(ttl: ttl))
                {
                    return .ready(hit)
                }
            case .serveStaleAndRefresh(let ttl):
                if let hit = respondFromEntry(
                    entry, storageKey: storageKey, cache: cache, request: request, now: now,
                    status: .staleWhileRevalidate(ttl: ttl))
                {
                    refreshInBackground(
                        request, context: context, stale: StaleEntry(storageKey: storageKey, entry: entry),
                        on: eventLoop)
                    return .ready(hit)
                }
            case .revalidate:
                stale = StaleEntry(storageKey: storageKey, entry: entry)
            case .dropAndFetch:
                cache.remove(storageKey: storageKey)
            case .fetch:
                break
            }
        }
        return .fetching(collapsedFetch(request, context: context, stale: stale, on: eventLoop))
    }

    /// The hit path: opens a stored entry straight into the response buffer and sends its header
    /// block and body as slices of it. Nil when it fails to open: the entry is dropped, a
    /// `decrypt_failed` security event is recorded, and the request continues as a miss.
    private func respondFromEntry(
        _ entry: CacheEntry, storageKey: KeyDigest, cache: TenantCache, request: EdgeRequest,
        now: Double, status: CacheStatus
    ) -> TrafficAnswer? {
        guard let count = cache.cipher.plaintextCount(ofSealedCount: entry.sealedCount) else {
            decryptFailed(cache, storageKey: storageKey, entry: entry)
            return nil
        }
        guard let buffer = openIntoLaneBuffer(entry, storageKey: storageKey, count: count, cache: cache) else {
            decryptFailed(cache, storageKey: storageKey, entry: entry)
            return nil
        }
        guard let layout = buffer.withUnsafeReadableBytes({ ResponseRecord.layout($0) }),
            let rawHeaders = buffer.getSlice(at: layout.headerBlock.lowerBound, length: layout.headerBlock.count),
            let body = buffer.getSlice(at: layout.bodyOffset, length: buffer.readableBytes - layout.bodyOffset)
        else {
            decryptFailed(cache, storageKey: storageKey, entry: entry)
            return nil
        }
        if runtime.config.cache.resealOnRead, let version = entry.keyVersion,
            version < cache.cipher.keyVersion
        {
            // rare: once per old entry
            cache.reseal(entry, storageKey: storageKey, plaintext: Array(buffer.readableBytesView))
        }
        var response = EdgeResponse(
            status: HTTPResponseStatus(statusCode: layout.status), headers: HTTPHeaders(), body: body,
            rawHeaders: rawHeaders)
        response.age = Int.saturating(entry.age(at: now))
        if layout.status == 200, let condition = request.head.headers.first(name: "if-none-match"),
            let etag = buffer.withUnsafeReadableBytes({ ResponseRecord.decodeHead($0) })?.headers.first("etag"),
            Self.etagMatches(condition, etag)
        {
            response.status = .notModified
            response.sendBody = false
        } else if request.head.method == .HEAD {
            response.sendBody = false
            response.announcedLength = body.readableBytes
        }
        return TrafficAnswer(response: response, status: status)
    }

    /// Opens an entry into this event loop's reusable buffer: a hit allocates none while the last
    /// response made from it is gone (a small body is copied behind its head, so it is). Buffers are
    /// values: when an earlier response still holds slices of it, `clear()` gives this one new
    /// storage and nothing is overwritten. Threads without a lane, and large entries, get a new one
    /// of their size.
    private func openIntoLaneBuffer(_ entry: CacheEntry, storageKey: KeyDigest, count: Int, cache: TenantCache)
        -> ByteBuffer?
    {
        func open(into buffer: inout ByteBuffer) -> Bool {
            do {
                try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { output in
                    try cache.open(entry, storageKey: storageKey, into: output)
                }
                return true
            } catch {
                return false
            }
        }
        if count <= Self.laneBufferBytes,
            let opened = runtime.laneBuffers.withValue(
                make: { ByteBufferAllocator().buffer(capacity: Self.laneBufferBytes) },
                { buffer -> ByteBuffer? in
                    buffer.clear()
                    return open(into: &buffer) ? buffer : nil
                })
        {
            return opened
        }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        return open(into: &buffer) ? buffer : nil
    }

    /// Entries up to this size open into the event loop's reusable buffer: a body the connection
    /// copies behind its head (`HTTPConnectionHandler.coalescedBodyBytes`, 4 KiB) and a header
    /// block. A larger body leaves as a slice of the buffer it was opened into, which stays pinned
    /// until written; from a shared 64 KiB buffer, a client reading slowly made every queued 4.1 KiB
    /// answer pin 64 KiB, so large entries get a buffer of their own size.
    static let laneBufferBytes = 8 * 1024

    /// The one place an entry that does not open is handled: dropped, and a security event.
    /// Judged by the entry that failed, not by what is stored now: a retirement can re-seal the
    /// entry under the new key and drop the old key between this hit's read and its open, and the
    /// re-sealed entry (which opens) must neither be dropped nor make the old one look like an attack.
    func decryptFailed(
        _ cache: TenantCache, storageKey: KeyDigest, entry: CacheEntry,
        detail: String = "stored entry failed to open; served as a miss"
    ) {
        cache.remove(storageKey: storageKey, ifStillHolding: entry)
        // Sealed under a key version this node no longer holds (retired, or swapped out a moment
        // ago): expected during a rotation, not an attack. Anything else is a security event.
        if let version = entry.keyVersion, !cache.cipher.holdsKey(version: version) {
            return
        }
        runtime.events.record("decrypt_failed", tenant: cache.tenant.id, source: "memory", detail: detail)
    }

    /// Builds the client's response from an outcome: stored headers, `Age`, `Content-Length`
    /// handling for HEAD, and a `304` for a matching `If-None-Match`.
    func makeResponse(_ outcome: FetchOutcome, request: EdgeRequest) -> EdgeResponse {
        var response = EdgeResponse(
            status: HTTPResponseStatus(statusCode: outcome.status),
            headers: outcome.rawHeaders == nil ? HTTPHeaders(fields: outcome.headers) : HTTPHeaders(),
            body: outcome.body, rawHeaders: outcome.rawHeaders)
        response.age = outcome.age
        if request.head.method == .HEAD {
            response.sendBody = false
            response.announcedLength = outcome.body.readableBytes
        }
        if outcome.status == 200, let condition = request.head.headers.first(name: "if-none-match"),
            let etag = outcome.etag ?? outcome.headers.first("etag"), Self.etagMatches(condition, etag)
        {
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

/// A response with the cache outcome that labels it.
struct TrafficAnswer: Sendable {
    var response: EdgeResponse
    var status: CacheStatus
}

/// A stored entry that is stale and must be revalidated (or may cover an upstream error).
struct StaleEntry: Sendable {
    var storageKey: KeyDigest
    var entry: CacheEntry

    /// The entry's bytes are copied out of its slab: a revalidation can wait on the upstream for
    /// seconds, and a slab (up to 64 KiB, outside the quota once emptied) should not wait with it.
    init(storageKey: KeyDigest, entry: CacheEntry) {
        self.storageKey = storageKey
        self.entry = entry.detached
    }
}
