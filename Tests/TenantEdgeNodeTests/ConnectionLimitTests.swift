import Foundation
import TenantEdgeCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(Glibc)
    import Glibc
    @testable import TenantEdgeNode
    import TenantEdgeTestSupport
#endif

/// Issue 11, resource exhaustion on the listeners: half heads, idle keep-alives, connection floods
/// and pipelining bursts, each against a real node on loopback with small limits.
@Suite("Connection limits", .serialized)
struct ConnectionLimitTests {
    static func small(_ config: inout EdgeConfig) {
        config.limits.headerTimeoutMs = 300
        config.limits.idleTimeoutSeconds = 1
        config.limits.maxConnections = 3
        config.limits.maxPipelinedRequests = 2
    }

    /// Fetches a large answer until it is stored. The harness's own client can fall more than
    /// `idle_timeout_s` (1 s in `small`) behind reading 4 MiB with the whole suite under TSan, and
    /// the node then rightly closes its connection mid-answer (CI on 0fb883b); asked again, it is a hit.
    static func store(_ path: String, on edge: EdgeHarness) async throws {
        var stored = false
        for _ in 0..<5 where !stored { stored = (try? await edge.get(path))?.status == 200 }
        try #require(stored, "\(path) was never answered whole")
    }

    static let ok: TestUpstream.Script = { _ in
        TestUpstream.Reply(headers: [("Cache-Control", "max-age=60")], body: "ok")
    }

    @Test func aHalfSentHeadIsTimedOutWith408() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let answer = try await RawHTTP.converse(
                port: edge.node.trafficPort, "GET /x HTTP/1.1\r\nHost: api.acme", timeout: 5)
            #expect(answer.text.hasPrefix("HTTP/1.1 408"))
            #expect(answer.closedByServer, "closed by the node, not by the test's own timeout")
        }
    }

    @Test func anIdleKeepAliveIsClosed() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let answer = try await RawHTTP.converse(
                port: edge.node.trafficPort, "GET /x HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", timeout: 6)
            #expect(answer.text.hasPrefix("HTTP/1.1 200"))
            #expect(answer.closedByServer, "the idle connection was closed after idle_timeout_s")
        }
    }

    @Test func connectionsBeyondTheCapAreClosedAtOnce() async throws {
        // Held connections send nothing: a long header timeout keeps them open for the test.
        try await withEdge(
            configure: {
                Self.small(&$0)
                $0.limits.headerTimeoutMs = 20_000
            }, script: Self.ok
        ) { edge in
            // Closed exactly once, below: a second close could hit a descriptor NIO reused meanwhile.
            let held = (0..<3).compactMap { _ in Self.connect(edge.node.trafficPort) }
            #expect(held.count == 3)
            // Admitted on their event loops, not in accept order: a sleep was too short once under
            // ThreadSanitizer (the fourth connection was set up before the third held one).
            try await waitUntil(seconds: 10) { edge.node.trafficConnections == 3 }
            let extra = try await RawHTTP.exchange(
                port: edge.node.trafficPort, "GET /x HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", timeout: 2)
            #expect(extra.isEmpty, "the fourth connection got no answer")
            for descriptor in held { close(descriptor) }
            try await Task.sleep(for: .milliseconds(200))
            let after = try await RawHTTP.exchange(
                port: edge.node.trafficPort,
                "GET /x HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
            #expect(after.hasPrefix("HTTP/1.1 200"), "places are given back when connections close")
        }
    }

    @Test func aPipelinedBurstIsBoundedAndTheNodeSurvives() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let burst = String(repeating: "GET /p HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", count: 200)
            let answer = try await RawHTTP.exchange(port: edge.node.trafficPort, burst, timeout: 3)
            let answered = answer.components(separatedBy: "HTTP/1.1 200").count - 1
            #expect(answered >= 1)
            #expect(answered <= 8 + 1, "at most four queues' worth of one read, then the connection closes")
            let health = try await edge.admin(.GET, "/healthz", token: nil)
            #expect(health.status == 200)
        }
    }

    @Test func noInterim100ForHTTP10() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let answer = try await RawHTTP.exchange(
                port: edge.node.trafficPort,
                "POST /c HTTP/1.0\r\nHost: api.acme.test\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
            #expect(!answer.contains("100 Continue"))
            #expect(answer.hasPrefix("HTTP/1.0 200"))
        }
    }

    static func connect(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return connected == 0 ? fd : nil
    }
}

