import NIOCore
import NIOHTTP1
import TenantEdgeCore
import TenantEdgeHTTP

/// Misses, revalidation and forwarding: the paths that reach the upstream.
extension TenantTrafficResponder {
    /// Joins or leads the one fetch for this target. Waiters reuse the leader's answer when it was
    /// shareable and varies on nothing they differ in; otherwise they fetch for themselves.
    func collapsedFetch(
        _ request: EdgeRequest, context: RequestContext, stale: StaleEntry?, on eventLoop: any EventLoop
    )
        -> EventLoopFuture<FetchOutcome>
    {
        let cache = context.cache
        let key = CollapseKey(tenant: cache.tenant.id, target: request.head.uri)
        let promise = eventLoop.makePromise(of: FetchOutcome.self)
        let action = runtime.collapser.withLock { $0.join(key, waiter: promise) }
        switch action {
        case .lead:
            // The leader completes the collapse's own promise (a future of its own would cost one more
            // allocation and generic deinit per miss and L2 hit); waiters are answered when it is.
            let runtime = self.runtime
            promise.futureResult.whenComplete { result in
                for waiter in runtime.collapser.withLock({ $0.finish(key) }) { waiter.completeWith(result) }
            }
            leaderFetch(request, context: context, stale: stale, completing: promise, on: eventLoop)
            return promise.futureResult
        case .wait:
            return promise.futureResult.hop(to: eventLoop).flatMap { outcome in
                let headers = request.head.headers
                // A waiter gets the leader's answer only if it was meant for anyone (shareable), is
                // the variant this waiter would have been given, and may answer a cookie request.
                let sameVariant = outcome.vary.allSatisfy {
                    headers[$0.name].joined(separator: ", ") == ($0.value ?? "")
                }
                let cookieAllowed = outcome.servesCookieRequests || !headers.contains(name: "cookie")
                if outcome.shareable && sameVariant && cookieAllowed {
                    var shared = outcome
                    if case .miss(let stored, _) = outcome.cacheStatus {
                        shared.cacheStatus = .collapsed(stored: stored)
                    }
                    return eventLoop.makeSucceededFuture(shared)
                }
                return leaderFetch(request, context: context, stale: stale, on: eventLoop)
            }
        }
    }

    /// `stale-while-revalidate`: one background refresh per key, no client waiting on it.
    func refreshInBackground(
        _ request: EdgeRequest, context: RequestContext, stale: StaleEntry, on eventLoop: any EventLoop
    ) {
        let cache = context.cache
        let key = CollapseKey(tenant: cache.tenant.id, target: request.head.uri)
        guard runtime.collapser.withLock({ $0.leadIfIdle(key) }) else { return }
        let runtime = self.runtime
        leaderFetch(request, context: context, stale: stale, on: eventLoop).whenComplete { result in
            for waiter in runtime.collapser.withLock({ $0.finish(key) }) { waiter.completeWith(result) }
        }
    }

    /// Fetches from the upstream (conditionally when a stale entry has validators), stores what
    /// RFC 9111 allows, and falls back to a stale copy within `stale-if-error`. `token` is the
    /// tenant's L2 fence and generation read before the fetch (nil: no L2 write).
    func upstreamFetch(
        _ request: EdgeRequest, context: RequestContext, stale: StaleEntry?, token: RedisTier.Token?,
        on eventLoop: any EventLoop
    )
        -> EventLoopFuture<FetchOutcome>
    {
        let cache = context.cache
        let staleRecord = stale.flatMap { openRecord($0, cache: cache) }
        let forwarded = forwardHeaders(request, tenant: cache.tenant, forStorage: true)
        var headers = forwarded.0
        let correlation = forwarded.1
        if let staleRecord, stale?.entry.lifetime.hasValidator == true {
            if let etag = staleRecord.headers.first("etag") { headers.replaceOrAdd(name: "if-none-match", value: etag) }
            if let modified = staleRecord.headers.first("last-modified") {
                headers.replaceOrAdd(name: "if-modified-since", value: modified)
            }
        }
        guard let upstream = UpstreamURL(parsing: cache.tenant.upstream) else {
            return eventLoop.makeFailedFuture(EdgeError(.upstreamUnavailable, "tenant upstream URL is invalid"))
        }
        let requestFields = request.head.headers.fields
        let span = tracedFetch(request, tenant: cache.tenant.id, headers: &headers)
        return runtime.upstream.fetch(
            upstream: upstream, method: .GET, target: request.head.uri, headers: headers, body: nil,
            counters: cache.counters, trace: context.trace, requestID: correlation.requestID, on: eventLoop
        )
        .always { span?.finish($0) }
        .flatMapWithEventLoop { response, _ in
            eventLoop.makeCompletedFuture {
                try handleUpstream(
                    response, requestFields: requestFields, target: request.head.uri, context: context,
                    stale: stale, staleRecord: staleRecord, token: token, on: eventLoop)
            }
        }
        .flatMapError { error in
            let now = runtime.clock.now()
            let servable = staleRecord == nil ? nil : stale?.entry.servableOnError(at: now)
            let decision = CacheDecision.afterFetch(status: nil, staleServableOnError: servable) {
                .doNotStore(reason: "upstream-error")
            }
            if case .serveStale(let fwdStatus) = decision, let stale, let staleRecord {
                return eventLoop.makeSucceededFuture(
                    staleOutcome(
                        staleRecord, stale: stale, now: now, fwdStatus: fwdStatus, requestFields: requestFields))
            }
            return eventLoop.makeSucceededFuture(
                errorOutcome(error, tenant: cache.tenant.id, requestID: correlation.requestID))
        }
    }

