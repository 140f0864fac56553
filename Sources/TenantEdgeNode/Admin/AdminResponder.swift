import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The admin listener: purge, stats, metrics, health, config pushes. Never shares a port with
/// tenant traffic. Bearer tokens are hashed and compared in constant time; they are never logged.
struct AdminResponder: HTTPResponder {
    let runtime: EdgeRuntime
    let bundles: ConfigBundleGate
    let isReady: @Sendable () -> Bool

    let fixedHeaders = FixedHeaderLines([("cache-control", "no-store")])

    /// The calls with a body (purge, config) are refused at their head without a token for them, so
    /// a stranger's upload is never read, let alone parsed.
    func screen(_ request: EdgeRequest) -> EdgeResponse? {
        let head = request.head
        let path = QueryString.split(target: head.uri).path
        switch (head.method, path) {
        case (.POST, "/_edge/purge"): return authorize(request, scope: .purge, tenant: nil)
        case (.PUT, "/_edge/config"): return authorize(request, scope: .config, tenant: "*")
        default: return nil
        }
    }

    func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        let path = QueryString.split(target: request.head.uri).path
        if request.head.method == .POST, path == "/_edge/purge" {
            return purge(request, on: eventLoop)
        }
        if request.head.method == .PUT, path == "/_edge/config" {
            return pushConfig(request, on: eventLoop)
        }
        return route(request, on: eventLoop)
    }

    func route(_ request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        let path = String(QueryString.split(target: request.head.uri).path)
        switch (request.head.method, path) {
        case (.GET, "/healthz"):
            return .now(.json(.ok, "{\"status\":\"ok\"}"))
        case (.GET, "/readyz"):
            return .now(
                isReady() ? .json(.ok, "{\"status\":\"ready\"}") : .jsonError(.serviceUnavailable, code: "not_ready"))
        case (.GET, "/metrics"):
            // Open when `monitoring` is on (an internal scrape); a token, when given or required,
            // limits the tenant series to the tenants it may see.
            let token = bearerToken(request)
            if !runtime.config.monitoring || tokenDigest(request) != nil,
                let denied = authorize(request, scope: .read, tenant: nil)
            {
                return .now(denied)
            }
            return .later(
                runtime.sharedTierBytes(of: runtime.table.tenants.map(\.id), on: eventLoop).map { l2Bytes in
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
                    var body = runtime.metrics.render(runtime: runtime, l2Bytes: l2Bytes)
                    if let token, !token.tenants.contains("*") {
                        body = MetricsScope.filter(body, allowed: token.allows(tenant:))
                    }
                    return EdgeResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: body))
                })
        case (.GET, "/_edge/stats"):
            if let denied = authorize(request, scope: .read, tenant: nil) { return .now(denied) }
            let token = bearerToken(request)
            let visible = runtime.table.tenants.map(\.id).filter { token?.allows(tenant: $0) ?? false }
            return .later(
                runtime.sharedTierBytes(of: visible, on: eventLoop).map { l2Bytes in
                    .json(.ok, statsJSON(visibleTo: token, l2Bytes: l2Bytes))
                })
        case (.GET, "/_edge/dashboard"):
            return .now(dashboard())
        case (.GET, "/_edge/dashboard/data"):
            return dashboardData(request, on: eventLoop)
        case (.GET, _) where path.hasPrefix("/_edge/purges/"):
            return purgeStatus(request, id: path.dropFirst("/_edge/purges/".count), on: eventLoop)
        case (.GET, "/_edge/route"):
            if let denied = authorize(request, scope: .read, tenant: nil) { return .now(denied) }
            return .now(route(request))
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/_edge/stats"), (_, "/_edge/purge"),
            (_, "/_edge/config"),
            (_, "/_edge/route"), (_, "/_edge/dashboard"), (_, "/_edge/dashboard/data"):
            return .now(.jsonError(.methodNotAllowed, code: "method_not_allowed"))
        default:
            return .now(.jsonError(.notFound, code: "not_found"))
        }
    }

    private func purge(_ request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        // Authenticated before the body is read: nothing a stranger sends is parsed or logged.
        if let denied = authorize(request, scope: .purge, tenant: nil) { return .now(denied) }
        if runtime.awaitingBundle.load(ordering: .relaxed) {  // its tenants are not known yet (decision 63)
            return .now(.jsonError(.serviceUnavailable, code: "config_pending"))
        }
        let body = request.body.map { Array($0.readableBytesView) } ?? []
        let purge: PurgeRequest
        do { purge = try PurgeRequest(json: body) } catch {
            return .now(.jsonError(.badRequest, code: "bad_request", detail: error.message))
        }
        if let denied = authorize(request, scope: .purge, tenant: purge.tenant) { return .now(denied) }
        guard let cache = runtime.caches[purge.tenant] else {
            return .now(
                .jsonError(.notFound, code: "unknown_tenant", detail: "no tenant '\(purge.tenant)' on this node"))
        }
        let (logger, audit, runtime) = (runtime.logger, runtime.audit, runtime)
        let actor = tokenDigest(request).map { "admin:" + Hex.encode($0.prefix(6)) } ?? "admin"
        return .later(
            runtime.purgeReporting(purge, cache: cache, on: eventLoop).map { purged, reach in
                let id = runtime.regionPeers.purged(
                    tenant: purge.tenant, removed: purged, reach: reach, runtime: runtime, on: eventLoop)
                logger.info("purge", metadata: ["tenant": "\(purge.tenant)", "purged": "\(purged)"])
                audit.record(
                    "purge", actor: actor, tenant: purge.tenant,
                    details: [
                        "keys": String(purge.keys.count), "tags": String(purge.tags.count),
                        "prefixes": String(purge.prefixes.count),
                        "all": String(purge.all), "purged": String(purged),
                    ])
                // `id`: what `/_edge/purges/<id>` reports each node's result under.
                return .json(.ok, "{\"purged\":\(purged),\"id\":\(JSONText.quote(id.description))}")
            })
    }

    /// `PUT /_edge/config`: a signed bundle from the origin. Verifying, persisting (fsync) and
    /// building the tenant set block, so they run on NIO's blocking pool, never on the event loop.
    private func pushConfig(_ request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        // A bundle replaces every tenant's settings: only a token for all tenants may push one.
        if let denied = authorize(request, scope: .config, tenant: "*") { return .now(denied) }
        let body = request.body.map { Array($0.readableBytesView) } ?? []
        let signature = request.head.headers.first(name: "edge-signature")
        let actor = tokenDigest(request).map { "admin:" + Hex.encode($0.prefix(6)) } ?? "admin"
        let bundles = self.bundles
        return .later(
            NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { () -> EdgeResponse in
                do throws(ConfigBundleGate.Rejection) {
                    let version = try bundles.apply(body: body, signatureHeader: signature, actor: actor)
                    return .json(.ok, "{\"version\":\(version)}")
                } catch {
                    return .jsonError(
                        HTTPResponseStatus(statusCode: error.status), code: error.code, detail: error.reason)
                }
            }.flatMapErrorThrowing { _ in .jsonError(.serviceUnavailable, code: "shutting_down") })
    }

    /// `GET /_edge/route?ip=A&tenant=T`: the region this node would send that client to, and why.
    /// Only for a tenant the token may see; another tenant is the same `400` as an unknown one.
    private func route(_ request: EdgeRequest) -> EdgeResponse {
        let query = QueryString.parse(QueryString.split(target: request.head.uri).query)
        let table = runtime.table
        let token = bearerToken(request)
        guard let ip = query["ip"], !ip.isEmpty, let tenantID = query["tenant"],
            token?.allows(tenant: tenantID) == true,
            let tenant = table.tenants.first(where: { $0.id == tenantID })
        else {
            return .jsonError(
                .badRequest, code: "bad_request", detail: "give ip= and the tenant= of a tenant on this node")
        }
        let location: RegionRouter.Location?
        do {
            location = try runtime.geo.locate(ip)  // a broken record is counted and gives the fallback
        } catch {
            return .jsonError(.badRequest, code: "bad_request", detail: "ip: not an IPv4 or IPv6 address")
        }
        let decision = RegionRouter.choose(
            location: location, tenant: tenant, regions: table.regions,
            healthy: runtime.geo.healthy(table.regions), home: runtime.config.node.region)
        func number(_ value: Double?) -> JSONValue { value.map { .number(($0 * 10_000).rounded() / 10_000) } ?? .null }
        let answer = JSONValue.object([
            "ip": .string(ip), "country": location?.country.map { .string($0) } ?? .null,
            "lat": number(location?.latitude), "lon": number(location?.longitude), "region": .string(decision.region),
            "distance_km": decision.distanceKm.map { .integer(Int(max(0, min($0, 1e9)).rounded())) } ?? .null,
            "reason": .string(decision.reason),
        ])
        return .json(.ok, (try? answer.canonicalText) ?? "{}")
    }

    func bearerToken(_ request: EdgeRequest) -> AdminTokens.Token? {
        guard let digest = tokenDigest(request) else { return nil }
        return runtime.adminTokens.match(digest: digest)
    }

    private func tokenDigest(_ request: EdgeRequest) -> [UInt8]? {
        guard let value = request.head.headers.first(name: "authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return OpenSSL.sha256(Array(parts[1].trimmingSpaces().utf8))
    }

    /// Nil when allowed; otherwise the 401/403 response. Failures count as `auth_failed` events,
    /// which name a tenant only when it is one this node serves (never a string from the request),
    /// and are throttled in the audit log (`EdgeRuntime.securityEvent`).
    func authorize(_ request: EdgeRequest, scope: AdminTokens.Scope, tenant: String?) -> EdgeResponse? {
        let known = tenant.flatMap { id in runtime.caches[id] != nil ? id : nil } ?? "-"
        switch runtime.adminTokens.authorize(digest: tokenDigest(request), scope: scope, tenant: tenant) {
        case .allowed:
            return nil
        case .unauthenticated:
            runtime.events.record(
                "auth_failed", tenant: known, source: Self.source(of: request), detail: "missing or unknown admin token"
            )
            var response = EdgeResponse.jsonError(
                .unauthorized, code: "unauthorized", detail: "a valid bearer token is required")
            response.headers.add(name: "www-authenticate", value: "Bearer")
            return response
        case .forbidden:
            // One reason whether or not the tenant exists here, so a scoped token cannot probe for tenants.
            let reason =
                tenant == nil
                ? "token lacks the '\(scope.rawValue)' scope" : "token is not allowed for this call's tenant"
            runtime.events.record("auth_failed", tenant: known, source: Self.source(of: request), detail: reason)
            return .jsonError(.forbidden, code: "forbidden", detail: reason)
        }
    }

    /// Where an admin request came from, for security events: the peer's address.
    static func source(of request: EdgeRequest) -> String { request.peer?.ipAddress ?? "-" }

    /// Totals over every tenant's L2: shown only to a token for all tenants.
    private func redisStats(visibleTo token: AdminTokens.Token?) -> JSONValue? {
        guard let up = runtime.l2IsUp else { return nil }
        guard token?.tenants.contains("*") == true else { return .object(["up": .bool(up)]) }
        let tiers = runtime.allL2Tiers
        func total(_ counter: (TierCounters) -> Int) -> Int { tiers.reduce(0) { $0 + counter($1.counters) } }
        return .object([
            "up": .bool(up), "tiers": .integer(tiers.count),
            "hits": .integer(total { $0.hits.load(ordering: .relaxed) }),
            "misses": .integer(total { $0.misses.load(ordering: .relaxed) }),
            "writes": .integer(total { $0.writes.load(ordering: .relaxed) }),
            "errors": .integer(total { $0.errors.load(ordering: .relaxed) }),
            "bytes_read": .integer(total { $0.bytesRead.load(ordering: .relaxed) }),
            "bytes_written": .integer(total { $0.bytesWritten.load(ordering: .relaxed) }),
            "fenced_writes": .integer(total { $0.fencedWrites.load(ordering: .relaxed) }),
            "quota_refused_writes": .integer(total { $0.quotaRefusedWrites.load(ordering: .relaxed) }),
            "calls": .integer(total { $0.calls.load(ordering: .relaxed) }),
            "wait_ms_total": .integer(total { $0.callDuration.snapshot().sumNanoseconds } / 1_000_000),
            "connection_waits": .integer(tiers.reduce(0) { $0 + $1.connectionWaits }),
        ])
    }

    /// `"geo"`: the database, the decision cache, failed lookups and reloads, and which regions may be chosen.
    private func geoStats() -> JSONValue {
        let geo = runtime.geo
        let regions = runtime.table.regions
        let healthy = geo.healthy(regions)
        return .object([
            "database": .bool(geo.hasDatabase), "decisions_cached": .integer(geo.cachedDecisions),
            "cache_hits": .integer(geo.cacheHits),
            "lookups": .integer(geo.cacheMisses),
            "lookup_errors": .integer(geo.lookupErrors.load(ordering: .relaxed)),
            "reloads": .integer(geo.reloads.load(ordering: .relaxed)),
            "reload_failures": .integer(geo.reloadFailures.load(ordering: .relaxed)),
            "regions": .object(
                Dictionary(regions.map { ($0.name, .string(healthy.contains($0.name) ? "up" : "down")) }) { first, _ in
                    first
                }),
        ])
    }

    /// Per-tenant figures, limited to the tenants the token may see. `l2Bytes`: live bytes in Redis
    /// per tenant, for tenants with an L2 whose Redis answered.
    func statsJSON(visibleTo token: AdminTokens.Token?, l2Bytes: [String: Int]) -> String {
        var tenants: [String: JSONValue] = [:]
        for tenant in runtime.table.tenants where token?.allows(tenant: tenant.id) ?? false {
            guard let cache = runtime.caches[tenant.id] else { continue }
            let occupancy = cache.occupancy()
            let counters = cache.counters
            var figures: [String: JSONValue] = [
                "hits": .integer(counters.total(.hit)),
                "misses": .integer(counters.total(.miss) + counters.total(.revalidated)),
                "stale": .integer(counters.total(.stale)),
                "bypasses": .integer(counters.total(.bypass)),
                "errors": .integer(counters.total(.error)),
                "bytes": .integer(occupancy.bytes), "entries": .integer(occupancy.entries),
                "evictions": .integer(occupancy.evictions), "quota_bytes": .integer(occupancy.quota),
                "encrypted": .bool(cache.cipher.encrypts), "key_version": .integer(Int(cache.cipher.keyVersion)),
                "entries_by_key_version": .object(
                    Dictionary(
                        uniqueKeysWithValues: cache.entriesByKeyVersion().map { ("\($0.key)", .integer($0.value)) })),
            ]
            if let bytes = l2Bytes[tenant.id] { figures["redis_bytes"] = .integer(bytes) }
            tenants[tenant.id] = .object(figures)
        }
        var tiers: [String: JSONValue] = ["memory": .object(["up": .bool(true)])]
        tiers["redis"] = redisStats(visibleTo: token)
        let stats = JSONValue.object([
            "node": .object([
                "id": .string(runtime.config.node.id), "region": .string(runtime.config.node.region),
                "uptime_s": .integer(Int(max(0, min(runtime.clock.now() - runtime.startedAt, 1e15)))),
            ]),
            "config_version": .integer(runtime.table.version), "tiers": .object(tiers),
            "config_pending": .bool(runtime.awaitingBundle.load(ordering: .relaxed)),
            "invalidation": .object([
                "cursor": .integer(runtime.feedStatus.cursor.load(ordering: .relaxed)),
                "lag_seconds": .integer(Int(max(0, min(runtime.feedStatus.lag(now: runtime.clock.now()) ?? 0, 1e15)))),
            ]),
            "security_events": .integer(runtime.events.count.load(ordering: .relaxed)), "geo": geoStats(),
            "tenants": .object(tenants),
        ])
        return (try? stats.canonicalText) ?? "{}"
    }
}
