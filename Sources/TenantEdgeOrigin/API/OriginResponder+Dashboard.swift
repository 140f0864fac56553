import Foundation
import NIOCore
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The fleet dashboard on the origin's HTTPS listener: the page (`GET /v1/dashboard`, no token: it
/// holds no data and asks for an admin token in a form) and the JSON it polls
/// (`GET /v1/dashboard/data`, admin token): regions and their nodes with last poll, cursor lag and
/// bundle version, the last publishes and the erasures with each node's confirmation.
extension OriginResponder {
    static let dashboardPage = DashboardPage(html: PackageResources.fleet_dashboard_html)

    func dashboardData(_ request: EdgeRequest) -> EdgeResponse {
        guard isAdminRequest(request) else { return unauthorized(request, "an admin token is required") }
        let now = clock.now()
        let head = log.head
        let (nodes, publishes) = fleet.snapshot
        var byRegion: [String: [JSONValue]] = [:]
        for (id, node) in nodes.sorted(by: { $0.key < $1.key }) {
            byRegion[node.region, default: []].append(
                .object([
                    "id": .string(id),
                    "last_poll_s_ago": node.lastPoll.map { .number(max(0, min(now - $0, 1e12))) } ?? .null,
                    "cursor": node.cursor.map { .integer($0) } ?? .null,
                    "lag_events": node.cursor.map { .integer(max(0, head - $0)) } ?? .null,
                    "bundle_version": node.bundleVersion.map { .integer($0) } ?? .null,
                    "push": node.push.map { .string($0) } ?? .null,
                ]))
        }
        let regionNames =
            config.regions.map(\.region.name)
            + byRegion.keys.sorted().filter { name in
                !config.regions.contains { $0.region.name == name }
            }
        let allNodes = nodes.keys.sorted()
        let answer = JSONValue.object([
            "time": .number(now),
            "origin": .object([
                "head_seq": .integer(head), "config_version": .integer(registry.publishedVersion),
                "store": .string(sharedStore ? "postgres" : "sqlite"),
            ]),
            "regions": .array(
                regionNames.map { .object(["name": .string($0), "nodes": .array(byRegion[$0] ?? [])]) }),
            "publishes": .array(
                publishes.reversed().map { publish in
                    .object([
                        "version": .integer(publish.version), "at": .number(publish.at),
                        "nodes": .object(publish.nodes.mapValues { .string($0) }),
                    ])
                }),
            "erasures": .array(
                erasures.all().sorted { $0.requestedAt > $1.requestedAt }.prefix(Self.erasuresShown).map { record in
                    .object([
                        "tenant": .string(record.tenant ?? ""),
                        "at": Self.epoch(record.requestedAt).map { .number($0) } ?? .null,
                        "nodes": .object(
                            Dictionary(
                                uniqueKeysWithValues: (allNodes
                                    + record.confirmed.keys.filter { !allNodes.contains($0) })
                                    .map { node in
                                        (node, record.confirmed[node].flatMap(Self.epoch).map { .number($0) } ?? .null)
                                    })),
                    ])
                }),
        ])
        return .json(.ok, (try? answer.canonicalText) ?? "{}")
    }

    /// The latest erasures the page lists (the compliance report has them all).
    static let erasuresShown = 50

    /// Seconds since the epoch of an RFC 3339 time the ledger wrote.
    static func epoch(_ text: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970
    }

    /// The fleet key of the node a token belongs to: its node id, or for a region-wide token the
    /// region and a short prefix of the token's digest (never the token).
    func fleetKey(_ request: EdgeRequest) -> (node: String, region: String)? {
        guard let token = nodeToken(request) else { return nil }
        if let node = token.node { return (node, token.region) }
        let prefix = tokenDigest(request).map { Hex.encode($0.prefix(4)) } ?? "?"
        return ("\(token.region)/token-\(prefix)", token.region)
    }
}
