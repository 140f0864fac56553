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
    static let paths = (0..<6).map { "/p/\($0)" } + (0..<4).map { "/v/\($0)" }
    static let languages = ["en", "fr"]

    /// What the upstream gave out: per tenant, path and variant, the last version fetched.
    final class Versions: Sendable {
        private let fetched = Locked<[String: Int]>([:])
        func next(_ key: String) -> Int {
            fetched.modify {
                $0[key, default: 0] += 1
                return $0[key]!
            }
        }
        func current(_ key: String) -> Int { fetched.value[key] ?? 0 }
    }

    static func key(tenant: String, path: String, variant: String) -> String { "\(tenant)|\(path)|\(variant)" }

    /// Bodies name tenant, path, variant and version; `/v/` varies on `Accept-Language`; tags are the
    /// path's group (`g0`–`g2`); the ETag is the version.
    static func upstream(_ versions: Versions) -> TestUpstream.Script {
        { request in
            let tenant = String((request.header("host") ?? "?").prefix { $0 != "." })
            let path = request.uri
            let varies = path.hasPrefix("/v/")
            let variant = varies ? (request.header("accept-language") ?? "-") : "-"
            let version = versions.next(key(tenant: tenant, path: path, variant: variant))
            var headers = [
                ("Cache-Control", "max-age=300"), ("ETag", "\"\(version)\""),
                ("Surrogate-Key", "g\((Int(path.last.map(String.init) ?? "0") ?? 0) % 3)"),
            ]
            if varies { headers.append(("Vary", "Accept-Language")) }
            return .init(headers: headers, body: "tenant=\(tenant);path=\(path);variant=\(variant);version=\(version)")
        }
    }

    @Test func tenantsNeverMeetAndNoPurgeIsLost() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["TE_PROPERTY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        let operations = environment["TE_PROPERTY_OPS"].flatMap(Int.init) ?? 2_000
        let versions = Versions()
        let url = try TestEnvironment.redisURL(database: 28)
        try await EdgeHarness.withTwoNodes(
            configure: { config in
                config.cache.redis = .init(url: url, poolSize: 1, timeoutMs: 1000)
                // Each node's own test upstream; both count versions in one table.
                let upstream = config.tenants[0].upstream
                config.tenants = Self.tenants.map { TenantConfig(id: $0, hosts: ["\($0).test"], upstream: upstream) }
            }, script: Self.upstream(versions)
        ) { a, b in
            var schedule = SeededGenerator(seed: seed)  // SplitMix64: the printed seed replays
            /// Per key, the version a response must exceed: the last version fetched when a purge
            /// covering the key was acknowledged by both nodes.
            var floor: [String: Int] = [:]
            var checked = 0
            for operation in 0..<operations {
                let node = Bool.random(using: &schedule) ? a : b
                let tenant = Self.tenants.randomElement(using: &schedule)!
                let roll = Int.random(in: 0..<100, using: &schedule)
                if roll < 8 {
                    let (body, covered) = Self.purge(tenant: tenant, using: &schedule)
                    let answer = try await node.admin(.POST, "/_edge/purge", body: body)
                    guard answer.status == 200 else {
                        Issue.record("seed \(seed) op \(operation): purge \(body) answered \(answer.status)")
                        return
                    }
                    try await Self.waitForBothNodes(answer.body, purgedOn: node)
                    for path in Self.paths where covered(path) {
                        for variant in ["-"] + Self.languages {
                            let key = Self.key(tenant: tenant, path: path, variant: variant)
                            floor[key] = versions.current(key)
                        }
                    }
                    continue
                }
                let path = Self.paths.randomElement(using: &schedule)!
                let language = Self.languages.randomElement(using: &schedule)!
                var headers = [("Accept-Language", language)]
                if roll < 13 { headers.append(("Cookie", "session=\(tenant)")) }
                if roll >= 13 && roll < 18 {
                    headers.append(("If-None-Match", "\"\(Int.random(in: 1...3, using: &schedule))\""))
                }
                let response = try await node.get(path, host: "\(tenant).test", headers: headers)
                if response.status == 304 { continue }
                guard response.status == 200 else {
                    Issue.record("seed \(seed) op \(operation): \(tenant) \(path) answered \(response.status)")
                    return
                }
                let variant = path.hasPrefix("/v/") ? language : "-"
                let purgedAt = floor[Self.key(tenant: tenant, path: path, variant: variant), default: 0]
                let fields = Dictionary(
                    uniqueKeysWithValues: response.body.split(separator: ";").compactMap { pair -> (String, String)? in
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
                    })
                let problem: String? =
                    if fields["tenant"] != tenant {
                        "served \(fields["tenant"] ?? "?")'s body to \(tenant)"
                    } else if fields["path"] != path {
                        "served \(fields["path"] ?? "?") for \(path)"
                    } else if fields["variant"] != variant {
                        "served variant \(fields["variant"] ?? "?") for \(variant)"
                    } else if let version = fields["version"].flatMap(Int.init), version <= purgedAt {
                        "served version \(version), purged when version \(purgedAt) was the last fetched"
                    } else {
                        nil
                    }
                if let problem {
                    let request = "node \(node.runtime.config.node.id) \(tenant) \(path) \(language)"
                    let replay = "cache-status \(response.cacheStatus); replay with TE_PROPERTY_SEED=\(seed)"
                    Issue.record("seed \(seed) op \(operation): \(request): \(problem) (\(replay))")
                    return
                }
                checked += 1
            }
            #expect(checked > operations / 2, "seed \(seed): \(checked) responses checked")
        }
    }

    /// A purge of one kind for `tenant`, and which paths it covers.
    static func purge(tenant: String, using schedule: inout SeededGenerator) -> (String, (String) -> Bool) {
        switch Int.random(in: 0..<4, using: &schedule) {
        case 0:
            let path = paths.randomElement(using: &schedule)!
            return (#"{"tenant":"\#(tenant)","keys":["\#(path)"]}"#, { $0 == path })
        case 1:
            let group = Int.random(in: 0..<3, using: &schedule)
            return (
                #"{"tenant":"\#(tenant)","tags":["g\#(group)"]}"#,
                { (Int($0.last.map(String.init) ?? "0") ?? 0) % 3 == group }
            )
        case 2:
            let prefix = Bool.random(using: &schedule) ? "/p/" : "/v/"
            return (#"{"tenant":"\#(tenant)","prefixes":["\#(prefix)"]}"#, { $0.hasPrefix(prefix) })
        default:
            return (#"{"tenant":"\#(tenant)","all":true}"#, { _ in true })
        }
    }

    /// The documented propagation window, made exact: the next operation starts once both nodes
    /// acknowledged the purge (`/_edge/purges/<id>`).
    static func waitForBothNodes(_ answer: String, purgedOn node: EdgeHarness) async throws {
        guard let id = JSONValue.parse(Array(answer.utf8))?.objectValue?["id"]?.stringValue else {
            throw TestEnvironment.Unmet("a purge answer without an id: \(answer)")
        }
        try await waitUntil(seconds: 5) {
            let status = try await node.admin(.GET, "/_edge/purges/\(id)")
            return JSONValue.parse(Array(status.body.utf8))?.objectValue?["nodes"]?.objectValue?.count == 2
        }
    }
}
