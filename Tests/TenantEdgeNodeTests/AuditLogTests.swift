import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// The node's audit log on disk, chained with OpenSSL's SHA-256.
@Suite("Audit log")
struct AuditLogTests {
    @Test func purgesAndRefusedTokensAreAuditedInAChainThatVerifies() async throws {
        try await withEdge(script: { _ in .init(headers: [("Cache-Control", "max-age=60")], body: "x") }) { edge in
            _ = try await edge.get("/a")
            #expect(
                try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/a"],"tags":["t"]}"#)
                    .status == 200)
            #expect(try await edge.admin(.GET, "/_edge/stats", token: "not-a-real-token-xyz").status == 401)
            edge.runtime.audit.flush()
            let text = try String(contentsOfFile: edge.runtime.audit.path, encoding: .utf8)
            #expect(AuditChain.verify(text, sha256: { OpenSSL.sha256($0) }) == .valid(entries: 2))
            let lines = text.split(separator: "\n")
            let purge = try #require(lines.first { $0.contains(#""event":"purge""#) })
            let prefix = Hex.encode(OpenSSL.sha256(Array(EdgeHarness.adminToken.utf8)).prefix(6))
            #expect(purge.contains(#""actor":"admin:\#(prefix)""#))
            #expect(
                purge.contains(#""tenant":"acme""#) && purge.contains(#""keys":"1""#) && purge.contains(#""tags":"1""#))
            #expect(lines.contains { $0.contains(#""event":"auth_failed""#) })
            #expect(
                !text.contains(EdgeHarness.adminToken) && !text.contains("not-a-real-token-xyz"),
                "tokens never reach the log")
            let mode =
                try FileManager.default.attributesOfItem(atPath: edge.runtime.audit.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func aRestartedNodeContinuesTheSameChain() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("te-audit-\(UUID().uuidString)").path
        for _ in 0..<2 {
            try await withEdge(configure: { $0.stateDir = state }, script: { _ in .init(body: "x") }) {
                (edge: EdgeHarness) async throws in
                let purge = try await edge.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","all":true}"#)
                #expect(purge.status == 200)
                edge.runtime.audit.flush()
            }
        }
        let text = try String(contentsOfFile: state + "/audit.jsonl", encoding: .utf8)
        #expect(AuditChain.verify(text, sha256: { OpenSSL.sha256($0) }) == .valid(entries: 2))
    }
}
