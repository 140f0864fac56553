import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// GDPR erasure end to end: origin, two nodes sharing the real redis-server, real TLS.
@Suite("Tenant erasure", .serialized)
struct ErasureTests {
    @Test func anErasedTenantLeavesNoKeyInRedisNoEntryInL1AndEveryNodeConfirms() async throws {
        let secrets = try OriginSecrets("te-erase")
        let keys = secrets.directory
        let redisURL = try TestEnvironment.redisURL(database: 11)
        let originState = try temporaryDirectory("te-erase-origin")
        // The origin first (nodes follow it), then the nodes, then the origin again knowing their admin ports.
        let bootstrap = try await OriginHarness.start(stateDir: originState)
        let port = bootstrap.server.port
        var nodes: [EdgeHarness] = []
        for id in ["node-a", "node-b"] {
            let state = try temporaryDirectory("te-erase-\(id)")
            nodes.append(
                try await EdgeHarness.start(
                    configure: { config in
                        config.stateDir = state
                        config.security.configPublicKey = keys + "/signing.pub"
                        config.security.kekFile = keys + "/eu-west.kek"
                        config.cache.redis = .init(url: redisURL, poolSize: 2, timeoutMs: 500)
                        bootstrap.follow(&config, directory: state)
                    }, nodeID: id,
                    script: { request in
                        .init(headers: [("Cache-Control", "max-age=300")], body: "private \(request.uri)")
                    }))
        }
        await bootstrap.stop()
        let origin = try await OriginHarness.start(
            secrets: secrets, pushingTo: nodes, stateDir: originState, port: port,
            adminToken: OriginBundleTests.adminToken)
        let admin = OriginBundleTests.adminToken
        for tenant in ["newco", "keepco"] {
            let body = #"{"hosts":["api.\#(tenant).test"],"upstream":"\#(nodes[0].upstream.url)"}"#
            #expect(try await origin.call(.PUT, "/v1/tenants/\(tenant)", token: admin, body: body).status == 200)
        }
        #expect(
            try await origin.call(.POST, "/v1/config/publish", token: admin).body.contains(
                #""node-a":"ok","node-b":"ok""#))
        for path in (0..<20).map({ "/v1/person/\($0)" }) {
            _ = try await nodes[0].get(path, host: "api.newco.test")
            _ = try await nodes[0].get(path, host: "api.keepco.test")
        }
        let redis = try RedisConnection.open(try #require(RedisEndpoint(parsing: redisURL)), timeoutMs: 1000)
        func redisKeys(_ tenant: String) throws -> [String] {
            guard case .array(let items) = try redis.command("KEYS", "te:\(tenant):*") else { return [] }
            return items.compactMap {
                if case .string(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil }
            }
        }
        try await waitUntil(seconds: 10) { ((try? redisKeys("newco"))?.count ?? 0) >= 20 }
        _ = try await nodes[1].get("/v1/person/1", host: "api.newco.test")  // promoted into B's L1 too
        let keepcoBefore = try redisKeys("keepco").count

        // Erase at the origin, then publish the bundle without it.
        let erased = try await origin.call(.DELETE, "/v1/tenants/newco", token: admin)
        #expect(erased.status == 200 && erased.body.contains(#""erased":"newco""#))
        #expect(try await origin.call(.POST, "/v1/config/publish", token: admin).status == 200)
        try await waitUntil(seconds: 10, advancing: nodes[0].clock, nodes[1].clock) {
            let record = try await origin.call(.GET, "/v1/erasures/newco", token: admin).body
            return record.contains(#""node-a":"#) && record.contains(#""node-b":"#)
        }
        #expect(
            try redisKeys("newco") == ["te:newco:fence"],
            "no key of the erased tenant is left in Redis but its moved fence")
        #expect(
            try redis.command("GET", "te:newco:fence") != .null, "a late write that read the old fence is still refused"
        )
        #expect(try redisKeys("keepco").count == keepcoBefore, "another tenant's entries are untouched")
        for node in nodes {
            #expect(node.runtime.caches["newco"] == nil)
            #expect(try await node.get("/v1/person/1", host: "api.newco.test").status == 421)
        }
        #expect(try await nodes[0].get("/v1/person/1", host: "api.keepco.test").cacheStatus.contains("; hit"))
        let report = try await origin.call(.GET, "/v1/report/compliance", token: admin)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.body.utf8)) as? [String: Any])
        let tenants = try #require(json["tenants"] as? [[String: Any]])
        #expect(tenants.map { $0["id"] as? String } == ["keepco"])
        #expect(tenants.first?["encrypted"] as? Bool == true)
        #expect((tenants.first?["key_versions"] as? [[String: Any]])?.first?["version"] as? Int == 1)
        let erasures = try #require(json["erasures"] as? [[String: Any]])
        #expect(erasures.first?["tenant"] as? String == "newco")
        #expect((erasures.first?["confirmed"] as? [String: String])?.keys.sorted() == ["node-a", "node-b"])
        #expect((json["audit_chain"] as? [String: Any])?["valid"] as? Bool == true)
        #expect(try await origin.call(.GET, "/v1/report/compliance", token: OriginHarness.publisherToken).status == 403)
        let audit = try String(contentsOfFile: originState + "/audit.jsonl", encoding: .utf8)
        guard case .valid = AuditChain.verify(audit, sha256: { OpenSSL.sha256($0) }) else {
            Issue.record("the origin's audit chain does not verify")
            return
        }
        #expect(audit.contains(#""event":"tenant_erased""#) && audit.contains(#""event":"erasure_confirmed""#))
        for node in nodes { await node.shutdown() }
        await origin.stop()
    }
}