    private func handleUpstream(
        _ response: UpstreamResponse, requestFields: [HeaderField], target: String, context: RequestContext,
        stale: StaleEntry?, staleRecord: ResponseRecord?, token: RedisTier.Token?,
        on eventLoop: any EventLoop
    ) throws -> FetchOutcome {
        let cache = context.cache
        let generation = token?.generation ?? 0
        let now = runtime.clock.now()
        let ttl = Double(cache.tenant.defaultTTLSeconds ?? runtime.config.cache.defaultTTLSeconds)
        let sharesCookies = cache.tenant.shareCookieRequests
        var headers = response.headers
        let tags = StoredHeaders.prepare(&headers)
        let decision = CacheDecision.afterFetch(
            status: response.status,
            staleServableOnError: staleRecord == nil ? nil : stale?.entry.servableOnError(at: now)
        ) {
            StoragePolicy.decide(
                requestHeaders: requestFields, status: response.status, responseHeaders: headers, responseTime: now,
                defaultTTL: ttl, sharesCookieRequests: sharesCookies)
        }
        if case .refreshed = decision, let stale, let staleRecord {
            // Refresh the stored headers from the 304 (RFC 9111 4.3.4) and keep the stored body.
            var merged = staleRecord.headers
            for field in response.headers
            where !["content-length", "content-encoding", "transfer-encoding"].contains(field.name.lowercased()) {
                merged.replace(field.name, with: field.value)
            }
            let tags = StoredHeaders.prepare(&merged)
            let record = ResponseRecord(status: staleRecord.status, headers: merged, body: staleRecord.body)
            var stored = false
            var servesCookieRequests = false
            if case .store(let lifetime) = StoragePolicy.decide(
                requestHeaders: requestFields, status: record.status,
                responseHeaders: merged, responseTime: now, defaultTTL: ttl,
                sharesCookieRequests: sharesCookies)
            {
                servesCookieRequests = lifetime.explicitlyPublic || sharesCookies
                let carriesSurrogateKey = response.headers.contains("surrogate-key")
                let entry = try cache.refresh(
                    storageKey: stale.storageKey, record: record, lifetime: lifetime,
                    tags: carriesSurrogateKey ? tags : nil,
                    previous: stale.entry, responseTime: now, generation: generation)
                writeToSharedTier(
                    entry, storageKey: stale.storageKey, varyNames: StoragePolicy.varyNames(from: merged),
                    target: target,
                    context: context, token: token, on: eventLoop)
                stored = true
            }
            // Shareable only when what the 304 made is storable: a 304 that adds `Set-Cookie` or
            // `private` answers the leader alone.
            return FetchOutcome(
                status: record.status, headers: merged, body: ByteBuffer(bytes: record.body),
                cacheStatus: .revalidated(fwdStatus: 304, stored: stored), age: 0, shareable: stored,
                vary: varyValues(merged, requestFields), servesCookieRequests: servesCookieRequests)
        }
        if case .serveStale(let fwdStatus) = decision, let stale, let staleRecord {
            return staleOutcome(staleRecord, stale: stale, now: now, fwdStatus: fwdStatus, requestFields: requestFields)
        }
        let upstreamAge = response.headers.first("age").flatMap { CacheControl.deltaSeconds($0.trimmingSpaces()) }
        var stored = false
        var detail: String? = nil
        var storedLifetime: StoragePolicy.Lifetime? = nil
        switch decision {
        case .store(let lifetime):
            storedLifetime = lifetime
            let record = ResponseRecord(
                status: response.status, headers: headers, body: Array(response.body.readableBytesView))
            let varyNames = StoragePolicy.varyNames(from: headers)
            let result = try cache.store(
                target: target, requestHeaders: requestFields, record: record,
                varyNames: varyNames, tags: tags, lifetime: lifetime, responseTime: now, generation: generation,
                unpurgedSince: context.purgeCount)
            writeToSharedTier(
                result.entry, storageKey: result.storageKey, varyNames: varyNames, target: target, context: context,
                token: token, on: eventLoop)
            stored = result.inL1 || context.l2 != nil
            if !result.inL1, cache.purgeCount != context.purgeCount {
                stored = false
                detail = "purged-during-fetch"
            } else if !stored {
                detail = "too-large"
            }
        case .pass(let reason):
            detail = reason
            if let stale { cache.remove(storageKey: stale.storageKey) }
        case .refreshed, .serveStale, .fail:
            // A 304 or an error whose stale entry could not be opened: passed on as it is.
            detail = "revalidation-failed"
            if let stale { cache.remove(storageKey: stale.storageKey) }
        }
        let status: CacheStatus =
            stale != nil
            ? .revalidated(fwdStatus: response.status, stored: stored) : .miss(stored: stored, detail: detail)
        let shareable = storedLifetime != nil
        let servesCookieRequests = storedLifetime.map { $0.explicitlyPublic || sharesCookies } ?? false
        return FetchOutcome(
            status: response.status, headers: headers, body: response.body, cacheStatus: status, age: upstreamAge,
            shareable: shareable, vary: varyValues(headers, requestFields),
            servesCookieRequests: servesCookieRequests)
    }

