import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The origin's HTTPS API (docs/origin.md): the invalidation log (`POST` for publishers,
/// long-poll `GET` for nodes), the tenant registry, publishing and pulling bundles. Tokens are
/// matched by SHA-256 in constant time and never logged.
struct OriginResponder: HTTPResponder {
    let config: OriginConfig
    let log: InvalidationLog
    let registry: TenantRegistry
    let pusher: BundlePusher
    let erasures: ErasureLedger
    /// The origin's own audit log (`<state_dir>/audit.jsonl`): registry, key and erasure events, with who asked.
    let audit: AuditLog
    /// What this replica has seen of the nodes, for the fleet dashboard.
    let fleet: FleetStatus
    let clock: any CacheClock
    /// Most events one feed answer carries; the node asks again at once for the rest.
    static let batchLimit = 1000
    /// Most bytes of events one feed answer carries (past its first event): a quarter of what a node
    /// downloads (`InvalidationFeed.maxAnswerBytes`), so the largest answer, one cap plus one
    /// maximal purge, always fits.
    static let batchBytes = 4 << 20
    /// Longest long poll the origin holds.
    static let maxWaitSeconds = 60

    let fixedHeaders = FixedHeaderLines([("cache-control", "no-store")])

    /// Whether other replicas write the same store (PostgreSQL): this one's copy may then fall behind.
    var sharedStore: Bool {
        if case .postgres = config.storage { return true }
        return false
    }

    func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        let (rawPath, rawQuery) = QueryString.split(target: request.head.uri)
        let path = String(rawPath)
        let query = QueryString.parse(rawQuery)
        switch (request.head.method, path) {
        case (.GET, "/healthz"):
            return .now(.json(.ok, #"{"status":"ok"}"#))
        case (.POST, "/v1/invalidations"):
            return publish(request, on: eventLoop)
        case (.GET, "/v1/invalidations"):
            guard let poller = fleetKey(request) else {
                return .now(unauthorized(request, "a node token is required"))
            }
            guard let after = Int(query["after"] ?? "0"), after >= 0, let wait = Int(query["wait"] ?? "0"), wait >= 0
            else {
                return .now(
                    .jsonError(.badRequest, code: "bad_request", detail: "after and wait must be whole numbers"))
            }
            fleet.polled(node: poller.node, region: poller.region, after: after, at: clock.now())
            return .later(feed(after: after, wait: min(wait, Self.maxWaitSeconds), on: eventLoop))
        case (.POST, _) where path.hasPrefix("/v1/tenants/") && path.hasSuffix("/keys/rotate"):
            return rotateKey(
                request, id: String(path.dropFirst("/v1/tenants/".count).dropLast("/keys/rotate".count)), on: eventLoop)
        case (.DELETE, _) where path.hasPrefix("/v1/tenants/") && path.contains("/keys/"):
            let parts = path.dropFirst("/v1/tenants/".count).components(separatedBy: "/keys/")
            return retireKey(request, id: parts[0], version: parts.count == 2 ? UInt32(parts[1]) : nil, on: eventLoop)
        case (.PUT, _) where path.hasPrefix("/v1/tenants/"), (.DELETE, _) where path.hasPrefix("/v1/tenants/"):
            return tenants(request, id: String(path.dropFirst("/v1/tenants/".count)), on: eventLoop)
        case (.POST, "/v1/config/publish"):
            return publishConfig(request, on: eventLoop)
        case (.POST, _) where path.hasPrefix("/v1/erasures/"):
            return confirmErasure(request, tenant: String(path.dropFirst("/v1/erasures/".count)), on: eventLoop)
        case (.GET, _) where path.hasPrefix("/v1/erasures/"):
            guard isAdminRequest(request) else { return .now(unauthorized(request, "an admin token is required")) }
            return .now(
                erasures.json(tenant: String(path.dropFirst("/v1/erasures/".count))).map { .json(.ok, $0) }
                    ?? .jsonError(.notFound, code: "no_erasure"))
        case (.GET, "/v1/report/compliance"):
            guard isAdminRequest(request) else { return .now(unauthorized(request, "an admin token is required")) }
            let (registry, log, erasures, audit) = (self.registry, self.log, self.erasures, self.audit)
            return .later(
                NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
                    do throws(EdgeError) {
                        return EdgeResponse.json(
                            .ok,
                            try ComplianceReport.json(
                                registry: registry, log: log, erasures: erasures,
                                audit: audit, now: Date().timeIntervalSince1970))
                    } catch {
                        return EdgeResponse.jsonError(
                            .internalServerError, code: "encode_failed", detail: error.message)
                    }
                })
        case (.GET, "/v1/dashboard"):
            return .now(Self.dashboardPage.response())
        case (.GET, "/v1/dashboard/data"):
            return .now(dashboardData(request))
        case (.GET, "/v1/config/bundle"):
            return .now(pullBundle(request, region: query["region"]))
        case (_, "/healthz"), (_, "/v1/invalidations"), (_, "/v1/config/publish"), (_, "/v1/config/bundle"),
            (_, "/v1/dashboard"), (_, "/v1/dashboard/data"):
            return .now(.jsonError(.methodNotAllowed, code: "method_not_allowed"))
        default:
            return .now(.jsonError(.notFound, code: "not_found"))
        }
    }

