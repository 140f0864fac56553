import AsyncHTTPClient
import Foundation
import NIOHTTP1
import NIOSSL
import TenantEdgeConfig
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

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
                .init(
                    id: $0.id, adminURL: "http://127.0.0.1:\($0.adminPort)", adminTokenFile: keys + "/node-admin.token")
            }
        }
    }

    @Test func anOriginWhoseVersionWentBackPublishesAboveTheNodes() async throws {
        let node = try await EdgeHarness.start(
            configure: { $0.security.configPublicKey = keys + "/signing.pub" },
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
        await origin.stop()
        await node.shutdown()
    }

    @Test func aHostOfAnotherTenantIsRefusedByTheRegistry() async throws {
        let origin = try await origin(nodes: [])
        #expect(
            try await origin.call(
                .PUT, "/v1/tenants/one", token: Self.admin,
                body: #"{"hosts":["api.one.test"],"upstream":"http://127.0.0.1:1"}"#
            ).status == 200)
        let stolen = try await origin.call(
            .PUT, "/v1/tenants/two", token: Self.admin,
            body: #"{"hosts":["API.one.test"],"upstream":"http://127.0.0.1:1"}"#)
        #expect(stolen.status == 400)
        #expect(stolen.body.contains("already belongs to tenant 'one'"))
        #expect(try await origin.call(.PUT, "/v1/tenants/Bad%20Id", token: Self.admin, body: "{}").status == 400)
        await origin.stop()
    }

    @Test func erasuresAreConfirmedOnlyByTheNodesOwnToken() async throws {
        let origin = try await origin(nodes: [])
        #expect(
            try await origin.call(
                .PUT, "/v1/tenants/gone", token: Self.admin,
                body: #"{"hosts":["api.gone.test"],"upstream":"http://127.0.0.1:1"}"#
            ).status == 200)
        #expect(try await origin.call(.DELETE, "/v1/tenants/gone", token: Self.admin).status == 200)
        let shared = try await origin.call(
            .POST, "/v1/erasures/gone", token: OriginHarness.nodeToken, body: #"{"node":"node-a"}"#)
        #expect(shared.status == 403, "the region's shared token cannot vouch for a node")
        let sibling = try await origin.call(
            .POST, "/v1/erasures/gone", token: OriginHarness.nodeToken(for: "node-b"),
            body: #"{"node":"node-a"}"#)
        #expect(sibling.status == 403, "nor can a sibling's")
        let huge = try await origin.call(
            .POST, "/v1/erasures/gone", token: OriginHarness.nodeToken(for: "node-a"),
            body: #"{"node":"\#(String(repeating: "n", count: 100_000))"}"#)
        #expect(huge.status == 400)
        let own = try await origin.call(
            .POST, "/v1/erasures/gone", token: OriginHarness.nodeToken(for: "node-a"),
            body: #"{"node":"node-a"}"#)
        #expect(own.status == 200)
        let record = try await origin.call(.GET, "/v1/erasures/gone", token: Self.admin).body
        #expect(record.contains(#""node-a":"#) && !record.contains("node-b") && !record.contains("nnnn"))
        await origin.stop()
    }

    @Test func tlsBelow12IsRefused() async throws {
        let origin = try await origin(nodes: [])
        var old = TLSConfiguration.makeClientConfiguration()
        old.trustRoots = .file(try TestEnvironment.require("TE_TEST_CA_FILE"))
        old.maximumTLSVersion = .tlsv11
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: old))
        await #expect(throws: (any Error).self) {
            _ = try await client.execute(HTTPClientRequest(url: origin.url + "/healthz"), timeout: .seconds(5))
        }
        var current = old
        current.maximumTLSVersion = nil
        let modern = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: current))
        #expect(
            try await modern.execute(HTTPClientRequest(url: origin.url + "/healthz"), timeout: .seconds(5)).status
                == .ok)
        try await client.shutdown()
        try await modern.shutdown()
        await origin.stop()
    }

    @Test func uploadsWithoutATokenAreRefusedBeforeTheBodyIsRead() async throws {
        let origin = try await origin(nodes: [])
        let refused = try await origin.call(
            .POST, "/v1/invalidations", token: "nobody",
            body: String(repeating: "x", count: 4 << 20))
        #expect(refused.status == 401 || refused.status == 403)
        #expect(try await origin.publish(#"{"tenant":"acme","all":true}"#).status == 200, "the origin still serves")
        await origin.stop()
    }

    @Test func bundlesReachANodeOverTLSWithTheirRedisURLSealed() async throws {
        let secrets = try OriginSecrets("te-origin-tls")
        let cert = try TestEnvironment.require("TE_TEST_SERVER_CERT")
        let key = try TestEnvironment.require("TE_TEST_SERVER_KEY")
        let state = try temporaryDirectory("te-node-tls")
        let node = try await EdgeHarness.start(
            configure: { config in
                config.stateDir = state
                config.security.configPublicKey = secrets.publicKey
                config.security.kekFile = secrets.regionKEK
                config.listen.adminCertFile = cert
                config.listen.adminKeyFile = key
            }, nodeID: "node-a", script: { _ in .init(body: "x") })
        let origin = try await OriginHarness.start { config in
            config.signingKeyFile = secrets.signingKey
            config.tokens.admin = [OpenSSL.sha256(Array(Self.admin.utf8))]
            config.regions[0].kekFile = secrets.regionKEK
            config.nodeCAFile = try? TestEnvironment.require("TE_TEST_CA_FILE")
            config.regions[0].nodes = [
                .init(
                    id: "node-a", adminURL: "https://127.0.0.1:\(node.node.adminPort)",
                    adminTokenFile: secrets.nodeAdminToken)
            ]
        }
        let secretURL = "redis://edge:s3cret-pass@127.0.0.1:1/3"
        let tenant =
            #"{"hosts":["api.sealed.test"],"upstream":"http://127.0.0.1:1","isolation":"database","#
            + #""redis_url":"\#(secretURL)"}"#
        #expect(try await origin.call(.PUT, "/v1/tenants/sealed", token: Self.admin, body: tenant).status == 200)
        let published = try await origin.call(.POST, "/v1/config/publish", token: Self.admin)
        #expect(published.body.contains(#""node-a":"ok""#), "pushed over TLS: \(published.body)")
        let applied = try #require(node.runtime.table.tenants.first { $0.id == "sealed" })
        #expect(applied.redisURL == secretURL, "opened with the region KEK on the node")
        let persisted = try String(contentsOfFile: state + "/bundle.signed", encoding: .utf8)
        #expect(
            persisted.contains("redis_url_sealed") && !persisted.contains("s3cret-pass"),
            "never in clear on the node's disk")
        // Plain HTTP to the TLS admin listener gets nothing useful.
        let plain = try await RawHTTP.exchange(
            port: node.node.adminPort, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(!plain.hasPrefix("HTTP/1.1 200"))
        await origin.stop()
        await node.shutdown()
    }
}

