import Foundation
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// Issue 17, item 1 (first part): 20 tenants with the same paths on two nodes sharing one Redis, a
/// seeded random schedule of GETs (with and without `Vary`, cookies and conditionals) and purges by
/// key, tag, prefix and all. Every upstream body names its tenant, path, variant and a version that
/// grows with each fetch; every response is checked: the requester's own tenant and variant, and
/// never a version older than the last purge that covered it. A failure prints its seed;
/// `TE_PROPERTY_SEED` replays it and `TE_PROPERTY_OPS` makes the run longer (`make soak`).
@Suite("Isolation under a random schedule", .serialized)
struct IsolationPropertyTests {
    static let tenants = (0..<20).map { String(format: "t%02d", $0) }

    @Test func tenantsNeverMeetAndNoPurgeIsLost() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["TE_PROPERTY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        let operations = environment["TE_PROPERTY_OPS"].flatMap(Int.init) ?? 2_000
        let oracle = IsolationOracle()
        let url = try TestEnvironment.redisURL(database: 28)
        try await EdgeHarness.withTwoNodes(
            configure: { config in
                config.cache.redis = .init(url: url, poolSize: 1, timeoutMs: 1000)
                // Each node's own test upstream; both count versions in one table.
                let upstream = config.tenants[0].upstream
                config.tenants = Self.tenants.map { TenantConfig(id: $0, hosts: ["\($0).test"], upstream: upstream) }
            }, script: oracle.upstream
        ) { a, b in
            var schedule = SeededGenerator(seed: seed)  // SplitMix64: the printed seed replays
            var checked = 0
            for operation in 0..<operations {
                let node = Bool.random(using: &schedule) ? a : b
                let tenant = Self.tenants.randomElement(using: &schedule)!
                let roll = Int.random(in: 0..<100, using: &schedule)
                if roll < 8 {
                    let (body, covered) = IsolationOracle.purge(tenant: tenant, using: &schedule)
                    let answer = try await node.admin(.POST, "/_edge/purge", body: body)
                    guard answer.status == 200 else {
                        Issue.record("seed \(seed) op \(operation): purge \(body) answered \(answer.status)")
                        return
                    }
                    try await IsolationOracle.waitForBothNodes(acknowledging: answer.body, on: node)
                    oracle.raiseFloor(tenant: tenant, where: covered)
                    continue
                }
                let path = IsolationOracle.paths.randomElement(using: &schedule)!
                let (language, headers) = IsolationOracle.headers(tenant: tenant, using: &schedule)
                let response = try await node.get(path, host: "\(tenant).test", headers: headers)
                guard response.status == 200 || response.status == 304 else {
                    Issue.record("seed \(seed) op \(operation): \(tenant) \(path) answered \(response.status)")
                    return
                }
                let problem =
                    response.status == 304
                    ? oracle.problem(
                        notModifiedETag: response.headers.first(name: "etag"), tenant: tenant, path: path,
                        language: language)
                    : oracle.problem(body: response.body, tenant: tenant, path: path, language: language)
                if let problem {
                    let request = "node \(node.runtime.config.node.id) \(tenant) \(path) \(language)"
                    let replay = "cache-status \(response.cacheStatus); replay with TE_PROPERTY_SEED=\(seed)"
                    Issue.record("seed \(seed) op \(operation): \(request): \(problem) (\(replay))")
                    return
                }
                checked += 1
            }
            #expect(checked > operations / 2, "seed \(seed): \(checked) responses checked")
            FaultReport.record(
                "isolation property, node-only",
                [
                    ("operations", Double(operations)), ("answers checked", Double(checked)),
                    ("cross-tenant or stale answers", 0),
                ])
        }
    }
}
