import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// An upstream that breaks below HTTP (a body cut short, a reset, more bytes than announced, a body
/// that trickles, a head and then silence): the client gets a `502` or `504` (or a stale copy within
/// `stale-if-error`), nothing broken is ever stored, and the next request fetches afresh.
/// Each upstream answers the first request of a path broken and every later one whole, so the second
/// request tells whether anything of the first was kept.
@Suite("Upstream faults on the wire", .serialized)
struct UpstreamWireFaultTests {
    static let body = "0123456789abcdefghij"  // 20 bytes, announced whole in Content-Length

    /// The first request of each path breaks as `fault` says; later ones are answered whole.
    static func firstBroken(_ fault: TestUpstream.WireFault, cacheControl: String = "max-age=60")
        -> TestUpstream.Script
    {
        let seen = Mutex<Set<String>>([])  // protects the paths answered so far
        return { request in
            let first = seen.withLock { $0.insert(request.uri).inserted }
            return TestUpstream.Reply(
                headers: [("Cache-Control", cacheControl)], body: first ? body : "whole:\(body)",
                fault: first ? fault : nil)
        }
    }

    /// The broken answer, then the next one for the same path, which must come from the upstream.
    /// Returns how long the broken request took to be answered.
    @discardableResult
    func brokenThenRefetched(
        _ fault: TestUpstream.WireFault, expecting statuses: Set<Int>, configure: @escaping (inout EdgeConfig) -> Void
    ) async throws -> Duration {
        let brokenTook = Mutex<Duration>(.zero)
        try await withEdge(configure: configure, script: Self.firstBroken(fault)) { edge in
            let asked = ContinuousClock.now
            let broken = try await edge.get("/wire")
            brokenTook.withLock { $0 = ContinuousClock.now - asked }
            #expect(statuses.contains(broken.status), "a broken upstream answer is a \(statuses), not \(broken.status)")
            #expect(!broken.body.contains("EXTRA"), "bytes past Content-Length never reach the client")
            if broken.status >= 500 {
                #expect(broken.headers.first(name: "content-type") == "application/json")
                #expect(!broken.body.contains("127.0.0.1"), "the error does not name the upstream")
            }
            let next = try await edge.get("/wire")
            #expect(next.status == 200)
            #expect(next.body == "whole:\(Self.body)", "nothing of the broken answer was stored")
            #expect(next.cacheStatus.contains("fwd=miss"), "the next request went upstream: \(next.cacheStatus)")
            #expect(edge.upstream.count("/wire") == 2)
            let third = try await edge.get("/wire")
            #expect(third.cacheStatus.contains("hit"), "the whole answer is stored as usual")
            #expect(third.body == "whole:\(Self.body)")
            FaultReport.record(
                "upstream \(fault)",
                [
                    ("client status", Double(broken.status)),
                    ("broken answers stored", next.cacheStatus.contains("fwd=miss") ? 0 : 1),
                ])
        }
        return brokenTook.withLock { $0 }
    }

    @Test func aBodyCutShortIsA502AndNeverStored() async throws {
        try await brokenThenRefetched(.truncated(bodyBytes: 7), expecting: [502]) { _ in }
    }

    @Test func aResetMidBodyIsA502AndNeverStored() async throws {
        try await brokenThenRefetched(.reset(bodyBytes: 7), expecting: [502]) { _ in }
    }

    /// Bytes past `Content-Length` are not part of the answer (RFC 9112 6.3): the message ends at the
    /// announced length and the extra bytes, read as the start of another answer, close the upstream
    /// connection. They never reach a client, nor pass for the answer to the next request: the
    /// response-splitting an upstream could try. The announced body is stored as nginx keeps it
    /// (decision 63): the client library ends the message before the extra bytes are read.
    @Test func bytesBeyondContentLengthNeverReachAClientNorTheNextAnswer() async throws {
        try await withEdge(
            script: Self.firstBroken(.overlong(extra: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEXTRA"))
        ) {
            edge in
            let first = try await edge.get("/wire")
            #expect(first.status == 200 && first.body == Self.body, "exactly the announced body")
            for index in 0..<5 {
                let other = try await edge.get("/other/\(index)")
                #expect(other.status == 200 && other.body == Self.body, "its own answer, not the extra bytes")
                #expect(!other.body.contains("EXTRA"))
            }
            FaultReport.record(
                "upstream sends bytes beyond Content-Length (a second response)",
                [("extra bytes seen by clients", 0), ("client status", Double(first.status))])
        }
    }

    @Test func aBodyTricklingPastTheDeadlineIsA504AndNeverStored() async throws {
        // 20 bytes 150 ms apart: 3 s, while the fetch may take connect + read = 700 ms in all. Timed
        // on the broken request alone: with the whole suite under TSan, starting the node and the two
        // requests after it took the whole test to 3.7 s (CI on 0fb883b).
        let took = try await brokenThenRefetched(.dribble(intervalMs: 150), expecting: [504]) { config in
            config.limits.upstreamConnectTimeoutMs = 200
            config.limits.upstreamReadTimeoutMs = 500
        }
        #expect(took < .seconds(3), "the fetch was cut at its deadline, not at the body's end: \(took)")
    }

    @Test func aHeadFollowedBySilenceIsA504AndNeverStored() async throws {
        // 1 s, not 300 ms: with the whole suite running, the healthy answer that follows took longer
        // (CI on 5096df5).
        try await brokenThenRefetched(.hangAfterHead, expecting: [504]) { config in
            config.limits.upstreamReadTimeoutMs = 1000
        }
    }

    @Test func aBrokenAnswerIsCoveredByAStaleCopyWithinStaleIfError() async throws {
        let broken = Mutex(false)  // protects the mode: every answer broken once set
        try await withEdge(script: { _ in
            TestUpstream.Reply(
                headers: [("Cache-Control", "max-age=10, stale-if-error=100")], body: "kept",
                fault: broken.withLock { $0 } ? .truncated(bodyBytes: 2) : nil)
        }) { edge in
            #expect(try await edge.get("/covered").body == "kept")
            broken.withLock { $0 = true }
            edge.clock.advance(by: 30)
            let covered = try await edge.get("/covered")
            #expect(covered.status == 200)
            #expect(covered.body == "kept")
            #expect(covered.cacheStatus.contains("detail=stale-if-error"), "\(covered.cacheStatus)")
            edge.clock.advance(by: 100)  // past stale-if-error: the failure shows
            #expect(try await edge.get("/covered").status == 502)
        }
    }
}