@Suite("Origin config: pushes never in clear beyond loopback")
struct OriginPushURLTests {
    @Test func regionNamesFollowTheNodesRuleSoNoBundleIsRefusedEverywhere() {
        var config = OriginConfig()
        config.certFile = "c"
        config.keyFile = "k"
        config.regions = ["eu-west", "EU West", "us\r\nx-evil: 1"].map {
            .init(region: RegionConfig(name: $0, lat: 0, lon: 0, publicURL: "https://eu.test"), nodes: [])
        }
        let keys = config.validate().map(\.key)
        #expect(!keys.contains("regions[0].name"))
        #expect(keys.contains("regions[1].name") && keys.contains("regions[2].name"))
    }

    @Test func adminURLsMustBeHTTPSOutsideLoopback() {
        var config = OriginConfig()
        config.certFile = "c"
        config.keyFile = "k"
        config.regions = [
            .init(
                region: RegionConfig(name: "eu", lat: 0, lon: 0, publicURL: "https://eu.test"),
                nodes: [
                    .init(id: "a", adminURL: "http://10.0.0.5:9090", adminTokenFile: "t"),
                    .init(id: "b", adminURL: "http://127.0.0.1:9090", adminTokenFile: "t"),
                    .init(id: "c", adminURL: "https://node-c.internal:9090", adminTokenFile: "t"),
                    .init(id: "d", adminURL: "http://[::1]:9090", adminTokenFile: "t"),
                    .init(id: "e", adminURL: "http://127.0.0.1.evil.example:9090", adminTokenFile: "t"),
                    .init(id: "f", adminURL: "http://127.0.0.1:1@evil.example/", adminTokenFile: "t"),
                    .init(id: "g", adminURL: "https://user:pw@node-g.internal", adminTokenFile: "t"),
                ])
        ]
        let keys = config.validate().map(\.key)
        #expect(keys.contains("regions[0].nodes[0].admin_url"))
        #expect(!keys.contains("regions[0].nodes[1].admin_url"))
        #expect(!keys.contains("regions[0].nodes[2].admin_url"))
        #expect(!keys.contains("regions[0].nodes[3].admin_url"))
        #expect(keys.contains("regions[0].nodes[4].admin_url"), "a name that starts like loopback is no loopback")
        #expect(keys.contains("regions[0].nodes[5].admin_url"), "user info before the real host")
        #expect(keys.contains("regions[0].nodes[6].admin_url"))
    }

    @Test func onlyANodesOwnStaleVersionAnswerRaisesTheOriginsVersion() {
        let node = #"{"error":"stale_version","detail":"version 3 is not above the running 7"}"#
        #expect(BundlePusher.runningVersion(inConflict: node) == 7)
        #expect(
            BundlePusher.runningVersion(
                inConflict: #"{"error":"stale_version","detail":"… the running 9223372036854775807"}"#) == nil)
        #expect(BundlePusher.runningVersion(inConflict: #"{"error":"other","detail":"the running 7"}"#) == nil)
        #expect(BundlePusher.runningVersion(inConflict: "the running 7") == nil)
    }
}

@Suite("Origin config: publisher scopes")
struct OriginPublisherScopeTests {
    @Test func aPublisherEntryWithoutTenantsIsAnError() throws {
        let directory = try temporaryDirectory("te-origin-config")
        let path = directory + "/origin.yaml"
        try """
        listen: "127.0.0.1:0"
        tls: { cert_file: ./c.pem, key_file: ./k.pem }
        tokens:
          publishers: [{sha256: "\(String(repeating: "ab", count: 32))"}]
        """.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: EdgeError.self) { try OriginConfigReader.load(path: path) }
        do { _ = try OriginConfigReader.load(path: path) } catch {
            #expect(error.message.contains("tokens.publishers[0].tenants: is required"))
        }
    }
}