/// The handler's answers to uploads it will not take, and to a peer that stops reading.
@Suite("Connection limits: bodies and slow readers", .serialized)
struct ConnectionBodyLimitTests {
    @Test func anOversizedBodyIsRefusedAtItsHeadAndATrickledOneAtTheDeadline() async throws {
        try await withEdge(
            configure: {
                ConnectionLimitTests.small(&$0)
                $0.limits.maxRequestBodyBytes = 1000
            },
            script: ConnectionLimitTests.ok
        ) { edge in
            // Content-Length far over the limit and no body sent: answered at once, not after a body.
            let huge = try await RawHTTP.converse(
                port: edge.node.trafficPort,
                "POST /u HTTP/1.1\r\nHost: api.acme.test\r\nContent-Length: 999999999999\r\n\r\n", timeout: 5)
            #expect(huge.text.hasPrefix("HTTP/1.1 413"), "not a 408: answered at the head, the body never came")
            #expect(huge.closedByServer, "closed after the two-second linger")
            // A body that keeps coming a little at a time still ends at the request deadline.
            let slow = try await RawHTTP.exchange(
                port: edge.node.trafficPort,
                "POST /u HTTP/1.1\r\nHost: api.acme.test\r\nContent-Length: 10\r\n\r\nab", timeout: 5)
            #expect(slow.hasPrefix("HTTP/1.1 408"))
            #expect(edge.upstream.requests().isEmpty)
        }
    }

    @Test func aTokenlessPurgeIsRefusedBeforeItsBody() async throws {
        try await withEdge(configure: ConnectionLimitTests.small, script: ConnectionLimitTests.ok) { edge in
            let answer = try await RawHTTP.converse(
                port: edge.node.adminPort,
                "POST /_edge/purge HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n{", timeout: 5)
            #expect(
                answer.text.hasPrefix("HTTP/1.1 401"), "not a 408: answered at the head, not after 8 MB or a timeout")
            #expect(answer.closedByServer, "closed after the two-second linger")
        }
    }

    @Test func aPeerThatStopsReadingStopsBeingServed() async throws {
        let big = String(repeating: "b", count: 4 << 20)
        try await withEdge(
            configure: ConnectionLimitTests.small,
            script: { _ in .init(headers: [("Cache-Control", "max-age=60")], body: big) }
        ) { edge in
            try await ConnectionLimitTests.store("/big", on: edge)  // later requests are hits
            let fd = try #require(ConnectionLimitTests.connect(edge.node.trafficPort))
            defer { close(fd) }
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            let burst = Array(String(repeating: "GET /big HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", count: 50).utf8)
            _ = burst.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            // The rule itself (nothing served while not writable) is proven on EmbeddedChannel; here a
            // real socket fills up after the first answers, and the node stays healthy.
            let counters = try #require(edge.runtime.caches["acme"]).counters
            try await waitUntil { counters.total(.hit) >= 1 }
            let hits = counters.total(.hit)
            #expect(hits < 10, "hits served while the peer reads nothing: \(hits)")
            #expect(try await edge.admin(.GET, "/healthz", token: nil).status == 200)
        }
    }

    /// A closing response (`Connection: close`) the peer stops taking is not left to hang: without
    /// progress for `idle_timeout_s` (1 s here) the node closes the connection; one the peer reads
    /// arrives whole before the close. The watch runs on the connection's own deadline. (Progress is
    /// counted in what the node still holds, as nginx's `send_timeout` counts successful writes: a
    /// peer that reads but drains the kernel's buffers of the answer more slowly than one idle period
    /// shows none; with 4 MiB of them on loopback, 4 MB/s against 1 s did not, before this watch moved
    /// onto the deadline as after.)
    @Test func aClosingResponseThePeerStopsTakingIsClosedAndOneItReadsArrivesWhole() async throws {
        let big = String(repeating: "c", count: 4 << 20)
        try await withEdge(
            configure: ConnectionLimitTests.small,
            script: { _ in .init(headers: [("Cache-Control", "max-age=60")], body: big) }
        ) { edge in
            try await ConnectionLimitTests.store("/big", on: edge)  // the answers below are hits
            // The harness client's keep-alive connection idles out first (`idle_timeout_s` is 1 s), so
            // the counts below are this test's connections alone: with the whole suite running it once
            // closed between the count and the connect, and `open + 1` never came.
            try await waitUntil(seconds: 6) { edge.node.trafficConnections == 0 }
            let open = edge.node.trafficConnections
            let stalled = try #require(ConnectionLimitTests.connect(edge.node.trafficPort))
            defer { close(stalled) }
            var small: Int32 = 4096
            setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            let request = Array("GET /big HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { send(stalled, $0.baseAddress, $0.count, 0) }
            try await waitUntil { edge.node.trafficConnections == open + 1 }
            try await waitUntil(seconds: 6) { edge.node.trafficConnections == open }  // closed by the node

            let port = edge.node.trafficPort
            let reader = try await Task.detached {
                try await RawHTTP.converse(
                    port: port, "GET /big HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n",
                    timeout: 20)
            }.value
            #expect(reader.text.hasPrefix("HTTP/1.1 200") && reader.text.hasSuffix(big.suffix(16)))
            #expect(reader.text.utf8.count > big.utf8.count, "the whole body arrived before the close")
            #expect(reader.closedByServer, "the node closed the connection after the answer")
        }
    }
}
