import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// Issue 11, the control plane: oversized purges are refused where they enter, feed answers stay
/// inside what a node downloads so big purges never wedge a node's cursor, and failed admin
/// authentication cannot grow the audit log without bound.
@Suite("Hostile input on the control plane", .serialized)
struct HostileFeedTests {
    @Test func oversizedPurgesAreRefusedAtTheOrigin() async throws {
        let origin = try await OriginHarness.start()
        let huge = try await origin.publish(
            #"{"tenant":"acme","keys":["/\#(String(repeating: "k", count: 300 << 10))"]}"#)
        #expect(huge.status == 413)
        let many = (0..<300).map { "\"/k\($0)\"" }.joined(separator: ",")
        let tooMany = try await origin.publish(#"{"tenant":"acme","keys":[\#(many)]}"#)
        #expect(tooMany.status == 400)
        #expect(tooMany.body.contains("256"))
        let long = try await origin.publish(#"{"tenant":"acme","tags":["\#(String(repeating: "t", count: 9000))"]}"#)
        #expect(long.status == 400)
        #expect(
            try await origin.publish(#"{"tenant":"acme","keys":["/ok"]}"#).body == #"{"seq":1}"#,
            "nothing was appended before")
        await origin.stop()
    }

    @Test func theLargestFeedAnswerFitsInANodesDownload() {
        #expect(OriginResponder.batchBytes + 2 * PurgeRequest.Limits.bodyBytes < InvalidationFeed.maxAnswerBytes)
    }

    @Test func aBacklogOfLargePurgesIsFollowedToTheEnd() async throws {
        let origin = try await OriginHarness.start()
        // 100 purges of about 240 KiB each: 24 MiB in all, more than one node download (16 MiB). The
        // keys are control characters, six bytes each as JSON and one as text, so an answer sized
        // by text would be six times what was counted.
        let keys = (0..<5).map { "\"/\($0)-\(String(repeating: "\\u0001", count: 8000))\"" }.joined(separator: ",")
        for _ in 0..<100 {
            #expect(try await origin.publish(#"{"tenant":"globex","keys":[\#(keys)]}"#).status == 200)
        }
        let edge = try await InvalidationFeedTests.node(origin, state: try temporaryDirectory("te-feed-big"))
        try await waitUntil(seconds: 60, advancing: edge.clock) { InvalidationFeedTests.cursor(edge) == 100 }
        #expect(InvalidationFeedTests.cursor(edge) == 100)
        await edge.shutdown()
        await origin.stop()
    }

    /// 10,000 wrong tokens: every one counted in metrics, the audit log holds one line when the
    /// burst starts and one with its count when the window closes, and the chain verifies.
    @Test func failedAdminTokensWriteABoundedNumberOfAuditLines() async throws {
        try await withEdge(script: { _ in .init(body: "x") }) { edge in
            for index in 0..<10_000 {
                let answer = try await edge.admin(.GET, "/_edge/stats", token: "wrong-\(index)")
                if answer.status != 401 { Issue.record("token \(index): \(answer.status)") }
            }
            edge.runtime.audit.flush()
            let audit = try String(contentsOfFile: edge.directory.path + "/audit.jsonl", encoding: .utf8)
            let lines = audit.split(separator: "\n").filter { $0.contains("auth_failed") }
            #expect(lines.count == 1, "the burst's first attempt, not 10,000 lines")
            #expect(lines.first?.contains(#""source":"127.0.0.1""#) == true)
            #expect(edge.runtime.events.count.load(ordering: .relaxed) == 10_000, "every one is counted")
            let metrics = try await edge.admin(.GET, "/metrics", token: EdgeHarness.adminToken).body
            #expect(metrics.contains(#"edge_security_events_total{kind="auth_failed"} 10000"#))
            edge.clock.advance(by: 61)
            edge.runtime.events.flush()
            edge.runtime.audit.flush()
            let after = try String(contentsOfFile: edge.directory.path + "/audit.jsonl", encoding: .utf8)
            let closed = after.split(separator: "\n").filter { $0.contains("auth_failed") && $0.contains("closed") }
            #expect(closed.count == 1 && closed.first?.contains(#""count":"10000""#) == true, "\(closed)")
            #expect(after.split(separator: "\n").count <= SecurityEvents.maxLinesPerWindow)
            #expect(!after.contains("wrong-"), "no token reaches the audit log")
            guard case .valid = AuditChain.verify(after, sha256: { OpenSSL.sha256($0) }) else {
                Issue.record("the audit chain still verifies")
                return
            }
        }
    }
}
