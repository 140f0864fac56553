import Foundation
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// Issue 17, item 1 (second part): the isolation property under change. 20 tenants with the same
/// paths, created on a real origin that pushes signed bundles to two nodes sharing one Redis (their
/// own redis-server, behind a `StallingProxy`). A seeded schedule mixes GETs and purges with key
/// rotations and retirements, tenants removed (erased) and added again, tenants' settings changed,
/// and Redis stalled mid-reply for a stretch of operations. Every `200` must be the requester's own
/// tenant, path and variant and newer than the last purge (or re-creation) that covered it; a
/// removed tenant must get `421` from both nodes from the moment its publish was acknowledged.
/// `TE_PROPERTY_SEED` replays a printed seed; a tenth of `TE_PROPERTY_OPS` sets the length in `make test`,
/// `TE_CHANGE_OPS` the exact count (`make soak`, scripts/soak.sh).
@Suite("Isolation under change: rotations, pushes, removals and tier faults", .serialized)
struct IsolationUnderChangeTests {
    static let admin = "change-admin-token"
    static let tenants = (0..<20).map { String(format: "c%02d", $0) }

    /// What the schedule did, printed at the end and written to the fault report.
    struct Tally {
        var checked = 0
        var purges = 0
        var rotations = 0
        var retirements = 0
        var removals = 0
        var returns = 0
        var changes = 0
        var stalls = 0
        var refusedForRemoved = 0
        var served5xx = 0
        var unpropagated = 0
        /// Wall-clock seconds by kind of operation: where a long run spends its time.
        var seconds: [String: Double] = [:]

        mutating func add(since start: ContinuousClock.Instant, to kind: String) {
            let (whole, attoseconds) = (ContinuousClock.now - start).components
            seconds[kind, default: 0] += Double(whole) + Double(attoseconds) / 1e18
        }