/// Key rotation while two nodes sharing Redis serve traffic.
@Suite("Key rotation under load", .serialized)
struct RotationUnderLoadTests {
    @Test func rotatingAndRetiringUnderLoadGivesNoFailedOrWrongResponse() async throws {
        let secrets = try OriginSecrets("te-rotate")
        let keys = secrets.directory
        let redisURL = try TestEnvironment.redisURL(database: 12)
        var nodes: [EdgeHarness] = []
        for id in ["node-a", "node-b"] {
            nodes.append(
                try await EdgeHarness.start(
                    configure: { config in
                        config.security.configPublicKey = keys + "/signing.pub"
                        config.security.kekFile = keys + "/eu-west.kek"
                        config.cache.redis = .init(url: redisURL, poolSize: 2, timeoutMs: 500)
                    }, nodeID: id,
                    script: { request in
                        .init(headers: [("Cache-Control", "max-age=300")], body: "body of \(request.uri)")
                    }))
        }
        let origin = try await OriginHarness.start(
            secrets: secrets, pushingTo: nodes, adminToken: OriginBundleTests.adminToken)
        let admin = OriginBundleTests.adminToken
        #expect(
            try await origin.call(
                .PUT, "/v1/tenants/newco", token: admin,
                body: #"{"hosts":["api.newco.test"],"upstream":"\#(nodes[0].upstream.url)"}"#
            ).status == 200)
        #expect(
            try await origin.call(.POST, "/v1/config/publish", token: admin).body.contains(
                #""node-a":"ok","node-b":"ok""#))
        let failures = Locked(0)
        let served = Locked(0)
        let serving = nodes
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in 0..<150 {
                            let path = "/item/\((worker * 31 + index) % 60)"
                            let response = try await serving[index % 2].get(path, host: "api.newco.test")
                            if response.status != 200 || response.body != "body of \(path)" {
                                failures.update { $0 += 1 }
                            }
                            served.update { $0 += 1 }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        for version in 2...4 {
            try await Task.sleep(for: .milliseconds(150))
            #expect(try await origin.call(.POST, "/v1/tenants/newco/keys/rotate", token: admin).status == 200)
            #expect(try await origin.call(.DELETE, "/v1/tenants/newco/keys/\(version - 1)", token: admin).status == 200)
            #expect(
                try await origin.call(.POST, "/v1/config/publish", token: admin).body.contains(
                    #""node-a":"ok","node-b":"ok""#))
        }
        try await load.value
        #expect(served.value == 1200)
        #expect(failures.value == 0, "no failed or wrong response while keys rotated and retired")
        // Straight from Redis: every entry left is sealed under version 4; the retired versions were swept.
        let redis = try RedisConnection.open(try #require(RedisEndpoint(parsing: redisURL)), timeoutMs: 1000)
        try await waitUntil(seconds: 10) {
            guard case .array(let names) = try redis.command("KEYS", "te:newco:g*") else { return false }
            let versions = try names.compactMap { name -> UInt32? in
                guard case .string(let key) = name, !String(decoding: key, as: UTF8.self).contains(":idx:"),
                    !String(decoding: key, as: UTF8.self).hasSuffix(":bytes"),
                    case .string(let value) = try redis.command([Array("GET".utf8), key]),
                    case .entry(let entry) = L2EntryCodec.decodeValue(value)
                else { return nil }
                return entry.keyVersion
            }
            return !versions.isEmpty && versions.allSatisfy { $0 == 4 }
        }
        for node in nodes {
            #expect(node.runtime.caches["newco"]?.cipher.keyVersion == 4)
            #expect(
                node.runtime.caches["newco"]?.entriesByKeyVersion().keys.allSatisfy { $0 == 4 } == true,
                "no entry under a retired key")
            #expect(
                node.runtime.events.count.load(ordering: .relaxed) == 0,
                "security events: \(node.runtime.events.recent.map { "\($0.key) \($0.detail)" })")
        }
        for node in nodes { await node.shutdown() }
        await origin.stop()
    }
}