    /// Answers what follows `after` at once when there is any, else when something is published or
    /// `wait` seconds pass.
    private func feed(after: Int, wait: Int, on eventLoop: any EventLoop) -> EventLoopFuture<EdgeResponse> {
        let (log, shared) = (self.log, self.sharedStore)
        // A cursor above this replica's window may come from another replica that is ahead (a node
        // that failed over): the window catches up with the store before the cursor is judged. When
        // it cannot, or a shared store has not been read for a while, the answer is `503`: the node
        // moves to another replica rather than hear `410` or "nothing new" from a copy cut off.
        let current: EventLoopFuture<Bool> =
            after > log.head
            ? eventLoop.makeFutureWithTask { (try? await log.catchUp()) != nil } : eventLoop.makeSucceededFuture(true)
        return current.flatMap { caughtUp in
            guard caughtUp, !shared || log.isCurrent(within: Self.currencyMilliseconds) else {
                return eventLoop.makeSucceededFuture(
                    .jsonError(.serviceUnavailable, code: "log_unavailable", detail: "this replica cannot read the log")
                )
            }
            return self.answerFeed(after: after, wait: wait, on: eventLoop)
        }
    }

    /// How long a replica of a shared store may go without reading it before its feed answers `503`
    /// (it re-reads every second).
    static let currencyMilliseconds = 3000

