import Foundation
import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// L2 on a real redis-server behind `StallingProxy`: Redis slowed, and Redis frozen partway through a
/// reply and let go after the node gave up. Two tenants with the same paths, and an L1 too small for
/// any entry, so every hit is read from Redis. Clients must see no `5xx`, every answer must be the
/// requester's own (late bytes never pass for the answer to a later call), and L2 hits must return.
@Suite("Shared tier (L2) slowed and stalled", .serialized)
struct SharedTierStallTests {
    /// Host and path in every body, so an answer shows whose it is.
    static let body = IsolationTests.echo

    static let hosts = ["api.acme.test", "api.globex.test"]

    /// `count` requests, `parallel` at a time, over both tenants and 10 paths; what came back.
    static func load(_ edge: EdgeHarness, count: Int, parallel: Int = 8) async throws -> LoadReport {
        let started = ContinuousClock.now
        var report = LoadReport()
        try await withThrowingTaskGroup(of: (String, String, EdgeHarness.Response).self) { group in
            var next = 0
            func add() {
                let host = hosts[next % 2]
                let path = "/stall/\((next / 2) % 10)"
                next += 1
                group.addTask { (host, path, try await edge.get(path, host: host)) }
            }
            for _ in 0..<min(parallel, count) { add() }
            while let (host, path, response) = try await group.next() {
                report.record(response, expected: "\(host)|\(path)")
                if next < count { add() }
            }
        }
        report.seconds =
            Double((ContinuousClock.now - started).components.attoseconds) / 1e18
            + Double((ContinuousClock.now - started).components.seconds)
        return report
    }

    struct LoadReport {
        var answers = 0
        var serverErrors = 0
        var foreign = 0  // an answer that is not the requester's tenant and path
        var l2Hits = 0
        var seconds = 0.0
        var perSecond: Double { seconds > 0 ? Double(answers) / seconds : 0 }

        mutating func record(_ response: EdgeHarness.Response, expected: String) {
            answers += 1
            if response.status >= 500 { serverErrors += 1 }
            if response.status == 200, response.body != expected { foreign += 1 }
            if response.cacheStatus.contains("detail=l2") { l2Hits += 1 }
        }
    }

