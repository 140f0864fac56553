import Foundation
import NIOHTTP1
@testable import TenantEdgeCore
import TenantEdgeNative
import Testing
@testable import TenantEdgeServer

/// Issue 11 at the origin: a version that went back, a registry nodes would refuse, forged erasure
/// evidence and unauthenticated uploads.
@Suite("Hostile input at the origin", .serialized)
struct OriginHostileTests {
    static let admin = OriginBundleTests.adminToken
    let keys: String
    init() throws { keys = try OriginSecrets("te-origin-hostile").directory }

    func origin(stateDir: String? = nil, nodes: [(id: String, adminPort: Int)]) async throws -> OriginHarness {
        try await OriginHarness.start(stateDir: stateDir) { config in
            config.signingKeyFile = keys + "/signing.key"
            config.tokens.admin = [OpenSSL.sha256(Array(Self.admin.utf8))]
            config.regions[0].nodes = nodes.map {
                .init(id: $0.id, adminURL: "http://127.0.0.1:\($0.adminPort)", adminTokenFile: keys + "/node-admin.token")
            }
        }
    }

    @Test func anOriginWhoseVersionWentBackPublishesAboveTheNodes() async throws {
        let node = try await EdgeHarness.start(configure: { $0.security.configPublicKey = keys + "/signing.pub" },
                                               nodeID: "node-a", script: { _ in .init(body: "x") })
        var origin = try await origin(nodes: [("node-a", node.node.adminPort)])
        for _ in 0..<3 { _ = try await origin.call(.POST, "/v1/config/publish", token: Self.admin) }
        #expect(node.runtime.table.version == 3)
        await origin.stop()
        // Its state is lost (a restore of an old backup): it would publish version 1 again.
        origin = try await self.origin(nodes: [("node-a", node.node.adminPort)])
        let tenant = #"{"hosts":["api.later.test"],"upstream":"http://127.0.0.1:1"}"#
        #expect(try await origin.call(.PUT, "/v1/tenants/later", token: Self.admin, body: tenant).status == 200)
        let published = try await origin.call(.POST, "/v1/config/publish", token: Self.admin)
        #expect(published.body.hasPrefix(#"{"version":4,"#), "\(published.body)")
        #expect(published.body.contains(#""node-a":"ok""#))
        #expect(node.runtime.table.tenants.contains { $0.id == "later" }, "the node applied it")
        await origin.stop(); await node.shutdown()
    }

    @Test func aHostOfAnotherTenantIsRefusedByTheRegistry() async throws {
        let origin = try await origin(nodes: [])
        #expect(try await origin.call(.PUT, "/v1/tenants/one", token: Self.admin,
                                      body: #"{"hosts":["api.one.test"],"upstream":"http://127.0.0.1:1"}"#).status == 200)
        let stolen = try await origin.call(.PUT, "/v1/tenants/two", token: Self.admin,
                                           body: #"{"hosts":["API.one.test"],"upstream":"http://127.0.0.1:1"}"#)
        #expect(stolen.status == 400)
        #expect(stolen.body.contains("already belongs to tenant 'one'"))
        #expect(try await origin.call(.PUT, "/v1/tenants/Bad%20Id", token: Self.admin, body: "{}").status == 400)
        await origin.stop()
    }

    @Test func erasuresAreConfirmedOnlyByTheNodesOwnToken() async throws {
        let origin = try await origin(nodes: [])
        #expect(try await origin.call(.PUT, "/v1/tenants/gone", token: Self.admin,
                                      body: #"{"hosts":["api.gone.test"],"upstream":"http://127.0.0.1:1"}"#).status == 200)
        #expect(try await origin.call(.DELETE, "/v1/tenants/gone", token: Self.admin).status == 200)
        let shared = try await origin.call(.POST, "/v1/erasures/gone", token: OriginHarness.nodeToken, body: #"{"node":"node-a"}"#)
        #expect(shared.status == 403, "the region's shared token cannot vouch for a node")
        let sibling = try await origin.call(.POST, "/v1/erasures/gone", token: OriginHarness.nodeToken(for: "node-b"),
                                            body: #"{"node":"node-a"}"#)
        #expect(sibling.status == 403, "nor can a sibling's")
        let huge = try await origin.call(.POST, "/v1/erasures/gone", token: OriginHarness.nodeToken(for: "node-a"),
                                         body: #"{"node":"\#(String(repeating: "n", count: 100_000))"}"#)
        #expect(huge.status == 400)
        let own = try await origin.call(.POST, "/v1/erasures/gone", token: OriginHarness.nodeToken(for: "node-a"),
                                        body: #"{"node":"node-a"}"#)
        #expect(own.status == 200)
        let record = try await origin.call(.GET, "/v1/erasures/gone", token: Self.admin).body
        #expect(record.contains(#""node-a":"#) && !record.contains("node-b") && !record.contains("nnnn"))
        await origin.stop()
    }

    @Test func uploadsWithoutATokenAreRefusedBeforeTheBodyIsRead() async throws {
        let origin = try await origin(nodes: [])
        let refused = try await origin.call(.POST, "/v1/invalidations", token: "nobody",
                                            body: String(repeating: "x", count: 4 << 20))
        #expect(refused.status == 401 || refused.status == 403)
        #expect(try await origin.publish(#"{"tenant":"acme","all":true}"#).status == 200, "the origin still serves")
        await origin.stop()
    }
}