    /// A stale copy served within `stale-if-error`: it carries its own variant, so only waiters
    /// whose request selects the same variant take it.
    private func staleOutcome(
        _ record: ResponseRecord, stale: StaleEntry, now: Double, fwdStatus: Int,
        requestFields: [HeaderField]
    ) -> FetchOutcome {
        let ttl = Int.saturating((stale.entry.lifetime.freshness - stale.entry.age(at: now)).rounded(.down))
        return FetchOutcome(
            status: record.status, headers: record.headers, body: ByteBuffer(bytes: record.body),
            cacheStatus: .staleIfError(ttl: ttl, fwdStatus: fwdStatus), age: Int.saturating(stale.entry.age(at: now)),
            shareable: true, vary: varyValues(record.headers, requestFields),
            servesCookieRequests: stale.entry.lifetime.explicitlyPublic)
    }

    /// A failed upstream call: the client gets a fixed reason (the upstream's address and the
    /// transport error stay in the node's log, never in a response).
    func errorOutcome(_ error: any Error, tenant: String, requestID: String) -> FetchOutcome {
        let edgeError = error as? EdgeError ?? EdgeError(.upstreamUnavailable, "upstream request failed")
        runtime.events.throttledWarning(
            "upstream_failed:\(tenant)", "upstream request failed",
            metadata: ["tenant": "\(tenant)", "error": "\(edgeError.message)", "request_id": "\(requestID)"])
        let response: EdgeResponse
        switch edgeError.code {
        case .upstreamTimeout:
            response = .jsonError(
                .gatewayTimeout, code: "upstream_timeout", detail: "the upstream did not answer in time")
        case .badRequest:
            response = .jsonError(.badRequest, code: "bad_request", detail: "the request cannot be sent upstream")
        default:
            response = .jsonError(
                .badGateway, code: "upstream_unavailable", detail: "the upstream could not be reached")
        }
        return FetchOutcome(
            status: Int(response.status.code), headers: response.headers.fields, body: response.body ?? ByteBuffer(),
            cacheStatus: .miss(stored: false, detail: "upstream-error"), age: nil, shareable: true, vary: [])
    }

    private func openRecord(_ stale: StaleEntry, cache: TenantCache) -> ResponseRecord? {
        guard
            let plaintext = try? cache.cipher.open(
                stale.entry.sealed, aad: cache.aad(stale.storageKey, for: stale.entry)),
            let record = ResponseRecord(decoding: plaintext)
        else {
            decryptFailed(
                cache, storageKey: stale.storageKey, entry: stale.entry,
                detail: "stale entry failed to open; fetched anew")
            return nil
        }
        return record
    }

    private func varyValues(_ responseHeaders: [HeaderField], _ requestHeaders: [HeaderField]) -> [(
        name: String, value: String?
    )] {
        StoragePolicy.varyNames(from: responseHeaders).map { ($0, requestHeaders.combined($0)) }
    }

    // MARK: requests that are not cached

