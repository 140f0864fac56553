import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// The origin's registry, signed bundles pushed to nodes and pulled by them, over real TLS.
@Suite("Config bundles from the origin", .serialized)
struct OriginBundleTests {
    static let adminToken = "origin-admin-token"
    let keys: String
    init() throws {
        keys = try OriginSecrets("te-origin-keys").directory
    }

    /// Origin settings: signing key, admin token, and `nodes` of eu-west reached at their admin ports.
    func origin(stateDir: String? = nil, nodes: [(id: String, adminPort: Int)]) async throws -> OriginHarness {
        try await OriginHarness.start(stateDir: stateDir) { config in
            config.signingKeyFile = keys + "/signing.key"
            config.tokens.admin = [OpenSSL.sha256(Array(Self.adminToken.utf8))]
            config.regions[0].nodes = nodes.map {
                .init(
                    id: $0.id, adminURL: "http://127.0.0.1:\($0.adminPort)", adminTokenFile: keys + "/node-admin.token")
            }
        }
    }

    static let tenant = #"{"hosts":["api.newco.test"],"upstream":"http://127.0.0.1:1","residency":["eu-west"]}"#

    @Test func publishBuildsSignsAndPushesTheBundleToEveryNode() async throws {
        let configure: (inout EdgeConfig) -> Void = { $0.security.configPublicKey = keys + "/signing.pub" }
        let a = try await EdgeHarness.start(configure: configure, nodeID: "node-a", script: { _ in .init(body: "x") })
        let b = try await EdgeHarness.start(configure: configure, nodeID: "node-b", script: { _ in .init(body: "x") })
        let origin = try await origin(nodes: [
            ("node-a", a.node.adminPort), ("node-b", b.node.adminPort), ("node-gone", 1),
        ])
        #expect(
            try await origin.call(.PUT, "/v1/tenants/newco", token: Self.adminToken, body: Self.tenant).status == 200)
        let bad = try await origin.call(
            .PUT, "/v1/tenants/badco", token: Self.adminToken, body: #"{"hosts":["x.test"],"upstream":"ftp://x"}"#)
        #expect(bad.status == 400 && bad.body.contains("upstream"))
        #expect(
            try await origin.call(.PUT, "/v1/tenants/newco", token: OriginHarness.publisherToken, body: Self.tenant)
                .status == 403)
        let published = try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken)
        #expect(published.status == 200)
        #expect(
            published.body.hasPrefix(
                #"{"version":1,"pushed":{"node-a":"ok","node-b":"ok","node-gone":"error: unreachable"}"#))
        for node in [a, b] {
            #expect(
                try await node.get("/x", host: "api.newco.test").status == 502, "newco is served (its upstream is down)"
            )
            #expect(
                try await node.get("/x", host: "api.acme.test").status == 421, "acme is not in the origin's registry")
        }
        // Nodes pull it with their region's token; the signature verifies; another region is refused.
        let pulled = try await origin.call(.GET, "/v1/config/bundle?region=eu-west", token: OriginHarness.nodeToken)
        let verifier = try Ed25519Key(
            pem: Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/signing.pub"))), name: "pub")
        let signature = try #require(
            pulled.signature.flatMap { Data(base64Encoded: String($0.dropFirst("ed25519=".count))) })
        #expect(verifier.verify(signature: Array(signature), message: Array(pulled.body.utf8)))
        #expect(
            try await origin.call(.GET, "/v1/config/bundle?region=us-east", token: OriginHarness.nodeToken).status
                == 403)
        await a.shutdown()
        await b.shutdown()
        await origin.stop()
    }

    @Test func aNodeThatMissedThePushPullsTheBundleAtStartAndTheOriginKeepsItsVersion() async throws {
        let originState = try temporaryDirectory("te-origin-state")
        var origin = try await origin(stateDir: originState, nodes: [("node-a", 1)])
        #expect(
            try await origin.call(.PUT, "/v1/tenants/newco", token: Self.adminToken, body: Self.tenant).status == 200)
        #expect(
            try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken).body.contains(
                "error: unreachable"))
        let state = try temporaryDirectory("te-pull")
        let node = try await EdgeHarness.start(
            configure: { config in
                config.stateDir = state
                config.security.configPublicKey = keys + "/signing.pub"
                origin.follow(&config, directory: state)
            }, nodeID: "node-a", script: { _ in .init(body: "x") })
        try await waitUntil(seconds: 10, advancing: node.clock) {
            try await node.admin(.GET, "/_edge/stats").body.contains(#""config_version":1"#)
        }
        #expect(try await node.get("/x", host: "api.newco.test").status == 502)
        await node.shutdown()
        // The origin restarts with its registry and keeps counting versions.
        await origin.stop()
        origin = try await self.origin(stateDir: originState, nodes: [])
        #expect(
            try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken).body.hasPrefix(#"{"version":2,"#)
        )
        // Erasure: the tenant leaves the registry and every node is told to drop its data.
        let erased = try await origin.call(.DELETE, "/v1/tenants/newco", token: Self.adminToken)
        #expect(erased.status == 200 && erased.body.contains(#""erased":"newco""#))
        #expect(try await origin.call(.DELETE, "/v1/tenants/newco", token: Self.adminToken).status == 404)
        await origin.stop()
    }
}

