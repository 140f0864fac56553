import Foundation
import NIOHTTP1
import NIOPosix
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

@Suite("HTTP/1.1 connection handling", .serialized)
struct ConnectionTests {
    static let script: TestUpstream.Script = { request in
        let delay = request.uri.hasPrefix("/slow") ? 300 : 0
        return TestUpstream.Reply(
            headers: [("Cache-Control", "max-age=60")], body: "body:\(request.uri)", delayMs: delay)
    }

    @Test func pipelinedResponsesKeepRequestOrderEvenWhenTheFirstIsSlower() async throws {
        try await withEdge(script: Self.script) { edge in
            _ = try await edge.get("/fast")  // cached: the second request below is a hit that completes at once
            let text =
                "GET /slow/1 HTTP/1.1\r\nHost: api.acme.test\r\n\r\n"
                + "GET /fast HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n"
            let port = edge.node.trafficPort
            let reply = try await Task.detached { try await RawHTTP.exchange(port: port, text) }.value
            let slow = try #require(reply.range(of: "body:/slow/1"))
            let fast = try #require(reply.range(of: "body:/fast"))
            #expect(slow.lowerBound < fast.lowerBound)
            #expect(reply.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        }
    }

    @Test func malformedRequestGetsA400AndTheConnectionCloses() async throws {
        try await withEdge(script: Self.script) { edge in
            let port = edge.node.trafficPort
            let reply = try await Task.detached { try await RawHTTP.exchange(port: port, "GARBAGE\r\n\r\n") }.value
            #expect(reply.hasPrefix("HTTP/1.1 400"))
            #expect(reply.contains("\"error\":\"bad_request\""))
            #expect(reply.lowercased().contains("connection: close"))
        }
    }

    @Test func oversizedHeadersGet431AndOversizedBodies413() async throws {
        try await withEdge(
            configure: {
                $0.limits.maxHeaderBytes = 2048
                $0.limits.maxRequestBodyBytes = 100
            }, script: Self.script
        ) { edge in
            let big = try await edge.get("/h", headers: [("X-Big", String(repeating: "a", count: 4096))])
            #expect(big.status == 431)
            let body = try await edge.request(.POST, "/p", body: String(repeating: "b", count: 500))
            #expect(body.status == 413)
            #expect(edge.upstream.requests().isEmpty)
        }
    }

    @Test func http10WithoutKeepAliveIsClosedAfterTheResponse() async throws {
        try await withEdge(script: Self.script) { edge in
            let port = edge.node.trafficPort
            let reply = try await Task.detached {
                try await RawHTTP.exchange(port: port, "GET /x HTTP/1.0\r\nHost: api.acme.test\r\n\r\n", timeout: 5)
            }.value
            #expect(reply.hasPrefix("HTTP/1.0 200"))
            #expect(reply.hasSuffix("body:/x"), "the server closed the connection after one response")
        }
    }

    /// A node whose services never ran (a start-up that failed after the listeners were bound)
    /// still drains: its group runs once to stop every service in order, and the listeners close.
    @Test func aNodeDrainedBeforeItsServicesRanStopsInOrder() async throws {
        let edge = try await EdgeHarness.start(running: false, script: Self.script)
        let port = edge.node.trafficPort
        #expect(try await edge.get("/fast").status == 200, "the listeners serve before the services run")
        await edge.node.drain()
        #expect(!RawHTTP.accepts(port: port), "the traffic listener is closed")
        await edge.shutdown()
    }

    @Test func drainFinishesInFlightRequestsAndRefusesNewConnections() async throws {
        let edge = try await EdgeHarness.start(script: Self.script)
        let inFlight = Task { try await edge.get("/slow/drain") }
        try await waitUntil { edge.upstream.count("/slow/drain") == 1 }  // in flight: the upstream has it
        let port = edge.node.trafficPort
        #expect(edge.node.trafficAcceptedPerSocket.count == 1, "one accepting socket unless reuse_port")
        await edge.node.drain()
        let response = try await inFlight.value
        #expect(response.status == 200)
        #expect(response.body == "body:/slow/drain")
        #expect(!RawHTTP.accepts(port: port))
        try? await edge.client.shutdown()
        await edge.upstream.stop()
    }

    /// `listen.reuse_port`: one accepting socket per event loop on one port (0 here: the first socket
    /// picks it, the others join it); the kernel spreads new connections over them, each is served,
    /// and a drain stops them all.
    @Test func reusePortAcceptsOnASocketPerLoopAndADrainStopsEveryOne() async throws {
        let edge = try await EdgeHarness.start(configure: { $0.listen.reusePort = true }, script: Self.script)
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator()).count
        #expect(edge.node.trafficAcceptedPerSocket.count == loops)
        let port = edge.node.trafficPort
        let inFlight = Task { try await edge.get("/slow/reuse") }
        try await waitUntil { edge.upstream.count("/slow/reuse") == 1 }
        for n in 0..<64 {
            let reply = try await Task.detached {
                try await RawHTTP.exchange(
                    port: port, "GET /r/\(n) HTTP/1.1\r\nHost: api.acme.test\r\nConnection: close\r\n\r\n")
            }.value
            #expect(reply.hasPrefix("HTTP/1.1 200") && reply.hasSuffix("body:/r/\(n)"), "\(reply)")
        }
        let perSocket = edge.node.trafficAcceptedPerSocket
        #expect(perSocket.reduce(0, +) == 65, "64 exchanges and the client's one connection: \(perSocket)")
        try #require(loops >= 2, "the spread needs two event loops; this machine gives \(loops)")
        #expect(perSocket.filter { $0 > 0 }.count >= 2, "65 connections all on one socket: \(perSocket)")
        await edge.node.drain()
        #expect(try await inFlight.value.body == "body:/slow/reuse", "the drain let the request in flight finish")
        #expect(!RawHTTP.accepts(port: port), "no socket accepts after the drain")
        try? await edge.client.shutdown()
        await edge.upstream.stop()
    }
}
