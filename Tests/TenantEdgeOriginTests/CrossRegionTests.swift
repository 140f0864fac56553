import Foundation
import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// Two regions' nodes following one origin over long links: each node's feed goes through a
/// `StallingProxy` playing the link (80 ms and 150 ms one way, 1 % of segments lost and sent again
/// after 200 ms; the kernel here has no `netem`). Purges published one after another must be applied
/// in every region (the goal: within 1 s at p99, reported; bounded loosely here, since the suite shares
/// two cores); a region cut off must bound its staleness (entries older than
/// `max_invalidation_lag_s` go to the upstream) and, once the link is back, apply every event it
/// missed exactly once.
@Suite("Cross-region links to the origin", .serialized)
struct CrossRegionTests {
    static let usEastToken = "node-token-us-east"
    static let links = [(region: "eu-west", oneWayMs: 80), (region: "us-east", oneWayMs: 150)]

    static let script: TestUpstream.Script = { request in
        .init(headers: [("Cache-Control", "max-age=3600")], body: "\(request.header("host") ?? "?")|\(request.uri)")
    }

    static func cursor(_ edge: EdgeHarness) -> Int { edge.runtime.feedStatus.cursor.load(ordering: .relaxed) }

    /// Purge selectors the node applied, all kinds: an event applied twice would count twice.
    static func applied(_ edge: EdgeHarness) async throws -> Double {
        try await edge.admin(.GET, "/metrics").body.split(separator: "\n")
            .filter { $0.hasPrefix("edge_invalidations_applied_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0, +)
    }

    static func percentile(_ values: [Double], _ share: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * share).rounded(.up)) - 1)]
    }

    @Test func purgesReachEveryRegionWithinASecondAndAPartitionLosesNone() async throws {
        // us-east is a region of the origin's with a node token of its own: with eu-west's token its
        // bundle pulls were refused, which once added a round trip to each event's way (the pull came
        // before every poll).
        let origin = try await OriginHarness.start(configure: { config in
            config.regions.append(
                .init(region: RegionConfig(name: "us-east", lat: 39, lon: -77.5, publicURL: "https://us-east.test")))
            config.tokens.nodes.append((OpenSSL.sha256(Array(Self.usEastToken.utf8)), "us-east", nil))
        })
        var proxies: [StallingProxy] = []
        var nodes: [EdgeHarness] = []
        do {
            for link in Self.links {
                let proxy = try await StallingProxy(to: origin.server.port)
                proxy.set(.link(oneWayMs: link.oneWayMs, lossPercent: 1))
                proxies.append(proxy)
                let state = try temporaryDirectory("te-region-\(link.region)")
                nodes.append(
                    try await EdgeHarness.start(
                        configure: { config in
                            config.node.region = link.region
                            config.stateDir = state
                            origin.follow(&config, directory: state, pollWait: 20)
                            if link.region == "us-east" {
                                FileManager.default.createFile(
                                    atPath: state + "/node.token", contents: Data(Self.usEastToken.utf8))
                            }
                            config.origin?.url = "https://127.0.0.1:\(proxy.port)"
                            config.origin?.maxInvalidationLagSeconds = 30
                        }, nodeID: "node-\(link.region)", script: Self.script))
            }
            let fleet = nodes
            let clocks = fleet.map(\.clock)
            func allAt(_ seq: Int) -> Bool { fleet.allSatisfy { Self.cursor($0) >= seq } }

            // Warm-up: both feeds connected and following.
            #expect(try await origin.publish(#"{"tenant":"globex","all":true}"#).status == 200)
            try await waitUntil(seconds: 20, advancing: clocks[0], clocks[1]) { allAt(1) }

            // 60 purges, 50 ms apart; a watcher notes when each node's cursor passes each one.
            let events = 60
            let started = ContinuousClock.now
            func seconds() -> Double {
                let elapsed = (ContinuousClock.now - started).components
                return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            }
            let watcher = Task { () -> [[Int: Double]] in
                var seen = Array(repeating: [Int: Double](), count: fleet.count)
                var last = fleet.map(Self.cursor)
                while !Task.isCancelled {
                    let done = allAt(1 + events)  // read before the pass: the pass then records the last moves
                    for (index, node) in fleet.enumerated() {
                        let now = Self.cursor(node)
                        if now > last[index] {
                            for seq in (last[index] + 1)...now { seen[index][seq] = seconds() }
                            last[index] = now
                        }
                    }
                    if done { break }
                    try? await Task.sleep(for: .milliseconds(2))
                }
                return seen
            }
            var published: [Int: Double] = [:]
            for index in 0..<events {
                let at = seconds()
                let answer = try await origin.publish(#"{"tenant":"acme","keys":["/item/\#(index)"]}"#)
                let seq = Int(answer.body.split(separator: ":").last?.dropLast() ?? "") ?? -1
                published[seq] = at
                try await Task.sleep(for: .milliseconds(50))
            }
            try await waitUntil(seconds: 20) { allAt(1 + events) }
            let seen = await watcher.value
            // Each feed kept its one connection: a new TLS connection per poll would add two round trips.
            let connections = proxies.map { $0.connectionsAccepted.load(ordering: .relaxed) }
            #expect(connections.allSatisfy { $0 <= 2 }, "connections per region's feed: \(connections)")
            var figures: [(String, Double)] = []
            for (index, link) in Self.links.enumerated() {
                let latencies = published.compactMap { seq, at in seen[index][seq].map { ($0 - at) * 1000 } }
                #expect(latencies.count == events, "\(link.region): every event applied")
                let (p50, p99) = (Self.percentile(latencies, 0.5), Self.percentile(latencies, 0.99))
                // The goal is p99 under 1 s (455 ms for us-east measured alone); inside the full suite
                // on 2 cores it reads higher, so the test bounds it loosely and reports the figure (under a
                // sanitizer it read 2,051 ms once, hence the slack there).
                let bound = 2000 * TestEnvironment.latencySlack
                #expect(p99 < bound, "\(link.region) over \(link.oneWayMs) ms links: p99 \(p99) ms")
                figures += [("\(link.region) p50 ms", p50), ("\(link.region) p99 ms", p99)]
            }

            // us-east cut off: its feed hears nothing; past max_invalidation_lag_s its old entries go
            // to the upstream; the link back, it applies what it missed, each event once.
            let cut = fleet[1]
            _ = try await cut.get("/partition-item")
            #expect(try await cut.get("/partition-item").cacheStatus.contains("; hit"))
            let appliedBefore = try await Self.applied(cut)
            proxies[1].set(.partitioned)
            var head = 1 + events
            for index in 0..<20 {
                let answer = try await origin.publish(#"{"tenant":"acme","keys":["/cut/\#(index)"]}"#)
                #expect(answer.status == 200)
                head += 1
            }
            cut.clock.advance(by: 60)  // silent for longer than max_invalidation_lag_s
            let bounded = try await cut.get("/partition-item")
            #expect(!bounded.cacheStatus.contains("; hit"), "bounded staleness: \(bounded.cacheStatus)")
            #expect(Self.cursor(cut) == 1 + events, "nothing arrived through the partition")
            proxies[1].set(.link(oneWayMs: 150, lossPercent: 1))
            try await waitUntil(seconds: 30, advancing: cut.clock) { Self.cursor(cut) >= head }
            let appliedAfter = try await Self.applied(cut)
            #expect(appliedAfter - appliedBefore == 20, "every missed event applied once")
            figures += [("events missed in the partition", 20), ("applied after it", appliedAfter - appliedBefore)]

            // eu-west's feed cut mid-answer, every answer, for a while: nothing half-read is applied,
            // and once answers arrive whole again every event is applied, each once.
            let severed = fleet[0]
            // Its own link is slow and lossy too: it may still be applying the partition's events (one
            // counted after this read once made "11 applied" of 10).
            try await waitUntil(seconds: 30, advancing: severed.clock) { Self.cursor(severed) >= head }
            let appliedBeforeCuts = try await Self.applied(severed)
            proxies[0].set(.cutAfter(bytes: 120))
            for index in 0..<10 {
                #expect(try await origin.publish(#"{"tenant":"acme","keys":["/sever/\#(index)"]}"#).status == 200)
                head += 1
            }
            for _ in 0..<20 {  // two seconds of polls and retries, each answer cut after 120 bytes
                if severed.clock.sleeperCount > 0 { severed.clock.advance(by: 0.5) }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(Self.cursor(severed) < head, "no answer got through whole while every one was cut")
            proxies[0].set(.link(oneWayMs: 80, lossPercent: 1))
            try await waitUntil(seconds: 30, advancing: severed.clock) { Self.cursor(severed) >= head }
            let appliedAfterCuts = try await Self.applied(severed)
            #expect(appliedAfterCuts - appliedBeforeCuts == 10, "every event applied once after answers were cut")
            figures += [("answers cut mid-way, events applied after", appliedAfterCuts - appliedBeforeCuts)]
            FaultReport.record("cross-region feed over 80/150 ms links, 1 % loss; us-east partitioned", figures)
        } catch {
            for node in nodes { await node.shutdown() }
            for proxy in proxies { await proxy.stop() }
            await origin.stop()
            throw error
        }
        for node in nodes { await node.shutdown() }
        for proxy in proxies { await proxy.stop() }
        await origin.stop()
    }
}