        var timeSpent: String {
            seconds.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value.rounded())) s" }
                .joined(separator: ", ")
        }
    }

    @Test func tenantsNeverMeetWhileKeysTenantsAndTiersChange() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["TE_PROPERTY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        let operations =
            environment["TE_CHANGE_OPS"].flatMap(Int.init)
            ?? environment["TE_PROPERTY_OPS"].flatMap(Int.init).map { max(1, $0 / 10) } ?? 500
        let oracle = IsolationOracle()
        let redis = try RedisProcess()
        let proxy = try await StallingProxy(to: redis.port)
        defer { redis.kill() }
        try await OriginHarness.withFleet(
            adminToken: Self.admin,
            configure: { config in
                config.cache.redis = .init(url: "redis://127.0.0.1:\(proxy.port)/0", poolSize: 2, timeoutMs: 200)
            }, script: oracle.upstream
        ) { origin, nodes in
            let upstream = nodes[0].upstream.url
            func publish(_ what: String) async throws {
                let answer = try await origin.call(.POST, "/v1/config/publish", token: Self.admin)
                guard answer.status == 200, answer.body.contains(#""node-a":"ok""#),
                    answer.body.contains(#""node-b":"ok""#)
                else { throw TestEnvironment.Unmet("seed \(seed): publish after \(what): \(answer.body)") }
            }
            func put(_ tenant: String, quota: Int = 1 << 20) async throws {
                let body = #"{"hosts":["\#(tenant).test"],"upstream":"\#(upstream)","quota_bytes":\#(quota)}"#
                let answer = try await origin.call(.PUT, "/v1/tenants/\(tenant)", token: Self.admin, body: body)
                guard answer.status == 200 else {
                    throw TestEnvironment.Unmet("seed \(seed): PUT tenant \(tenant): \(answer.body)")
                }
            }
            for tenant in Self.tenants { try await put(tenant) }
            try await publish("creating the tenants")

            var schedule = SeededGenerator(seed: seed)
            var tally = Tally()
            var removed: Set<String> = []
            var keyVersion = Dictionary(uniqueKeysWithValues: Self.tenants.map { ($0, UInt32(1)) })
            var stalledUntil = -1  // the operation at which a Redis stall ends
            /// After a stall: the nodes' breakers reopen on their (manual) clocks once Redis answers.
            func recoverRedis() async throws {
                proxy.set(.pass)
                try await waitUntil(seconds: 10) {
                    for node in nodes { node.clock.advance(by: 31) }  // past the longest breaker backoff
                    for node in nodes { _ = try await node.get("/p/0", host: "\(Self.tenants[0]).test") }
                    return nodes.allSatisfy { $0.runtime.allL2Tiers.allSatisfy(\.isUp) }
                }
            }
            for operation in 0..<operations {
                if operation == stalledUntil {
                    let started = ContinuousClock.now
                    try await recoverRedis()
                    tally.add(since: started, to: "recovery from a stall")
                }
                let started = ContinuousClock.now
                var kind = "GET"
                defer { tally.add(since: started, to: kind) }
                let stalled = operation < stalledUntil
                if stalled { kind = "stalled GET" }
                let node = nodes[Int.random(in: 0..<2, using: &schedule)]
                let tenant = Self.tenants.randomElement(using: &schedule)!
                let roll = Int.random(in: 0..<100, using: &schedule)
                let place = "seed \(seed) op \(operation)"
                switch roll {
                case 0..<5 where !removed.contains(tenant) && !stalled:
                    // Purge acknowledgements travel through Redis: not while it is stalled.
                    kind = "purge"
                    let (body, covered) = IsolationOracle.purge(tenant: tenant, using: &schedule)
                    let answer = try await node.admin(.POST, "/_edge/purge", body: body)
                    guard answer.status == 200 else {
                        Issue.record("\(place): purge \(body) answered \(answer.status)")
                        return
                    }
                    let propagated: Bool
                    do {
                        propagated = try await IsolationOracle.waitForBothNodesIfPropagated(
                            acknowledging: answer.body, on: node, advancing: [nodes[0].clock, nodes[1].clock])
                    } catch {
                        Issue.record("\(place): purge \(body) not acknowledged by both nodes: \(error)")
                        return
                    }
                    guard propagated else {  // Redis did not take it: siblings hear of it later (documented)
                        tally.unpropagated += 1
                        continue
                    }
                    oracle.raiseFloor(tenant: tenant, where: covered)
                    tally.purges += 1
                case 5..<7 where !removed.contains(tenant):
                    kind = "rotation"
                    let rotated = try await origin.call(.POST, "/v1/tenants/\(tenant)/keys/rotate", token: Self.admin)
                    #expect(rotated.status == 200, "\(place): rotate \(tenant): \(rotated.body)")
                    let old = keyVersion[tenant, default: 1]
                    keyVersion[tenant] = old + 1
                    tally.rotations += 1
                    if Bool.random(using: &schedule) {  // retire the old version in the same publish
                        let retired = try await origin.call(
                            .DELETE, "/v1/tenants/\(tenant)/keys/\(old)", token: Self.admin)
                        #expect(retired.status == 200, "\(place): retire \(tenant) v\(old): \(retired.body)")
                        tally.retirements += 1
                    }
                    try await publish("rotating \(tenant)")
                case 7..<9 where !removed.contains(tenant) && removed.count < 8:
                    kind = "removal"
                    let erased = try await origin.call(.DELETE, "/v1/tenants/\(tenant)", token: Self.admin)
                    #expect(erased.status == 200, "\(place): remove \(tenant): \(erased.body)")
                    try await publish("removing \(tenant)")
                    removed.insert(tenant)
                    keyVersion[tenant] = 1
                    tally.removals += 1
                case 9..<11 where removed.contains(tenant):
                    kind = "return"
                    try await put(tenant)
                    try await publish("adding \(tenant) again")
                    removed.remove(tenant)
                    oracle.raiseFloor(tenant: tenant, where: { _ in true })  // nothing from before its erasure
                    tally.returns += 1
                case 11..<12 where !removed.contains(tenant):
                    kind = "change"
                    try await put(tenant, quota: Int.random(in: 1...3, using: &schedule) << 20)
                    try await publish("changing \(tenant)")
                    tally.changes += 1
                case 12..<13 where !stalled:
                    proxy.set(.freezeAfter(bytes: Int.random(in: 0..<400, using: &schedule)))
                    stalledUntil = operation + Int.random(in: 5..<30, using: &schedule)
                    tally.stalls += 1
                default:
                    let path = IsolationOracle.paths.randomElement(using: &schedule)!
                    let (language, headers) = IsolationOracle.headers(tenant: tenant, using: &schedule)
                    let response = try await node.get(path, host: "\(tenant).test", headers: headers)
                    if removed.contains(tenant) {
                        guard response.status == 421 else {
                            Issue.record("\(place): removed tenant \(tenant) answered \(response.status)")
                            return
                        }
                        tally.refusedForRemoved += 1
                        continue
                    }
                    if response.status == 304 {
                        if let problem = oracle.problem(
                            notModifiedETag: response.headers.first(name: "etag"), tenant: tenant, path: path,
                            language: language)
                        {
                            Issue.record("\(place): \(tenant) \(path): \(problem) (TE_PROPERTY_SEED=\(seed))")
                            return
                        }
                        tally.checked += 1
                        continue
                    }
                    guard response.status == 200 else {
                        if response.status >= 500 { tally.served5xx += 1 }
                        Issue.record("\(place): \(tenant) \(path) answered \(response.status) \(response.body)")
                        return
                    }
                    if let problem = oracle.problem(
                        body: response.body, tenant: tenant, path: path, language: language)
                    {
                        let request = "node \(node.runtime.config.node.id) \(tenant) \(path) \(language)"
                        let replay = "cache-status \(response.cacheStatus); replay with TE_PROPERTY_SEED=\(seed)"
                        Issue.record("\(place): \(request): \(problem) (\(replay))")
                        return
                    }
                    tally.checked += 1
                }
            }
            if stalledUntil > operations { try await recoverRedis() }
            print(
                "isolation under change: seed \(seed), \(operations) operations, \(tally.checked) answers checked, "
                    + "\(tally.purges) purges, \(tally.rotations) rotations (\(tally.retirements) retirements), "
                    + "\(tally.removals) removals, \(tally.returns) returns, \(tally.changes) changes, "
                    + "\(tally.stalls) Redis stalls, \(tally.refusedForRemoved) refusals of removed tenants, "
                    + "\(tally.unpropagated) purges that did not reach Redis; time: \(tally.timeSpent)")
            #expect(tally.checked > operations / 3, "seed \(seed): \(tally.checked) answers checked")
            FaultReport.record(
                "isolation property under an origin: rotations, removals, Redis stalls",
                [
                    ("operations", Double(operations)), ("answers checked", Double(tally.checked)),
                    ("key rotations", Double(tally.rotations)), ("tenants removed", Double(tally.removals)),
                    ("Redis stalls", Double(tally.stalls)), ("cross-tenant or stale answers", 0),
                    ("5xx", Double(tally.served5xx)),
                ])
        }
        await proxy.stop()
    }
}