    /// Methods other than GET/HEAD go straight to the upstream; when they are unsafe and succeed
    /// they invalidate the stored responses for their target (RFC 9111 4.4). `OPTIONS` never does.
    func forwardUncacheable(_ request: EdgeRequest, context: RequestContext, on eventLoop: any EventLoop)
        -> EventLoopFuture<TrafficAnswer>
    {
        let cache = context.cache
        let invalidates = !StoragePolicy.isSafeMethod(request.head.method.rawValue)
        return passThrough(request, context: context, status: .uncacheableMethod, on: eventLoop).flatMap { answer in
            guard invalidates, (200..<400).contains(Int(answer.response.status.code)) else {
                return eventLoop.makeSucceededFuture(answer)
            }
            let invalidation = PurgeRequest(tenant: cache.tenant.id, keys: [request.head.uri])
            return runtime.purge(invalidation, cache: cache, on: eventLoop).map { _ in answer }
        }
    }

    /// Forwards a request as it is and stores nothing.
    func passThrough(_ request: EdgeRequest, context: RequestContext, status: CacheStatus, on eventLoop: any EventLoop)
        -> EventLoopFuture<TrafficAnswer>
    {
        let cache = context.cache
        guard let upstream = UpstreamURL(parsing: cache.tenant.upstream) else {
            return eventLoop.makeSucceededFuture(
                TrafficAnswer(response: .jsonError(.badGateway, code: "upstream_unavailable"), status: status))
        }
        let forwarded = forwardHeaders(request, tenant: cache.tenant, forStorage: false)
        var headers = forwarded.0
        let correlation = forwarded.1
        let span = tracedFetch(request, tenant: cache.tenant.id, headers: &headers)
        return runtime.upstream.fetch(
            upstream: upstream, method: request.head.method, target: request.head.uri,
            headers: headers, body: request.body, counters: cache.counters, trace: context.trace,
            requestID: correlation.requestID, on: eventLoop
        )
        .always { span?.finish($0) }
        .map { response in
            var fields = response.headers
            let upstreamAge = fields.first("age").flatMap { CacheControl.deltaSeconds($0.trimmingSpaces()) }
            _ = StoredHeaders.prepare(&fields)
            let outcome = FetchOutcome(
                status: response.status, headers: fields, body: response.body, cacheStatus: status,
                age: upstreamAge, shareable: false, vary: [])
            return TrafficAnswer(response: makeResponse(outcome, request: request), status: status)
        }
        .flatMapError { error in
            eventLoop.makeSucceededFuture(
                TrafficAnswer(
                    response: makeResponse(
                        errorOutcome(error, tenant: cache.tenant.id, requestID: correlation.requestID),
                        request: request), status: status))
        }
    }

    /// With tracing on, a span for this upstream fetch, whose context goes upstream in `traceparent`.
    func tracedFetch(_ request: EdgeRequest, tenant: String, headers: inout HTTPHeaders) -> UpstreamSpan? {
        guard let tracing = runtime.tracing else { return nil }
        let span = tracing.start("upstream fetch", clientHeaders: request.head.headers, kind: .client, tenant: tenant)
        span.attributes["http.request.method"] = request.head.method.rawValue
        tracing.inject(span, into: &headers)
        return UpstreamSpan(span: span)
    }

    /// The request headers sent upstream: hop-by-hop removed, forwarding headers set by the node
    /// (`ForwardingHeaders`), for fetches meant for storage the client's own conditionals and
    /// ranges removed, since the cache needs the full representation, and the request id and trace
    /// context the node vouches for (`UpstreamCorrelation`) in place of the client's.
    func forwardHeaders(_ request: EdgeRequest, tenant: TenantConfig, forStorage: Bool)
        -> (HTTPHeaders, UpstreamCorrelation)
    {
        var fields = request.head.headers.fields
        // Several `traceparent` lines make none valid (W3C); several `tracestate` lines are one list.
        let parents = fields.filter { $0.name.caseInsensitiveEquals("traceparent") }
        let states = fields.filter { $0.name.caseInsensitiveEquals("tracestate") }.map(\.value)
        let correlation = UpstreamCorrelation(
            requestID: fields.first("x-request-id")?[...],
            traceparent: parents.count == 1 ? parents[0].value[...] : nil,
            tracestate: states.isEmpty ? nil : states.joined(separator: ",")[...], ids: runtime.requestIDs)
        for name in ["x-request-id", "traceparent", "tracestate"] { fields.remove(name) }
        HopByHop.strip(&fields)
        if forStorage {
            for name in ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"] {
                fields.remove(name)
            }
        }
        fields.remove("content-length")
        let peer = request.peerAddress
        let trusted = peer.map { runtime.geo.trustedProxies.isTrusted($0) } ?? false
        ForwardingHeaders.apply(to: &fields, peer: peer, peerIsTrusted: trusted, canonicalHost: tenant.canonicalHost)
        fields.append(HeaderField("x-request-id", correlation.requestID))
        fields.append(HeaderField("traceparent", correlation.traceparent.header))
        if let state = correlation.tracestate { fields.append(HeaderField("tracestate", state)) }
        return (HTTPHeaders(fields: fields), correlation)
    }
}