/// Envelope keys: generated at the origin, sealed per region KEK, opened only in node memory.
@Suite("Tenant keys sealed for the region", .serialized)
struct EnvelopeKeyTests {
    @Test func keysTravelSealedAndANodeWithTheWrongKEKRefusesTheBundle() async throws {
        let secrets = try OriginSecrets("te-envelope")
        let (keys, kek) = (secrets.directory, secrets.kek)
        try Data(try OpenSSL.randomBytes(32)).write(to: URL(fileURLWithPath: keys + "/wrong.kek"))
        func node(_ id: String, kek: String) async throws -> EdgeHarness {
            try await EdgeHarness.start(
                configure: { config in
                    config.security.configPublicKey = keys + "/signing.pub"
                    config.security.kekFile = keys + "/" + kek
                }, nodeID: id,
                script: { request in
                    .init(headers: [("Cache-Control", "max-age=60")], body: "secret body \(request.uri)")
                })
        }
        let right = try await node("node-right", kek: "eu-west.kek")
        let wrong = try await node("node-wrong", kek: "wrong.kek")
        let originState = try temporaryDirectory("te-envelope-origin")
        let origin = try await OriginHarness.start(
            secrets: secrets, pushingTo: [right, wrong], stateDir: originState,
            adminToken: OriginBundleTests.adminToken)
        let tenant = #"{"hosts":["api.newco.test"],"upstream":"\#(right.upstream.url)"}"#
        #expect(
            try await origin.call(.PUT, "/v1/tenants/newco", token: OriginBundleTests.adminToken, body: tenant).status
                == 200)
        let published = try await origin.call(.POST, "/v1/config/publish", token: OriginBundleTests.adminToken).body
        #expect(published.contains(#""node-right":"ok""#))
        #expect(
            published.contains(#""node-wrong":"error: 400"#)
                && published.contains("does not open under this node's KEK"))
        // The right node serves newco, encrypted under the origin's key; the wrong one kept its config.
        #expect(try await right.get("/x", host: "api.newco.test").status == 200)
        let cipher = try #require(right.runtime.caches["newco"]?.cipher)
        #expect(cipher.encrypts && cipher.keyVersion == 1)
        #expect(try await wrong.get("/x", host: "api.newco.test").status == 421)
        #expect(try await wrong.get("/x", host: "api.acme.test").status == 200)
        // Neither the origin's registry nor the node's persisted bundle holds the key in clear.
        let bundle = try await origin.call(.GET, "/v1/config/bundle?region=eu-west", token: OriginHarness.nodeToken)
            .body
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bundle.utf8)) as? [String: Any])
        let wrapped = try #require(
            ((object["tenants"] as? [[String: Any]])?.first?["keys"] as? [[String: Any]])?.first?["wrapped"] as? String)
        let key = try #require(
            KeyWrap.open(Array(Data(base64Encoded: wrapped)!), kek: kek, aad: KeyWrap.aad(tenant: "newco", version: 1)))
        // The origin's store (SQLite, with its write-ahead log): read as bytes, searched as text.
        let registry = try ["", "-wal"].compactMap { suffix in
            FileManager.default.contents(atPath: originState + "/origin.sqlite" + suffix)
        }.map { String(decoding: $0, as: UTF8.self) }.joined()
        #expect(registry.contains("newco"), "the store holds the registry")
        let persisted = try String(contentsOfFile: right.directory.path + "/bundle.signed", encoding: .utf8)
        right.runtime.audit.flush()
        let audit = try String(contentsOfFile: right.directory.path + "/audit.jsonl", encoding: .utf8)
        for text in [registry, persisted, bundle, audit] {
            #expect(
                !text.contains(Hex.encode(key)) && !text.contains(Data(key).base64EncodedString()),
                "no key bytes in clear")
        }
        // Rotation: a second version, current for writes once published; entries sealed under the
        // first stay readable and keep their names, so the cache stays warm.
        #expect(try await right.get("/x", host: "api.newco.test").cacheStatus.contains("; hit"))
        #expect(
            try await origin.call(.POST, "/v1/tenants/newco/keys/rotate", token: OriginBundleTests.adminToken).body
                == #"{"tenant":"newco","key_version":2}"#)
        _ = try await origin.call(.POST, "/v1/config/publish", token: OriginBundleTests.adminToken)
        #expect(right.runtime.caches["newco"]?.cipher.keyVersion == 2)
        #expect(
            try await right.get("/x", host: "api.newco.test").cacheStatus.contains("; hit"),
            "no cold cache after a rotation")
        _ = try await right.get("/y", host: "api.newco.test")
        let sealed = try #require(right.runtime.caches["newco"]?.lookup(target: "/y", requestHeaders: [])?.1.sealed)
        #expect(Array(sealed.prefix(4)) == [0, 0, 0, 2], "new entries are sealed under version 2")
        let stats = try await right.admin(.GET, "/_edge/stats").body
        #expect(stats.contains(#""key_version":2"#) && stats.contains(#""entries_by_key_version":{"1":1,"2":1}"#))
        // Retiring version 1: its entries become unreadable and are dropped at once; version 2 stays.
        #expect(
            try await origin.call(.DELETE, "/v1/tenants/newco/keys/1", token: OriginBundleTests.adminToken).status
                == 200)
        #expect(
            try await origin.call(.DELETE, "/v1/tenants/newco/keys/2", token: OriginBundleTests.adminToken).status
                == 409,
            "the only key cannot be retired")
        _ = try await origin.call(.POST, "/v1/config/publish", token: OriginBundleTests.adminToken)
        #expect(try await right.admin(.GET, "/_edge/stats").body.contains(#""entries_by_key_version":{"2":1}"#))
        #expect(try await right.get("/x", host: "api.newco.test").cacheStatus.contains("fwd=miss"))
        #expect(try await right.get("/y", host: "api.newco.test").cacheStatus.contains("; hit"))
        #expect(right.runtime.events.count.load(ordering: .relaxed) == 0, "retirement is not a decrypt failure")
        await right.shutdown()
        await wrong.shutdown()
        await origin.stop()
    }
}