    @Test func aStalledOrSlowRedisCostsItsTimeoutNeverA5xxNorAnotherAnswer() async throws {
        let redis = try RedisProcess()
        let proxy = try await StallingProxy(to: redis.port)
        let edge = try await EdgeHarness.start(
            configure: { config in
                config.cache.redis = .init(url: "redis://127.0.0.1:\(proxy.port)/0", poolSize: 2, timeoutMs: 300)
                for index in config.tenants.indices { config.tenants[index].quotaBytes = 1024 }  // L1 keeps nothing
            }, script: Self.body)
        do {
            let filled = try await Self.load(edge, count: 20, parallel: 1)  // every path of both tenants into L2
            #expect(filled.serverErrors == 0 && filled.foreign == 0)
            let before = try await Self.load(edge, count: 200)
            // Nearly every hit from Redis (a call past its timeout on a loaded machine is a miss).
            #expect(before.l2Hits * 10 >= before.answers * 9, "hits come from Redis before the faults")

            proxy.set(.delay(milliseconds: 40))  // slow, within the 150 ms timeout
            let slow = try await Self.load(edge, count: 100)
            #expect(slow.serverErrors == 0 && slow.foreign == 0)
            #expect(slow.l2Hits > 0, "a slow Redis still serves")

            proxy.set(.freezeAfter(bytes: 37))  // partway into the next reply, then nothing
            let frozen = try await Self.load(edge, count: 200)
            #expect(frozen.serverErrors == 0, "a stalled Redis gives no 5xx")
            #expect(frozen.foreign == 0)
            #expect(frozen.l2Hits < frozen.answers, "the stall was felt: some hits could not come from Redis")
            proxy.set(.pass)  // the held bytes arrive now, after their calls timed out
            var after = LoadReport()
            for _ in 0..<100 {
                edge.clock.advance(by: 31)  // past the longest breaker backoff
                after = try await Self.load(edge, count: 40)
                #expect(after.serverErrors == 0 && after.foreign == 0, "late bytes never answer a later call")
                if after.l2Hits * 10 >= after.answers * 9 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(after.l2Hits * 10 >= after.answers * 9, "back to L2 hits once Redis answers again")
            let decryptFailures = try await edge.admin(.GET, "/metrics").body
                .split(separator: "\n").filter { $0.hasPrefix("edge_security_events_total{kind=\"decrypt_failed\"") }
            #expect(decryptFailures.allSatisfy { $0.hasSuffix(" 0") }, "no late reply was tried as a value")
            FaultReport.record(
                "Redis slowed (40 ms per reply) and stalled mid-reply, then released",
                [
                    ("req/s before", before.perSecond), ("req/s slowed", slow.perSecond),
                    ("req/s stalled", frozen.perSecond), ("5xx", Double(frozen.serverErrors + slow.serverErrors)),
                    ("foreign answers", Double(frozen.foreign + slow.foreign + after.foreign)),
                ])
        } catch {
            await edge.shutdown()
            await proxy.stop()
            throw error
        }
        await edge.shutdown()
        await proxy.stop()
        redis.kill()
    }

    /// The sibling-purge subscription is made, and then its fence read fails (Redis refuses the
    /// reader's connection: `maxclients` reached). The failed subscription is dropped and its callbacks
    /// run without the follower's lock held: they take it, and a recursive lock trapped the whole
    /// process here before (found by `IsolationUnderChangeTests` with Redis stalled). Once Redis takes
    /// connections again the subscription is made again.
    @Test func aSubscriptionWhoseFenceReadFailsIsDroppedWithoutATrap() async throws {
        let redis = try RedisProcess()
        let control = try RedisConnection.open(
            try #require(RedisEndpoint(parsing: "redis://127.0.0.1:\(redis.port)/0")), timeoutMs: 1000)
        try await withEdge(
            configure: {
                $0.cache.redis = .init(url: "redis://127.0.0.1:\(redis.port)/0", poolSize: 1, timeoutMs: 200)
            },
            script: Self.body
        ) { edge in
            func subscribers() throws -> Int {
                guard case .string(let list) = try control.command("CLIENT", "LIST", "TYPE", "pubsub") else { return 0 }
                return String(decoding: list, as: UTF8.self).split(separator: "\n").count
            }
            try await waitUntil(seconds: 10, advancing: edge.clock) { try subscribers() == 1 }
            guard case .string(let info) = try control.command("INFO", "clients"),
                let line = String(decoding: info, as: UTF8.self).split(separator: "\r\n")
                    .first(where: { $0.hasPrefix("connected_clients:") }),
                let connected = Int(line.dropFirst("connected_clients:".count))
            else { throw TestEnvironment.Unmet("INFO clients without connected_clients") }
            // Room for exactly one more connection once the subscriber is gone: the new subscription's.
            _ = try control.command("CONFIG", "SET", "maxclients", String(connected))
            _ = try control.command("CLIENT", "KILL", "TYPE", "pubsub")
            for _ in 0..<10 {  // the follower notices, waits its retry interval, subscribes, fails to read
                edge.clock.advance(by: 1)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await edge.get("/alive").status == 200, "the node is alive and serving")
            _ = try control.command("CONFIG", "SET", "maxclients", "10000")
            try await waitUntil(seconds: 10, advancing: edge.clock) { try subscribers() == 1 }
        }
        redis.kill()
    }

    /// A purge made while Redis is stalled reaches no sibling until it is applied there as a generation
    /// drop, so its status must not count a sibling whose earlier acknowledgement happens to be high:
    /// its id carries `PurgeID.notPropagated`, and this node writes no such fence to Redis. (The purge
    /// status once read the old fence after such a purge and counted every sibling as done.)
    @Test func aPurgeThatDidNotReachRedisCountsNoSibling() async throws {
        let redis = try RedisProcess()
        let proxy = try await StallingProxy(to: redis.port)
        let url = "redis://127.0.0.1:\(proxy.port)/0"
        try await EdgeHarness.withTwoNodes(
            // 1 s, not 200 ms: with the whole suite running, the first purge's answer came late, the
            // purge was never propagated, and the wait for both acknowledgements ran out (12-07).
            configure: { $0.cache.redis = .init(url: url, poolSize: 1, timeoutMs: 1000) }, script: Self.body
        ) { a, b in
            let first = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/one"]}"#)
            #expect(!first.body.contains(":\(PurgeID.notPropagated)"), "the first purge reached Redis: \(first.body)")
            let firstID = try #require(JSONValue.parse(Array(first.body.utf8))?.objectValue?["id"]?.stringValue)
            try await waitUntil(seconds: 10, advancing: a.clock, b.clock) {
                let status = try await a.admin(.GET, "/_edge/purges/\(firstID)")
                return JSONValue.parse(Array(status.body.utf8))?.objectValue?["nodes"]?.objectValue?.count == 2
            }
            proxy.set(.freezeAfter(bytes: 0))
            let stalled = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/two"]}"#)
            #expect(stalled.status == 200, "the purge is applied here whatever Redis does")
            let id = try #require(JSONValue.parse(Array(stalled.body.utf8))?.objectValue?["id"]?.stringValue)
            #expect(id == "acme:\(PurgeID.notPropagated)")
            let status = try await a.admin(.GET, "/_edge/purges/\(id)")
            let nodes = JSONValue.parse(Array(status.body.utf8))?.objectValue?["nodes"]?.objectValue
            #expect(nodes?.keys.sorted() == ["node-a"], "only this node: \(status.body)")
            proxy.set(.pass)
        }
        await proxy.stop()
        redis.kill()
    }
}