    private func answerFeed(after: Int, wait: Int, on eventLoop: any EventLoop) -> EventLoopFuture<EdgeResponse> {
        let waited: EventLoopFuture<Void>
        if wait > 0, case .events(let events, _) = log.read(after: after, limit: 1), events.isEmpty {
            waited = log.wait(after: after, seconds: wait, on: eventLoop)
        } else {
            waited = eventLoop.makeSucceededFuture(())
        }
        return waited.map {
            switch log.read(after: after, limit: Self.batchLimit, maxBytes: Self.batchBytes) {
            case .expired(let head):
                return EdgeResponse.json(.gone, #"{"error":"cursor_expired","head":\#(head)}"#)
            case .events(let events, let head):
                let body = JSONValue.object(["head": .integer(head), "events": .array(events.map(\.json))])
                guard let text = try? body.canonicalText else {
                    return EdgeResponse.jsonError(.internalServerError, code: "encode_failed")
                }
                return EdgeResponse.json(.ok, text)
            }
        }
    }

    private func publish(_ request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        // Authenticated before the body is parsed; the refusal never echoes the body's tenant.
        guard mayPublish(request, tenant: nil) else {
            return .now(unauthorized(request, "a publisher token is required"))
        }
        guard (request.body?.readableBytes ?? 0) <= PurgeRequest.Limits.bodyBytes else {
            return .now(
                .jsonError(
                    .payloadTooLarge, code: "payload_too_large",
                    detail: "a purge is at most \(PurgeRequest.Limits.bodyBytes) bytes"))
        }
        let body = request.body.map { Array($0.readableBytesView) } ?? []
        let purge: PurgeRequest
        do { purge = try PurgeRequest(json: body) } catch {
            return .now(.jsonError(.badRequest, code: "bad_request", detail: error.message))
        }
        guard mayPublish(request, tenant: purge.tenant) else {
            return .now(unauthorized(request, "this token may not publish for that tenant"))
        }
        let log = self.log
        return .later(
            eventLoop.makeFutureWithTask { () -> EdgeResponse in
                do {
                    let event = try await log.append(purge)
                    return .json(.ok, #"{"seq":\#(event.seq)}"#)
                } catch {
                    return .jsonError(
                        .serviceUnavailable, code: "log_unavailable",
                        detail: "the invalidation could not be made durable")
                }
            })
    }

    // MARK: tokens

    func tokenDigest(_ request: EdgeRequest) -> [UInt8]? { digest(request) }

    private func digest(_ request: EdgeRequest) -> [UInt8]? {
        guard let value = request.head.headers.first(name: "authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return OpenSSL.sha256(Array(parts[1].trimmingSpaces().utf8))
    }

    func isAdminRequest(_ request: EdgeRequest) -> Bool { digest(request).map(isAdmin) ?? false }

    /// Who asked, for the audit log: a short prefix of the token's SHA-256, never the token.
    func actor(_ request: EdgeRequest) -> String {
        digest(request).map { "admin:" + Hex.encode($0.prefix(6)) } ?? "anonymous"
    }

    private func isAdmin(_ digest: [UInt8]) -> Bool {
        var found = false
        // no early exit
        for admin in config.tokens.admin where AdminTokens.constantTimeEquals(admin, digest) { found = true }
        return found
    }

    /// Admin tokens may publish for every tenant; publisher tokens for their tenants.
    private func mayPublish(_ request: EdgeRequest, tenant: String?) -> Bool {
        guard let digest = digest(request) else { return false }
        if isAdmin(digest) { return true }
        var allowed = false
        for publisher in config.tokens.publishers where AdminTokens.constantTimeEquals(publisher.sha256, digest) {
            allowed = tenant.map { publisher.tenants.contains("*") || publisher.tenants.contains($0) } ?? true
        }
        return allowed
    }

    /// The region a node token is bound to.
    func nodeRegion(_ request: EdgeRequest) -> String? { nodeToken(request)?.region }

    /// The node token a request carries: its region, and its node id when it is bound to one.
    func nodeToken(_ request: EdgeRequest) -> (region: String, node: String?)? {
        guard let digest = digest(request) else { return nil }
        var found: (region: String, node: String?)? = nil
        for node in config.tokens.nodes where AdminTokens.constantTimeEquals(node.sha256, digest) {
            found = (node.region, node.node)
        }
        return found
    }

    /// Calls with a body need some token of this origin before the body is read; which token may do
    /// what is decided after, per call.
    func screen(_ request: EdgeRequest) -> EdgeResponse? {
        guard request.head.method != .GET, request.head.method != .HEAD else { return nil }
        if isAdminRequest(request) || mayPublish(request, tenant: nil) || nodeRegion(request) != nil { return nil }
        return unauthorized(request, "a token of this origin is required")
    }

    func unauthorized(_ request: EdgeRequest, _ detail: String) -> EdgeResponse {
        digest(request) == nil
            ? .jsonError(.unauthorized, code: "unauthorized", detail: detail)
            : .jsonError(.forbidden, code: "forbidden", detail: detail)
    }

}
