import Synchronization
import TenantEdgeCore

/// What the origin has seen of its nodes, for the fleet dashboard: each node's last feed poll and
/// cursor, the bundle version it was last pushed or pulled, and the last publishes with each node's
/// outcome. Kept in memory per replica (a node polls one replica at a time; after a restart it
/// fills again within one poll). Keys are bounded by the config: node ids of `regions[].nodes`
/// and of node tokens, or a token's digest prefix for a region-wide token, never request text.
final class FleetStatus: Sendable {
    struct Node: Sendable, Equatable {
        var region: String
        var lastPoll: Double?
        var cursor: Int?
        var bundleVersion: Int?
        var push: String?
    }

    struct Publish: Sendable, Equatable {
        var version: Int
        var at: Double
        /// Node id → `applied`, `failed` or `pending`.
        var nodes: [String: String]
    }

    static let publishesKept = 20
    private let state = Mutex<(nodes: [String: Node], publishes: [Publish])>(([:], []))

    /// The nodes the config names, so they show before their first poll.
    init(regions: [OriginConfig.Region]) {
        state.withLock { state in
            for region in regions {
                for node in region.nodes { state.nodes[node.id] = Node(region: region.region.name) }
            }
        }
    }

    func polled(node: String, region: String, after cursor: Int, at now: Double) {
        state.withLock { state in
            var entry = state.nodes[node] ?? Node(region: region)
            entry.lastPoll = now
            entry.cursor = cursor
            state.nodes[node] = entry
        }
    }

    /// A node pulled the bundle of `version`: it has it (or will in a moment), whatever a push said.
    func pulled(node: String, region: String, version: Int) {
        state.withLock { state in
            var entry = state.nodes[node] ?? Node(region: region)
            entry.bundleVersion = max(entry.bundleVersion ?? 0, version)
            state.nodes[node] = entry
            for index in state.publishes.indices where state.publishes[index].version <= version {
                if state.publishes[index].nodes[node] != nil { state.publishes[index].nodes[node] = "applied" }
            }
        }
    }

    /// A publish and what each push answered (`ok`, `ahead: N`, or an error); `expected` nodes
    /// without an answer (no admin URL: they pull) are `pending` until they pull it.
    func published(version: Int, at now: Double, outcomes: [String: String], expected: [String]) {
        state.withLock { state in
            var nodes = Dictionary(expected.map { ($0, "pending") }, uniquingKeysWith: { first, _ in first })
            for (node, outcome) in outcomes {
                let applied = outcome == "ok"
                nodes[node] = applied ? "applied" : "failed"
                guard var entry = state.nodes[node] else { continue }
                entry.push = applied ? "ok" : "failed"
                if applied { entry.bundleVersion = max(entry.bundleVersion ?? 0, version) }
                state.nodes[node] = entry
            }
            state.publishes.append(Publish(version: version, at: now, nodes: nodes))
            if state.publishes.count > Self.publishesKept {
                state.publishes.removeFirst(state.publishes.count - Self.publishesKept)
            }
        }
    }

    var snapshot: (nodes: [String: Node], publishes: [Publish]) { state.withLock { $0 } }
}
