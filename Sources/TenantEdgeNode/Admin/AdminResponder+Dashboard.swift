import NIOCore
import NIOHTTP1
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The operator's dashboard on the admin listener: the page itself (`GET /_edge/dashboard`, no
/// token: it holds no data, and asks for the token in a form), the JSON it polls
/// (`/_edge/dashboard/data`, `read` scope, only the tenants the token may see), and the result of a
/// purge per node (`/_edge/purges/<id>`).
extension AdminResponder {
    /// The page, with a Content-Security-Policy that allows its own inline script and style by hash
    /// and nothing from anywhere else.
    static let dashboardPage = DashboardPage(html: PackageResources.node_dashboard_html)

    func dashboard() -> EdgeResponse { Self.dashboardPage.response() }

    func dashboardData(_ request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        if let denied = authorize(request, scope: .read, tenant: nil) { return .now(denied) }
        let token = bearerToken(request)
        let visible = runtime.table.tenants.map(\.id).filter { token?.allows(tenant: $0) ?? false }
        let visibleSet = Set(visible)
        let everything = token?.tenants.contains("*") == true
        let runtime = self.runtime
        let l2Bytes = runtime.sharedTierBytes(of: visible, on: eventLoop)
        let nodes = runtime.regionPeers.nodes(runtime, on: eventLoop)
        return .later(
            l2Bytes.and(nodes).map { l2Bytes, nodes in
                let tenants = Dictionary(
                    uniqueKeysWithValues: visible.compactMap { id in
                        runtime.caches[id].map { (id, Self.tenantFigures($0, l2Bytes: l2Bytes[id])) }
                    })
                let events = runtime.events.recent.filter {
                    everything || token?.tenants.contains($0.key.tenant) == true
                }
                let answer = JSONValue.object([
                    "time": .number(runtime.clock.now()),
                    "node": .object([
                        "id": .string(runtime.config.node.id), "region": .string(runtime.config.node.region),
                        "uptime_s": .integer(Int(max(0, min(runtime.clock.now() - runtime.startedAt, 1e15)))),
                        "config_version": .integer(runtime.table.version),
                    ]),
                    "token": .object([
                        "scopes": .array(
                            AdminTokens.Scope.allCases.filter { token?.allows($0) == true }.map { .string($0.rawValue) }
                        ),
                        "tenants": .array((token?.tenants ?? []).map { .string($0) }),
                    ]),
                    "tenants": .object(tenants),
                    "nodes": .array(
                        nodes.map {
                            Self.nodeFigures($0, self: runtime.config.node.id, now: runtime.clock.now(), visibleSet)
                        }),
                    "events": .array(events.map(Self.eventFigures)),
                ])
                return .json(.ok, (try? answer.canonicalText) ?? "{}")
            })
    }

    /// `GET /_edge/purges/<tenant>:<fence>`: the nodes that have applied that purge. For a token
    /// that may read or purge the tenant; any other tenant is the same `404` as an unknown one.
    func purgeStatus(_ request: EdgeRequest, id text: Substring, on eventLoop: any EventLoop) -> ResponderResult {
        guard let token = bearerToken(request) else {
            return .now(
                authorize(request, scope: .read, tenant: nil) ?? .jsonError(.unauthorized, code: "unauthorized"))
        }
        guard let id = PurgeID(text), runtime.caches[id.tenant] != nil, token.allows(tenant: id.tenant),
            token.allows(.read) || token.allows(.purge)
        else {
            return .now(.jsonError(.notFound, code: "not_found", detail: "no purge with that id for this token"))
        }
        return .later(
            runtime.regionPeers.acknowledgements(of: id, runtime: runtime, on: eventLoop).map { acks in
                let nodes = acks.mapValues { ack in
                    JSONValue.object(["applied_at": .number(ack.at), "purged": .integer(ack.removed)])
                }
                let answer = JSONValue.object([
                    "id": .string(id.description), "tenant": .string(id.tenant), "nodes": .object(nodes),
                ])
                return .json(.ok, (try? answer.canonicalText) ?? "{}")
            })
    }

    private static func tenantFigures(_ cache: TenantCache, l2Bytes: Int?) -> JSONValue {
        let counters = cache.counters
        let occupancy = cache.occupancy()
        let latency = counters.duration.snapshot()
        var bytes: [String: JSONValue] = [
            "memory": .integer(occupancy.bytes), "memory_quota": .integer(occupancy.quota),
        ]
        if let l2Bytes { bytes["redis"] = .integer(l2Bytes) }
        return .object([
            "requests": .object(
                Dictionary(
                    uniqueKeysWithValues: TenantCounters.Kind.allCases.map { ($0.label, .integer(counters.total($0))) }
                )
                .merging(["l2_hit": .integer(counters.sharedTierHits)]) { first, _ in first }),
            "bytes": .object(bytes), "entries": .integer(occupancy.entries), "evictions": .integer(occupancy.evictions),
            "latency": .object([
                "bounds_s": .array(TenantCounters.durationBoundsSeconds.map { .number($0) }),
                "cumulative": .array(latency.cumulative.map { .integer($0) }),
            ]),
            "key_version": .integer(Int(cache.cipher.keyVersion)),
            "entries_by_key_version": .object(
                Dictionary(
                    uniqueKeysWithValues: cache.entriesByKeyVersion().map { ("\($0.key)", .integer($0.value)) })),
        ])
    }

    /// A node's row; its key versions only for tenants the token may see.
    private static func nodeFigures(_ beacon: NodeBeacon, self id: String, now: Double, _ visible: Set<String>)
        -> JSONValue
    {
        let lag = beacon.lagSeconds.map { JSONValue.number(min($0, 1e12)) } ?? .null
        return .object([
            "id": .string(beacon.id), "self": .bool(beacon.id == id), "region": .string(beacon.region),
            "seen_s_ago": .number(max(0, min(now - beacon.at, 1e12))), "cursor": .integer(beacon.cursor),
            "lag_s": lag, "config_version": .integer(beacon.configVersion),
            "tiers": .object(beacon.tiers.mapValues { .string($0) }),
            "key_versions": .object(
                beacon.keyVersions.filter { visible.contains($0.key) }.mapValues {
                    .array($0.map { .integer(Int($0)) })
                }),
        ])
    }

    private static func eventFigures(_ burst: SecurityEventWindow.Burst) -> JSONValue {
        .object([
            "kind": .string(burst.key.kind), "tenant": .string(burst.key.tenant), "source": .string(burst.key.source),
            "first": .number(burst.first), "last": .number(burst.last), "count": .integer(burst.count),
        ])
    }
}
