import Foundation
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// A node whose state files were torn (half a bundle, a cursor cut to nothing) is started again next
/// to a real origin: the bundle is never trusted, the node serves no tenant until it has the origin's
/// own (at least as new as the version it had persisted), a restart meanwhile holds again, and the
/// cursor starts over so every event is applied again (purges are idempotent).
@Suite("Torn state files on a node that follows an origin", .serialized)
struct TornStateTests {
    static let admin = "torn-admin-token"

    static let script: TestUpstream.Script = { request in
        .init(headers: [("Cache-Control", "max-age=60")], body: "\(request.header("host") ?? "?")|\(request.uri)")
    }

    @Test func aHalfBundleIsNeverTrustedAndTheOriginsBundleIsPulledInstead() async throws {
        try await OriginHarness.withFleet(adminToken: Self.admin, script: Self.script) { origin, nodes in
            let tenant = #"{"hosts":["api.bundled.test"],"upstream":"\#(nodes[0].upstream.url)"}"#
            #expect(try await origin.call(.PUT, "/v1/tenants/bundled", token: Self.admin, body: tenant).status == 200)
            #expect(
                try await origin.call(.POST, "/v1/config/publish", token: Self.admin).body.contains(#""node-a":"ok""#))
            #expect(try await origin.publish(#"{"tenant":"bundled","keys":["/x"]}"#).status == 200)
            try await waitUntil(seconds: 10, advancing: nodes[0].clock) { nodes[0].node.invalidationCursor >= 1 }

            // node-a's state files, torn: half of its bundle, and a cursor cut to nothing.
            let source = nodes[0].runtime.config.stateDir
            let torn = try temporaryDirectory("te-torn")
            let bundle = try Data(contentsOf: URL(fileURLWithPath: source + "/bundle.signed"))
            try bundle.prefix(bundle.count / 2).write(to: URL(fileURLWithPath: torn + "/bundle.signed"))
            try Data().write(to: URL(fileURLWithPath: torn + "/feed.cursor"))
            let security = nodes[0].runtime.config.security
            func configure(_ config: inout EdgeConfig, reachable: Bool) {
                config.stateDir = torn
                config.security.configPublicKey = security.configPublicKey
                config.security.kekFile = security.kekFile
                origin.follow(&config, directory: torn, pollWait: 1)
                if !reachable { config.origin?.url = "https://127.0.0.1:9" }  // nothing listens there
            }

            // The bundle this node last persisted was version 3 (its own record, kept beside the bundle):
            // while holding, an older bundle (a replay, a lagging replica) must not take its place.
            try Data("3".utf8).write(to: URL(fileURLWithPath: torn + "/bundle.signed.version"))

            // The origin out of reach: the half bundle is not trusted and no tenant is served, not even
            // the node file's own (the lost bundle may have removed them); a restart holds again.
            for start in 1...2 {
                let held = try await EdgeHarness.start(
                    configure: { configure(&$0, reachable: false) }, nodeID: "node-c", script: Self.script)
                do {
                    let pending = try await held.get("/x", host: "api.bundled.test")
                    #expect(pending.status == 503 && pending.body.contains("config_pending"), "start \(start)")
                    #expect(pending.headers.first(name: "retry-after") == "5")
                    #expect(try await held.get("/x", host: "api.acme.test").status == 503, "start \(start)")
                    #expect(try await held.get("/healthz", host: "nobody.test").status == 503, "no ok to other regions")
                    #expect(try await held.admin(.GET, "/readyz").status == 503)
                    #expect(try await held.admin(.GET, "/_edge/stats").body.contains(#""config_pending":true"#))
                    let purge = try await held.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#)
                    #expect(purge.status == 503)
                    let kept = try Data(contentsOf: URL(fileURLWithPath: torn + "/bundle.signed"))
                    #expect(kept == bundle.prefix(bundle.count / 2), "the torn file stays until replaced")
                    held.runtime.audit.flush()
                    let audit = try String(contentsOfFile: torn + "/audit.jsonl", encoding: .utf8)
                    #expect(audit.contains(#""event":"persisted_bundle_untrusted""#))
                } catch {
                    await held.shutdown()
                    throw error
                }
                await held.shutdown()
            }

            // The origin back in reach, its bundle at version 1: below the floor, refused; the node
            // keeps holding and pulling. Two more publishes take the origin to version 3: applied.
            let recovered = try await EdgeHarness.start(
                configure: { configure(&$0, reachable: true) }, nodeID: "node-c", script: Self.script)
            do {
                try await waitUntil(seconds: 10, advancing: recovered.clock) {
                    recovered.runtime.audit.flush()
                    let audit = try String(contentsOfFile: torn + "/audit.jsonl", encoding: .utf8)
                    return audit.contains(#""event":"config_rejected""#) && audit.contains("below 3")
                }
                #expect(try await recovered.get("/x", host: "api.bundled.test").status == 503, "v1 is below the floor")
                for _ in 0..<2 {
                    #expect(try await origin.call(.POST, "/v1/config/publish", token: Self.admin).status == 200)
                }
                try await waitUntil(seconds: 15, advancing: recovered.clock) {
                    try await recovered.get("/x", host: "api.bundled.test").status == 200
                }
                #expect(try await recovered.get("/x", host: "api.bundled.test").body == "api.bundled.test|/x")
                #expect(try await recovered.admin(.GET, "/readyz").status == 200)
                #expect(try await recovered.get("/x", host: "api.acme.test").status == 421, "only the bundle's tenants")
                let persisted = try String(contentsOfFile: torn + "/bundle.signed", encoding: .utf8)
                #expect(persisted.hasPrefix("ed25519=") && persisted.contains("api.bundled.test"))
                try await waitUntil(seconds: 10, advancing: recovered.clock) {
                    recovered.node.invalidationCursor >= nodes[0].node.invalidationCursor
                }
                FaultReport.record(
                    "node state torn (half a bundle, an empty cursor), restarted",
                    [
                        ("tenants served from the torn bundle", 0),
                        ("cursor after recovery", Double(recovered.node.invalidationCursor)),
                    ])
            } catch {
                await recovered.shutdown()
                throw error
            }
            await recovered.shutdown()
        }
    }
}
