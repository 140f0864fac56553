import Foundation
import TenantEdgeCore
import Testing
@testable import TenantEdgeServer
#if canImport(Glibc)
import Glibc
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

    static let ok: TestUpstream.Script = { _ in TestUpstream.Reply(headers: [("Cache-Control", "max-age=60")], body: "ok") }

    @Test func aHalfSentHeadIsTimedOutWith408() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let started = Date()
            let answer = try RawHTTP.exchange(port: edge.node.trafficPort, "GET /x HTTP/1.1\r\nHost: api.acme", timeout: 5)
            #expect(answer.hasPrefix("HTTP/1.1 408"))
            #expect(Date().timeIntervalSince(started) < 4, "closed by the node, not by the test's own timeout")
        }
    }

    @Test func anIdleKeepAliveIsClosed() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let started = Date()
            let answer = try RawHTTP.exchange(port: edge.node.trafficPort, "GET /x HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", timeout: 6)
            #expect(answer.hasPrefix("HTTP/1.1 200"))
            #expect(Date().timeIntervalSince(started) < 5, "the idle connection was closed after idle_timeout_s")
        }
    }

    @Test func connectionsBeyondTheCapAreClosedAtOnce() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let held = (0..<3).compactMap { _ in Self.connect(edge.node.trafficPort) }
            defer { held.forEach { close($0) } }
            #expect(held.count == 3)
            try await Task.sleep(for: .milliseconds(100))
            let extra = try RawHTTP.exchange(port: edge.node.trafficPort, "GET /x HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", timeout: 2)
            #expect(extra.isEmpty, "the fourth connection got no answer")
            held.forEach { close($0) }
            try await Task.sleep(for: .milliseconds(200))
            let after = try RawHTTP.exchange(port: edge.node.trafficPort,
                                             "GET /x HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
            #expect(after.hasPrefix("HTTP/1.1 200"), "places are given back when connections close")
        }
    }

    @Test func aPipelinedBurstIsBoundedAndTheNodeSurvives() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let burst = String(repeating: "GET /p HTTP/1.1\r\nHost: api.acme.test\r\n\r\n", count: 200)
            let answer = try RawHTTP.exchange(port: edge.node.trafficPort, burst, timeout: 3)
            let answered = answer.components(separatedBy: "HTTP/1.1 200").count - 1
            #expect(answered >= 1)
            #expect(answered <= 8 + 1, "at most four queues' worth of one read, then the connection closes")
            let health = try await edge.admin(.GET, "/healthz", token: nil)
            #expect(health.status == 200)
        }
    }

    @Test func noInterim100ForHTTP10() async throws {
        try await withEdge(configure: Self.small, script: Self.ok) { edge in
            let answer = try RawHTTP.exchange(port: edge.node.trafficPort,
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0 ? fd : nil
    }
}
