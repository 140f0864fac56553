import NIOCore
import NIOHTTP1
import TenantEdgeCore
import TenantEdgeHTTP

/// The shared tier (L2) on the miss path: asked before the upstream, written after a store.
///
/// A response without `Vary` lives at its primary digest. A response with `Vary` lives at its
/// variant digest, and a small marker at the primary digest names the request headers it varies
/// on, so a lookup costs a second round trip only for varying responses. Variants are indexed under
/// their primary digest, so a purge by key removes every variant with the marker.
extension TenantTrafficResponder {
    /// Fetches for a miss: L2 first (when the tenant has one and nothing stale is held), then the
    /// upstream. The purge fence read with L2 goes with the fetch, so its write to L2 is refused if a
    /// purge ran meanwhile; a revalidation reads the fence alone.
    func leaderFetch(_ request: EdgeRequest, context: RequestContext, stale: StaleEntry?, on eventLoop: any EventLoop)
        -> EventLoopFuture<FetchOutcome>
    {
        let promise = eventLoop.makePromise(of: FetchOutcome.self)
        leaderFetch(request, context: context, stale: stale, completing: promise, on: eventLoop)
        return promise.futureResult
    }

    /// `leaderFetch` completing the caller's promise: the whole L2 read makes no future of its own,
    /// so an L2 hit makes none but the caller's.
    func leaderFetch(
        _ request: EdgeRequest, context: RequestContext, stale: StaleEntry?,
        completing promise: EventLoopPromise<FetchOutcome>, on eventLoop: any EventLoop
    ) {
        let cache = context.cache
        guard let l2 = context.l2 else {
            return promise.completeWith(
                upstreamFetch(request, context: context, stale: stale, token: nil, on: eventLoop))
        }
        let tenant = cache.tenant.id
        if stale != nil {
            return promise.completeWith(
                l2.token(tenant: tenant, on: eventLoop).flatMap { token in
                    upstreamFetch(request, context: context, stale: stale, token: token, on: eventLoop)
                })
        }
        let target = request.head.uri
        let primary = cache.primaryDigest(target: target)
        let fetch: @Sendable (RedisTier.Token?) -> Void = { token in
            promise.completeWith(upstreamFetch(request, context: context, stale: nil, token: token, on: eventLoop))
        }
        let trace = context.trace
        let asked = trace == nil ? nil : NIODeadline.now()  // timed only for `Server-Timing`
        let span = runtime.tracing?.start("l2 get", clientHeaders: request.head.headers, kind: .client, tenant: tenant)
        l2.get(tenant: tenant, digest: primary, on: eventLoop) { read in
            if let trace, let asked { trace.recordL2(nanoseconds: (NIODeadline.now() - asked).nanoseconds) }
            if let span { MissTracing.endL2(span, answered: read != nil, found: read?.value != nil) }
            guard let read, let value = read.value else { return fetch(read?.token) }
            switch L2EntryCodec.decodeValue(value) {
            case .entry(let entry):
                if let outcome = sharedTierOutcome(
                    entry, storageKey: primary, primary: primary, varyNames: [], request: request, context: context,
                    generation: read.token.generation)
                {
                    return promise.succeed(outcome)
                }
            case .varyMarker(let names):
                let variant = cache.variantDigest(
                    target: target, varyNames: names, requestHeaders: request.head.headers.fields)
                let askedAgain = trace == nil ? nil : NIODeadline.now()
                return l2.get(tenant: tenant, digest: variant, on: eventLoop) { variantRead in
                    if let trace, let askedAgain {
                        trace.recordL2(nanoseconds: (NIODeadline.now() - askedAgain).nanoseconds)
                    }
                    if let variantRead, let value = variantRead.value,
                        case .entry(let entry) = L2EntryCodec.decodeValue(value),
                        let outcome = sharedTierOutcome(
                            entry, storageKey: variant, primary: primary, varyNames: names, request: request,
                            context: context, generation: variantRead.token.generation)
                    {
                        return promise.succeed(outcome)
                    }
                    fetch(read.token)
                }
            case .outdated:
                break  // written before values were authenticated: fetched anew and overwritten
            case .malformed:
                runtime.events.record(
                    "decrypt_failed", tenant: tenant, source: "redis", detail: "L2 value is malformed; fetched anew")
            }
            fetch(read.token)
        }
    }

