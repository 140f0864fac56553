import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// The origin's invalidation log followed by nodes over real TLS through libcurl.
@Suite("Invalidation feed from the origin", .serialized)
struct InvalidationFeedTests {
    static let script: TestUpstream.Script = { request in
        .init(headers: [("Cache-Control", "max-age=300")], body: "\(request.header("host") ?? "?")|\(request.uri)")
    }

    static func node(
        _ origin: OriginHarness, state: String, id: String = "test-a", caFile: String? = nil,
        adjust: @escaping (inout EdgeConfig) -> Void = { _ in }
    ) async throws -> EdgeHarness {
        try await EdgeHarness.start(
            configure: { config in
                config.stateDir = state
                origin.follow(&config, directory: state, caFile: caFile)
                adjust(&config)
            }, nodeID: id, script: script)
    }

    static func cursor(_ edge: EdgeHarness) -> Int { edge.runtime.feedStatus.cursor.load(ordering: .relaxed) }

    /// The long poll is woken by the publish: with polls that wait 60 s, the event arrives well
    /// before any poll ends (its latency is measured in `make bench`, not here).
    @Test func aPurgePublishedAtTheOriginIsAMissOnTwoNodesWithoutWaitingForThePollToEnd() async throws {
        let origin = try await OriginHarness.start()
        let longPolls: (inout EdgeConfig) -> Void = { $0.origin?.pollWaitSeconds = 60 }
        let a = try await Self.node(origin, state: try temporaryDirectory("te-feed-a"), id: "node-a", adjust: longPolls)
        let b = try await Self.node(origin, state: try temporaryDirectory("te-feed-b"), id: "node-b", adjust: longPolls)
        for edge in [a, b] {
            _ = try await edge.get("/v1/item?id=7")
            #expect(try await edge.get("/v1/item?id=7").cacheStatus.contains("; hit"))
        }
        // First both feeds are connected and following (a node just started may still be in its TLS
        // handshake or first pull): a warm-up event, applied whenever.
        #expect(try await origin.publish(#"{"tenant":"globex","all":true}"#).body == #"{"seq":1}"#)
        try await waitUntil(seconds: 10, advancing: a.clock, b.clock) { Self.cursor(a) == 1 && Self.cursor(b) == 1 }
        let published = try await origin.publish(#"{"tenant":"acme","keys":["/v1/item?id=7"]}"#)
        #expect(published.status == 200 && published.body == #"{"seq":2}"#)
        try await waitUntil(seconds: 20, advancing: a.clock, b.clock) { Self.cursor(a) == 2 && Self.cursor(b) == 2 }
        #expect(a.node.feed?.failures == 0 && b.node.feed?.failures == 0, "woken by the publish, not by a retry")
        #expect(try await a.get("/v1/item?id=7").cacheStatus.contains("fwd=miss"))
        #expect(try await b.get("/v1/item?id=7").cacheStatus.contains("fwd=miss"))
        let stats = try await a.admin(.GET, "/_edge/stats").body
        #expect(stats.contains(#""invalidation":{"cursor":2,"#))
        await a.shutdown()
        await b.shutdown()
        await origin.stop()
    }

    @Test func restartsOfTheNodeAndOfTheOriginLoseNoEvent() async throws {
        let originState = try temporaryDirectory("te-origin")
        var origin = try await OriginHarness.start(stateDir: originState)
        let state = try temporaryDirectory("te-feed")
        var node = try await Self.node(origin, state: state)
        try await origin.publish(#"{"tenant":"acme","tags":["t1"]}"#)
        try await waitUntil(seconds: 10, advancing: node.clock) { Self.cursor(node) == 1 }
        await node.shutdown()
        // While the node is down: two events.
        try await origin.publish(#"{"tenant":"acme","keys":["/b"]}"#)
        try await origin.publish(#"{"tenant":"globex","all":true}"#)
        // The origin restarts and keeps its sequence.
        await origin.stop()
        origin = try await OriginHarness.start(stateDir: originState)
        #expect(try await origin.publish(#"{"tenant":"acme","prefixes":["/c/"]}"#).body == #"{"seq":4}"#)
        node = try await Self.node(origin, state: state)
        try await waitUntil(seconds: 10, advancing: node.clock) { Self.cursor(node) == 4 }
        // The feed is cut (origin stopped) and resumed: the event published after it arrives too.
        let port = origin.server.port
        await origin.stop()
        try await waitUntil(seconds: 10) { (node.node.feed?.failures ?? 0) > 0 }  // the node saw the cut
        origin = try await OriginHarness.start(stateDir: originState, port: port)
        try await origin.publish(#"{"tenant":"acme","keys":["/d"]}"#)
        try await waitUntil(seconds: 10, advancing: node.clock) { Self.cursor(node) == 5 }
        node.runtime.audit.flush()
        let audit = try String(contentsOfFile: state + "/audit.jsonl", encoding: .utf8)
        let seqs = audit.split(separator: "\n").filter { $0.contains(#""actor":"origin:feed""#) }.compactMap { line in
            line.range(of: #""seq":"(\d+)""#, options: .regularExpression).map { Int(line[$0].filter(\.isNumber))! }
        }
        #expect(seqs == [1, 2, 3, 4, 5], "every event applied once, in order")
        #expect(AuditChain.verify(audit, sha256: { OpenSSL.sha256($0) }) == .valid(entries: 5))
        await node.shutdown()
        await origin.stop()
    }

    @Test func anExpiredCursorMakesTheNodePurgeEverythingAndResumeFromTheHead() async throws {
        let origin = try await OriginHarness.start(retention: 2)
        for index in 1...5 { try await origin.publish(#"{"tenant":"acme","keys":["/k\#(index)"]}"#) }
        let state = try temporaryDirectory("te-feed-410")
        try Data("1".utf8).write(to: URL(fileURLWithPath: state + "/feed.cursor"))
        let node = try await Self.node(origin, state: state)
        try await waitUntil(seconds: 10, advancing: node.clock) { Self.cursor(node) == 5 }
        node.runtime.audit.flush()
        let audit = try String(contentsOfFile: state + "/audit.jsonl", encoding: .utf8)
        #expect(
            audit.contains(#""all":"true""#) && audit.contains(#""tenant":"acme""#)
                && audit.contains(#""tenant":"globex""#),
            "every tenant purged whole")
        // An origin that comes back with less than the node saw (restored from an old backup): the
        // node's cursor is above its head, so it purges everything again and follows the new head.
        await node.shutdown()
        await origin.stop()
        let rewound = try await OriginHarness.start()
        let again = try await Self.node(rewound, state: state)
        try await waitUntil(seconds: 10, advancing: again.clock) { Self.cursor(again) == 0 }
        await again.shutdown()
        await rewound.stop()
    }

    @Test func aServerCertificateFromAnotherCAIsRefused() async throws {
        let origin = try await OriginHarness.start()
        let other = try TestEnvironment.require("TE_TEST_OTHER_CA_FILE")
        let node = try await Self.node(origin, state: try temporaryDirectory("te-feed-ca"), caFile: other)
        try await origin.publish(#"{"tenant":"acme","all":true}"#)
        try await waitUntil(seconds: 10, advancing: node.clock) { node.node.feed!.failures >= 2 }
        #expect(Self.cursor(node) == 0, "nothing was accepted from a server the CA does not vouch for")
        await node.shutdown()
        await origin.stop()
    }

    @Test func aSilentFeedMakesOldEntriesRevalidateBeforeTheyAreServed() async throws {
        let origin = try await OriginHarness.start()
        let node = try await Self.node(origin, state: try temporaryDirectory("te-feed-lag")) {
            $0.origin?.maxInvalidationLagSeconds = 30
        }
        _ = try await node.get("/old")
        #expect(try await node.get("/old").cacheStatus.contains("; hit"))
        await origin.stop()  // the feed goes silent
        node.clock.advance(by: 60)
        let served = try await node.get("/old")
        #expect(
            !served.cacheStatus.contains("; hit"), "older than max_invalidation_lag_s: not served without the upstream")
        #expect(node.upstream.requests().count == 2)
        let metrics = try await node.admin(.GET, "/metrics").body
        #expect(metrics.contains("edge_invalidation_lag_seconds 6"), "lag shows in metrics")
        await node.shutdown()
    }
}
