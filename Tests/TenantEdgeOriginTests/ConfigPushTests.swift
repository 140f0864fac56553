import Foundation
import NIOHTTP1
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// `PUT /_edge/config` on a real node: signed bundles applied whole, bad ones refused with a reason
/// and nothing changed, the applied bundle persisted and loaded again at start.
@Suite("Config bundles pushed to a node", .serialized)
struct ConfigPushTests {
    let signingKey: Ed25519Key
    let state: String
    let publicKeyFile: String

    init() throws {
        signingKey = try Ed25519Key.generate()
        state = FileManager.default.temporaryDirectory.appendingPathComponent("te-bundle-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        publicKeyFile = state + "/origin-signing.pub"
        try Data(try signingKey.publicPEM()).write(to: URL(fileURLWithPath: publicKeyFile))
    }

    func configure(_ config: inout EdgeConfig) {
        config.stateDir = state
        config.security.configPublicKey = publicKeyFile
    }

    static func bundle(version: Int, upstream: String, tenants: [String] = ["acme", "newco"], extra: String = "")
        -> String
    {
        let list = tenants.map { #"{"id":"\#($0)","hosts":["api.\#($0).test"],"upstream":"\#(upstream)"\#(extra)}"# }
        return
            #"{"version":\#(version),"issued_at":"2026-11-27T00:00:00Z","regions":[],"# + #""tenants":["#
            + list.joined(separator: ",") + "]}"
    }

    func push(_ edge: EdgeHarness, _ body: String, signature: String? = nil) async throws -> EdgeHarness.Response {
        let header = try signature ?? "ed25519=" + Data(signingKey.sign(Array(body.utf8))).base64EncodedString()
        return try await edge.request(
            .PUT, host: "127.0.0.1", "/_edge/config",
            headers: [("Authorization", "Bearer \(EdgeHarness.adminToken)"), ("Edge-Signature", header)],
            body: body, admin: true)
    }

    static let script: TestUpstream.Script = { request in
        .init(headers: [("Cache-Control", "max-age=300")], body: "\(request.header("host") ?? "?")|\(request.uri)")
    }

    @Test func aSignedBundleIsAppliedWholeAndKeepsUnchangedTenantsWarm() async throws {
        try await withEdge(configure: configure, script: Self.script) { (edge: EdgeHarness) async throws in
            #expect(try await edge.get("/x", host: "api.newco.test").status == 421)
            _ = try await edge.get("/warm")
            let applied = try await push(edge, Self.bundle(version: 1, upstream: edge.upstream.url))
            #expect(applied.status == 200 && applied.body == #"{"version":1}"#)
            let newco = try await edge.get("/x", host: "api.newco.test")
            #expect(newco.status == 200 && newco.body == "api.newco.test|/x")
            #expect(
                try await edge.get("/warm").cacheStatus.hasPrefix("test-a; hit"),
                "acme did not change: its cache stayed")
            #expect(try await edge.get("/x", host: "api.globex.test").status == 421, "globex is not in the bundle")
            let stats = try await edge.admin(.GET, "/_edge/stats").body
            #expect(
                stats.contains(#""config_version":1"#) && stats.contains(#""newco":"#) && !stats.contains(#""globex":"#)
            )
            #expect(try await edge.admin(.GET, "/metrics").body.contains("edge_config_version 1"))
            // Version 2 drops newco: no longer served, and its entries are gone.
            _ = try await edge.get("/y", host: "api.newco.test")
            let cache = try #require(edge.runtime.caches["newco"])
            #expect(
                try await push(edge, Self.bundle(version: 2, upstream: edge.upstream.url, tenants: ["acme"])).status
                    == 200)
            #expect(try await edge.get("/y", host: "api.newco.test").status == 421)
            #expect(cache.occupancy().entries == 0, "a removed tenant's L1 is emptied")
            edge.runtime.audit.flush()
            let audit = try String(contentsOfFile: state + "/audit.jsonl", encoding: .utf8)
            #expect(audit.components(separatedBy: #""event":"config_applied""#).count - 1 == 2)
        }
    }