    /// An L2 entry that is fresh and opens under this tenant's key and binding becomes an L1 entry
    /// and the answer. One that does not open is a `decrypt_failed` security event and a miss.
    private func sharedTierOutcome(
        _ entry: CacheEntry, storageKey: KeyDigest, primary: KeyDigest, varyNames: [String], request: EdgeRequest,
        context: RequestContext, generation: UInt64
    ) -> FetchOutcome? {
        let cache = context.cache
        let now = runtime.clock.now()
        let target = request.head.uri
        guard entry.generation == generation else {
            // Bound to another generation than the key it sits under: copied there, e.g. to undo a purge.
            runtime.events.record(
                "decrypt_failed", tenant: cache.tenant.id, source: "redis",
                detail: "L2 value names another generation; fetched anew")
            return nil
        }
        guard case .fresh(let remaining) = entry.freshness(at: now) else { return nil }
        guard
            StoragePolicy.mayServe(
                entry.lifetime, requestHasCookie: request.head.headers.contains(name: "cookie"),
                tenantSharesCookies: cache.tenant.shareCookieRequests)
        else { return nil }
        // feed silent: fetch anew
        if let limit = runtime.feedStatus.stalenessLimit(now: now), entry.age(at: now) > limit { return nil }
        if let version = entry.keyVersion, !cache.cipher.holdsKey(version: version) {
            // Older than the current key: retired, unreadable by design, dropped quietly where met.
            // Newer: a sibling already has the next bundle; a miss here until this node has it too.
            if version < cache.cipher.keyVersion {
                _ = context.l2?.delete(
                    tenant: cache.tenant.id, digests: [storageKey], on: runtime.eventLoop)
            }
            return nil
        }
        // Opened straight into the buffer the answer leaves from, and sent as an L1 hit is: the
        // stored header block as it is, no header decoded unless the request is conditional.
        guard let opened = Self.openForAnswer(entry, storageKey: storageKey, cache: cache),
            let layout = opened.withUnsafeReadableBytes({ ResponseRecord.layout($0) }),
            let rawHeaders = opened.getSlice(at: layout.headerBlock.lowerBound, length: layout.headerBlock.count),
            let body = opened.getSlice(at: layout.bodyOffset, length: opened.readableBytes - layout.bodyOffset)
        else {
            runtime.events.record(
                "decrypt_failed", tenant: cache.tenant.id, source: "redis",
                detail: "L2 value failed to open; fetched anew")
            return nil
        }
        let etag =
            request.head.headers.contains(name: "if-none-match")
            ? opened.withUnsafeReadableBytes({ ResponseRecord.decodeHead($0) })?.headers.first("etag") : nil
        cache.promote(
            entry, target: target, storageKey: storageKey, varyNames: varyNames, primary: primary,
            unpurgedSince: context.purgeCount)
        // The variant travels with the answer, so a collapsed waiter with other `Vary` values
        // fetches its own instead of taking this one.
        let requestFields = request.head.headers
        return FetchOutcome(
            status: layout.status, headers: [], body: body,
            cacheStatus: .sharedHit(ttl: Int.saturating(remaining.rounded(.up))),
            age: Int.saturating(entry.age(at: now)), shareable: true,
            vary: varyNames.map { ($0, requestFields.combined($0)) },
            servesCookieRequests: entry.lifetime.explicitlyPublic || cache.tenant.shareCookieRequests,
            rawHeaders: rawHeaders, etag: etag)
    }

    /// A buffer of its own (the answer may go to collapsed waiters too) holding the entry's record.
    private static func openForAnswer(_ entry: CacheEntry, storageKey: KeyDigest, cache: TenantCache) -> ByteBuffer? {
        guard let count = cache.cipher.plaintextCount(ofSealedCount: entry.sealedCount) else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        do {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { output throws(EdgeError) in
                try cache.open(entry, storageKey: storageKey, into: output)
            }
        } catch {
            return nil
        }
        return buffer
    }

    /// Writes what L1 stored to L2 as well, with a Redis TTL of the entry's remaining keep time,
    /// indexed by its tags and path prefixes (and, for a variant, its primary digest). Without a
    /// token (Redis did not answer the read) nothing is written.
    func writeToSharedTier(
        _ entry: CacheEntry, storageKey: KeyDigest, varyNames: [String], target: String, context: RequestContext,
        token: RedisTier.Token?, on eventLoop: any EventLoop
    ) {
        let cache = context.cache
        guard let l2 = context.l2, let token else { return }
        let fence = token.fence
        let quota = cache.tenant.quotaBytesL2 ?? runtime.config.cache.redis?.tenantQuotaBytes ?? 0
        let ttl = Int.saturating((entry.lifetime.keep - entry.lifetime.initialAge).rounded(.up))
        let primary = cache.primaryDigest(target: target)
        var indexes = entry.tagDigests + cache.prefixDigests(of: target)
        if !varyNames.isEmpty {
            indexes.append(primary)
            l2.set(
                tenant: cache.tenant.id, digest: primary, value: L2EntryCodec.encodeVaryMarker(varyNames),
                ttlSeconds: ttl,
                fence: fence, keyVersion: cache.cipher.keyVersion, quotaBytes: quota, indexes: [], on: eventLoop)
        }
        l2.set(
            tenant: cache.tenant.id, digest: storageKey, value: L2EntryCodec.encode(entry), ttlSeconds: ttl,
            fence: fence,
            keyVersion: entry.keyVersion ?? cache.cipher.keyVersion, quotaBytes: quota,
            indexes: indexes,
            on: eventLoop)
    }
}