/// A key's whole life on a node that logs everything: no key or token byte reaches the log.
@Suite("Key lifecycle leaves no secret in the logs", .serialized)
struct KeyLifecycleLogTests {
    @Test func rotateResealRetireAndEraseLogNoKeyBytes() async throws {
        let secrets = try OriginSecrets("te-lifecycle")
        let logs = LogCapture()
        let node = try await EdgeHarness.start(
            configure: { config in
                config.security.configPublicKey = secrets.publicKey
                config.security.kekFile = secrets.regionKEK
                config.cache.resealOnRead = true
            }, nodeID: "node-a", logs: logs,
            script: { request in .init(headers: [("Cache-Control", "max-age=300")], body: "doc \(request.uri)") })
        let origin = try await OriginHarness.start(
            secrets: secrets, pushingTo: [node], adminToken: OriginBundleTests.adminToken)
        let admin = OriginBundleTests.adminToken
        var keys: [[UInt8]] = [secrets.kek]
        func publishAndCollectKeys() async throws {
            #expect(try await origin.call(.POST, "/v1/config/publish", token: admin).body.contains(#""node-a":"ok""#))
            let bundle = try await origin.call(.GET, "/v1/config/bundle?region=eu-west", token: OriginHarness.nodeToken)
                .body
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bundle.utf8)) as? [String: Any])
            for tenant in object["tenants"] as? [[String: Any]] ?? [] {
                let id = tenant["id"] as? String ?? ""
                for key in tenant["keys"] as? [[String: Any]] ?? [] {
                    let wrapped = Array(Data(base64Encoded: key["wrapped"] as? String ?? "") ?? Data())
                    if let plain = KeyWrap.open(
                        wrapped, kek: secrets.kek,
                        aad: KeyWrap.aad(tenant: id, version: UInt32(key["version"] as? Int ?? 0)))
                    {
                        keys.append(plain)
                    }
                }
                if let naming = (tenant["naming_key"] as? String).flatMap({ Data(base64Encoded: $0) }),
                    let plain = KeyWrap.open(Array(naming), kek: secrets.kek, aad: KeyWrap.namingAAD(tenant: id))
                {
                    keys.append(plain)
                }
            }
        }
        #expect(
            try await origin.call(
                .PUT, "/v1/tenants/newco", token: admin,
                body: #"{"hosts":["api.newco.test"],"upstream":"\#(node.upstream.url)"}"#
            ).status == 200)
        try await publishAndCollectKeys()
        _ = try await node.get("/doc", host: "api.newco.test")
        #expect(try await origin.call(.POST, "/v1/tenants/newco/keys/rotate", token: admin).status == 200)
        try await publishAndCollectKeys()
        #expect(try await node.get("/doc", host: "api.newco.test").cacheStatus.contains("; hit"))
        #expect(
            try await node.admin(.GET, "/_edge/stats").body.contains(#""entries_by_key_version":{"2":1}"#),
            "reseal_on_read moved the hot entry to version 2")
        #expect(try await origin.call(.DELETE, "/v1/tenants/newco/keys/1", token: admin).status == 200)
        try await publishAndCollectKeys()
        #expect(
            try await node.get("/doc", host: "api.newco.test").cacheStatus.contains("; hit"),
            "resealed, so it survived the retirement")
        #expect(try await origin.call(.DELETE, "/v1/tenants/newco", token: admin).status == 200)
        _ = try await origin.call(.POST, "/v1/config/publish", token: admin)
        await node.shutdown()
        await origin.stop()
        let text = logs.text
        #expect(keys.count >= 4, "the KEK, two data keys and the naming key were checked")
        #expect(text.contains("config bundle applied"), "the node did log")
        for key in keys {
            #expect(
                !text.contains(Hex.encode(key)) && !text.contains(Data(key).base64EncodedString()),
                "no key bytes in the log")
        }
        for token in [EdgeHarness.adminToken, OriginHarness.nodeToken, admin] { #expect(!text.contains(token)) }
    }
}