    @Test func badBundlesAreRefusedWithAReasonAndChangeNothing() async throws {
        try await withEdge(configure: configure, script: Self.script) { (edge: EdgeHarness) async throws in
            let url = edge.upstream.url
            #expect(try await push(edge, Self.bundle(version: 5, upstream: url)).status == 200)
            let good = Self.bundle(version: 6, upstream: url)
            var oneByte = Array(good.utf8)
            oneByte[oneByte.count - 3] ^= 0x01
            let goodSignature = "ed25519=" + Data(try signingKey.sign(Array(good.utf8))).base64EncodedString()
            let otherKey = "ed25519=" + Data(try Ed25519Key.generate().sign(Array(good.utf8))).base64EncodedString()
            let cases: [(String, String, String?, Int, String)] = [
                ("no signature", good, "", 401, "bad_signature"),
                ("another key's signature", good, otherKey, 401, "bad_signature"),
                ("one byte changed", String(decoding: oneByte, as: UTF8.self), goodSignature, 401, "bad_signature"),
                ("same version", Self.bundle(version: 5, upstream: url), nil, 409, "stale_version"),
                ("older version", Self.bundle(version: 4, upstream: url), nil, 409, "stale_version"),
                ("malformed JSON", #"{"version":7,"tenants":["#, nil, 400, "invalid_bundle"),
                (
                    "wrong field type", Self.bundle(version: 7, upstream: url, extra: #","quota_bytes":"lots""#), nil,
                    400, "quota_bytes"
                ),
                (
                    "unknown field", Self.bundle(version: 7, upstream: url, extra: #","colour":"red""#), nil, 400,
                    "colour"
                ),
                ("invalid upstream", Self.bundle(version: 7, upstream: "ftp://x"), nil, 400, "upstream"),
            ]
            for (name, body, signature, status, reason) in cases {
                let response = try await push(edge, body, signature: signature)
                #expect(response.status == status, "\(name)")
                #expect(response.body.contains(reason), "\(name): \(response.body)")
            }
            let padded =
                Self.bundle(version: 8, upstream: url).dropLast() + #","pad":""#
                + String(repeating: "x", count: 10 << 20) + "\"}"
            #expect(try await push(edge, String(padded)).status == 413)
            #expect(
                try await edge.admin(.GET, "/_edge/stats").body.contains(#""config_version":5"#),
                "the running bundle is untouched")
            #expect(try await edge.get("/x", host: "api.newco.test").status == 200)
            let unauthorized = try await edge.request(
                .PUT, host: "127.0.0.1", "/_edge/config",
                headers: [("Authorization", "Bearer \(EdgeHarness.acmePurgeToken)")],
                body: good, admin: true)
            #expect(unauthorized.status == 403, "a purge token may not push config")
            edge.runtime.audit.flush()
            let audit = try String(contentsOfFile: state + "/audit.jsonl", encoding: .utf8)
            #expect(
                audit.components(separatedBy: #""event":"config_rejected""#).count - 1 == cases.count - 1,
                "every case but the version already running, which is no rejection")
            #expect(audit.components(separatedBy: #""event":"stale_config_version""#).count - 1 == 1, "the older one")
        }
    }

    @Test func aRestartedNodeRunsThePersistedBundleWithoutAnOrigin() async throws {
        try await withEdge(configure: configure, script: Self.script) { (edge: EdgeHarness) async throws in
            #expect(try await push(edge, Self.bundle(version: 3, upstream: edge.upstream.url)).status == 200)
        }
        let persisted = try String(contentsOfFile: state + "/bundle.signed", encoding: .utf8)
        #expect(persisted.hasPrefix("ed25519=") && persisted.contains(#""version":3"#))
        try await withEdge(configure: configure, script: Self.script) { (edge: EdgeHarness) async throws in
            #expect(try await edge.admin(.GET, "/_edge/stats").body.contains(#""config_version":3"#))
            // Served (its old upstream is gone: usually a 502, but another test's listener may have
            // taken that port since, even another node's, which answers 421 itself); what matters
            // is that this node did not take newco for an unknown tenant.
            let served = try await edge.get("/x", host: "api.newco.test")
            #expect(!served.cacheStatus.contains("detail=unknown-tenant"), "newco is served from the persisted bundle")
        }
        // A persisted bundle changed on disk stops start-up with the reason.
        try persisted.replacingOccurrences(of: "newco", with: "evilco").write(
            toFile: state + "/bundle.signed", atomically: true, encoding: .utf8)
        await #expect(throws: EdgeError.self) { try await EdgeHarness.start(configure: configure, script: Self.script) }
    }

    @Test func aResidencyThatExcludesThisRegionDropsTheTenantsDataInBothTiers() async throws {
        let url = try TestEnvironment.redisURL(database: 4)
        try await withEdge(
            configure: { config in
                configure(&config)
                config.cache.redis = .init(url: url, poolSize: 2, timeoutMs: 500)
            }, script: Self.script
        ) { (edge: EdgeHarness) async throws in
            let upstream = edge.upstream.url
            let resident = Self.bundle(
                version: 1, upstream: upstream, tenants: ["acme", "newco"], extra: #","residency":["eu-west"]"#)
            #expect(try await push(edge, resident).status == 200)
            for index in 0..<5 { _ = try await edge.get("/r/\(index)", host: "api.newco.test") }
            let redis = try RedisConnection.open(try #require(RedisEndpoint(parsing: url)), timeoutMs: 1000)
            func keys() throws -> Int {
                guard case .array(let items) = try redis.command("KEYS", "te:newco:g*") else { return 0 }
                return items.count
            }
            try await waitUntil(seconds: 10) { (try? keys()) ?? 0 >= 5 }
            #expect(try #require(edge.runtime.caches["newco"]).occupancy().entries == 5)
            let moved = Self.bundle(
                version: 2, upstream: upstream, tenants: ["acme", "newco"], extra: #","residency":["us-east"]"#)
            #expect(try await push(edge, moved).status == 200)
            try await waitUntil(seconds: 10) { (try? keys()) == 0 }
            #expect(try #require(edge.runtime.caches["newco"]).occupancy().entries == 0, "L1 holds nothing of it")
            let served = try await edge.get("/r/0", host: "api.newco.test")
            #expect(served.status == 200 && served.cacheStatus.contains("detail=residency"))
            #expect(try keys() == 0, "and nothing new is stored")
        }
    }
}
