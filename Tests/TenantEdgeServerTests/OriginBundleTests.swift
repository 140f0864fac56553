import Foundation
@testable import TenantEdgeCore
import TenantEdgeNative
import Testing
@testable import TenantEdgeServer

/// The origin's registry, signed bundles pushed to nodes and pulled by them, over real TLS.
@Suite("Config bundles from the origin", .serialized)
struct OriginBundleTests {
    static let adminToken = "origin-admin-token"
    let keys: String
    init() throws {
        keys = try temporaryDirectory("te-origin-keys")
        let key = try Ed25519Key.generate()
        try Data(try key.privatePEM()).write(to: URL(fileURLWithPath: keys + "/signing.key"))
        try Data(try key.publicPEM()).write(to: URL(fileURLWithPath: keys + "/signing.pub"))
        try Data(EdgeHarness.adminToken.utf8).write(to: URL(fileURLWithPath: keys + "/node-admin.token"))
    }

    /// Origin settings: signing key, admin token, and `nodes` of eu-west reached at their admin ports.
    func origin(stateDir: String? = nil, nodes: [(id: String, adminPort: Int)]) async throws -> OriginHarness {
        try await OriginHarness.start(stateDir: stateDir) { config in
            config.signingKeyFile = keys + "/signing.key"
            config.tokens.admin = [OpenSSL.sha256(Array(Self.adminToken.utf8))]
            config.regions[0].nodes = nodes.map { .init(id: $0.id, adminURL: "http://127.0.0.1:\($0.adminPort)", adminTokenFile: keys + "/node-admin.token") }
        }
    }

    static let tenant = #"{"hosts":["api.newco.test"],"upstream":"http://127.0.0.1:1","residency":["eu-west"]}"#

    @Test func publishBuildsSignsAndPushesTheBundleToEveryNode() async throws {
        let configure: (inout EdgeConfig) -> Void = { $0.security.configPublicKey = keys + "/signing.pub" }
        let a = try await EdgeHarness.start(configure: configure, nodeID: "node-a", script: { _ in .init(body: "x") })
        let b = try await EdgeHarness.start(configure: configure, nodeID: "node-b", script: { _ in .init(body: "x") })
        let origin = try await origin(nodes: [("node-a", a.node.adminPort), ("node-b", b.node.adminPort), ("node-gone", 1)])
        #expect(try await origin.call(.PUT, "/v1/tenants/newco", token: Self.adminToken, body: Self.tenant).status == 200)
        let bad = try await origin.call(.PUT, "/v1/tenants/badco", token: Self.adminToken, body: #"{"hosts":["x.test"],"upstream":"ftp://x"}"#)
        #expect(bad.status == 400 && bad.body.contains("upstream"))
        #expect(try await origin.call(.PUT, "/v1/tenants/newco", token: OriginHarness.publisherToken, body: Self.tenant).status == 403)
        let published = try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken)
        #expect(published.status == 200)
        #expect(published.body.hasPrefix(#"{"version":1,"pushed":{"node-a":"ok","node-b":"ok","node-gone":"error: unreachable"}"#))
        for node in [a, b] {
            #expect(try await node.get("/x", host: "api.newco.test").status == 502, "newco is served (its upstream is down)")
            #expect(try await node.get("/x", host: "api.acme.test").status == 421, "acme is not in the origin's registry")
        }
        // Nodes pull it with their region's token; the signature verifies; another region is refused.
        let pulled = try await origin.call(.GET, "/v1/config/bundle?region=eu-west", token: OriginHarness.nodeToken)
        let verifier = try Ed25519Key(pem: Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/signing.pub"))), name: "pub")
        let signature = try #require(pulled.signature.flatMap { Data(base64Encoded: String($0.dropFirst("ed25519=".count))) })
        #expect(verifier.verify(signature: Array(signature), message: Array(pulled.body.utf8)))
        #expect(try await origin.call(.GET, "/v1/config/bundle?region=us-east", token: OriginHarness.nodeToken).status == 403)
        await a.shutdown(); await b.shutdown(); await origin.stop()
    }

    @Test func aNodeThatMissedThePushPullsTheBundleAtStartAndTheOriginKeepsItsVersion() async throws {
        let originState = try temporaryDirectory("te-origin-state")
        var origin = try await origin(stateDir: originState, nodes: [("node-a", 1)])
        #expect(try await origin.call(.PUT, "/v1/tenants/newco", token: Self.adminToken, body: Self.tenant).status == 200)
        #expect(try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken).body.contains("error: unreachable"))
        let state = try temporaryDirectory("te-pull")
        let node = try await EdgeHarness.start(configure: { config in
            config.stateDir = state
            config.security.configPublicKey = keys + "/signing.pub"
            origin.follow(&config, directory: state)
        }, nodeID: "node-a", script: { _ in .init(body: "x") })
        try await waitUntil { try await node.admin(.GET, "/_edge/stats").body.contains(#""config_version":1"#) }
        #expect(try await node.get("/x", host: "api.newco.test").status == 502)
        await node.shutdown()
        // The origin restarts with its registry and keeps counting versions.
        await origin.stop()
        origin = try await self.origin(stateDir: originState, nodes: [])
        #expect(try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken).body.hasPrefix(#"{"version":2,"#))
        // Erasure: the tenant leaves the registry and every node is told to drop its data.
        let erased = try await origin.call(.DELETE, "/v1/tenants/newco", token: Self.adminToken)
        #expect(erased.status == 200 && erased.body.contains(#""erased":"newco""#))
        #expect(try await origin.call(.DELETE, "/v1/tenants/newco", token: Self.adminToken).status == 404)
        await origin.stop()
    }
}
