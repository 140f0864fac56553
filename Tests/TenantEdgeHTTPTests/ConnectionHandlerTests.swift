import NIOCore
import NIOEmbedded
import NIOExtras
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

/// `HTTPConnectionHandler` on `EmbeddedChannel`: the order, interim answers, refusals and drain that
/// a pipelining or hostile client sees, with no socket and no timing in between.
@Suite("Connection handler on EmbeddedChannel")
struct ConnectionHandlerTests {
    /// Answers `/now…` at once and `/later…` when the test completes its promise; the body is the target.
    final class ScriptedResponder: HTTPResponder, Sendable {
        let pending = Mutex<[String: EventLoopPromise<EdgeResponse>]>([:])  // held `/later` answers by target
        var fixedHeaders: FixedHeaderLines { .none }
        func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
            let response = EdgeResponse(status: .ok, headers: HTTPHeaders(), body: ByteBuffer(string: request.head.uri))
            guard request.head.uri.hasPrefix("/later") else { return .now(response) }
            let promise = eventLoop.makePromise(of: EdgeResponse.self)
            pending.withLock { $0[request.head.uri] = promise }
            return .later(promise.futureResult)
        }
        func complete(_ target: String) {
            let promise = pending.withLock { $0.removeValue(forKey: target) }
            promise?.succeed(EdgeResponse(status: .ok, headers: HTTPHeaders(), body: ByteBuffer(string: target)))
        }
    }

    static func channel(_ responder: ScriptedResponder, configure: (inout EdgeConfig.Limits) -> Void = { _ in })
        throws -> EmbeddedChannel
    {
        var limits = EdgeConfig.Limits()
        configure(&limits)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPConnectionHandler(responder: responder, limits: limits))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything written so far, as text.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
        }
        return text
    }

    @Test func pipelinedAnswersKeepTheRequestOrder() throws {
        let responder = ScriptedResponder()
        let channel = try Self.channel(responder)
        try channel.writeInbound(
            ByteBuffer(string: "GET /later-1 HTTP/1.1\r\nHost: a\r\n\r\nGET /now-2 HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try Self.written(channel).isEmpty, "the second answer waits for the first")
        responder.complete("/later-1")
        channel.embeddedEventLoop.run()
        let text = try Self.written(channel)
        let first = try #require(text.range(of: "/later-1"))
        let second = try #require(text.range(of: "/now-2"))
        #expect(first.lowerBound < second.lowerBound)
        _ = try? channel.finish()
    }

    /// A front proxy may tunnel what follows an upgrade request; this server grants no upgrade, so it
    /// answers the request, closes, and serves nothing sent behind it.
    @Test func anUpgradeRequestIsAnsweredAndTheConnectionClosed() throws {
        let channel = try Self.channel(ScriptedResponder())
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /now-1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                    + "GET /now-smuggled HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.embeddedEventLoop.run()
        let text = try Self.written(channel)
        #expect(text.contains("/now-1") && text.lowercased().contains("connection: close"))
        #expect(!text.contains("/now-smuggled"))
        _ = try? channel.finish()
    }

    @Test func continueGoesOnlyToHTTP11WithNothingAhead() throws {
        let responder = ScriptedResponder()
        let channel = try Self.channel(responder)
        try channel.writeInbound(
            ByteBuffer(string: "POST /now HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"))
        #expect(try Self.written(channel) == "HTTP/1.1 100 Continue\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "x"))
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 200"))

        let old = try Self.channel(responder)
        try old.writeInbound(
            ByteBuffer(string: "POST /now HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"))
        #expect(try Self.written(old).isEmpty, "no interim answer to HTTP/1.0")

        let behind = try Self.channel(responder)
        try behind.writeInbound(
            ByteBuffer(
                string: "GET /later-3 HTTP/1.1\r\nHost: a\r\n\r\n"
                    + "POST /now HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"))
        #expect(try Self.written(behind).isEmpty, "no interim answer overtakes a pending final one")
        for channel in [channel, old, behind] { _ = try? channel.finish() }
    }

    @Test func oversizedHeadsAndAnnouncedBodiesAreRefusedAtTheHead() throws {
        let responder = ScriptedResponder()
        let heads = try Self.channel(responder) { $0.maxHeaderBytes = 1024 }
        try heads.writeInbound(
            ByteBuffer(string: "GET /now HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 2000))\r\n\r\n"))
        let refused = try Self.written(heads)
        #expect(refused.hasPrefix("HTTP/1.1 431"))
        #expect(refused.contains("connection: close"))
        let bodies = try Self.channel(responder) { $0.maxRequestBodyBytes = 100 }
        try bodies.writeInbound(
            ByteBuffer(string: "POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999\r\n\r\n"))
        #expect(try Self.written(bodies).hasPrefix("HTTP/1.1 413"), "answered without waiting for the body")
        let drained = try Self.channel(responder) { $0.maxRequestBodyBytes = 100 }
        try drained.writeInbound(ByteBuffer(string: "POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 300\r\n\r\n"))
        #expect(try Self.written(drained).isEmpty, "a body up to four times the limit is read first")
        try drained.writeInbound(ByteBuffer(string: String(repeating: "z", count: 300)))
        #expect(try Self.written(drained).hasPrefix("HTTP/1.1 413"))
        for channel in [heads, bodies, drained] { _ = try? channel.finish() }
    }

    @Test func aBurstBeyondFourQueuesIsAnsweredThenClosed() throws {
        let responder = ScriptedResponder()
        let channel = try Self.channel(responder) { $0.maxPipelinedRequests = 2 }
        let burst =
            String(repeating: "GET /later-b HTTP/1.1\r\nHost: a\r\n\r\n", count: 1)
            + String(repeating: "GET /now HTTP/1.1\r\nHost: a\r\n\r\n", count: 20)
        try channel.writeInbound(ByteBuffer(string: burst))
        responder.complete("/later-b")
        channel.embeddedEventLoop.run()
        let text = try Self.written(channel)
        let answered = text.components(separatedBy: "HTTP/1.1 200").count - 1
        #expect(answered == 9, "the one in flight and eight queued (four queues of two)")
        #expect(text.hasSuffix("/now") && text.contains("connection: close"))
        _ = try? channel.finish()
    }

    /// A peer that takes nothing of what is written is served no further: nothing new is answered
    /// and reads stop while the channel is not writable; once it is again, the rest comes in order.
    @Test func aPeerThatStopsReadingIsServedNoFurtherUntilItReadsAgain() throws {
        let responder = ScriptedResponder()
        let channel = try Self.channel(responder)
        channel.isWritable = false
        try channel.writeInbound(
            ByteBuffer(string: "GET /now-1 HTTP/1.1\r\nHost: a\r\n\r\nGET /now-2 HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try Self.written(channel).isEmpty, "not writable: nothing is served")
        channel.read()
        let reads = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(reads, position: .first)
        channel.read()
        #expect(reads.count == 0, "the read was held back while the peer takes nothing")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.run()
        let text = try Self.written(channel)
        let first = try #require(text.range(of: "/now-1"))
        let second = try #require(text.range(of: "/now-2"))
        #expect(first.lowerBound < second.lowerBound)
        #expect(reads.count >= 1, "reads resume once the peer takes what was written")
        _ = try? channel.finish()
    }

    /// Counts the `read` calls that reach the channel.
    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {  // used on the embedded loop only
        typealias OutboundIn = NIOAny
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    @Test func quiescingAnswersWhatIsQueuedThenCloses() throws {
        let responder = ScriptedResponder()
        let channel = try Self.channel(responder)
        try channel.writeInbound(
            ByteBuffer(string: "GET /later-q HTTP/1.1\r\nHost: a\r\n\r\nGET /now-q HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive, "still answering")
        responder.complete("/later-q")
        channel.embeddedEventLoop.run()
        let text = try Self.written(channel)
        #expect(text.contains("/later-q") && text.contains("/now-q"))
        #expect(text.components(separatedBy: "connection: close").count - 1 == 1, "only the last answer closes")
        #expect(!channel.isActive)
    }

    /// Closes the channel inside every flush, as NIO does when a write fails there (a peer that
    /// reset the connection right after sending its request). The flush goes on first, so the
    /// writes' promises complete (`EmbeddedChannel` leaves unflushed ones pending at a close, where a
    /// socket channel fails them).
    final class CloseOnFlush: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = IOData
        func flush(context: ChannelHandlerContext) {
            context.flush()
            context.close(promise: nil)
        }
    }

    /// The channel went inactive inside the closing response's flush, before the closing watch was
    /// set: the watch must not set the deadline's callback again, which would hold the handler (and
    /// its context) for good, on every such connection (found by review).
    @Test func aClosingWriteThatFailsInItsFlushLeavesNothingHoldingTheHandler() throws {
        weak var released: HTTPConnectionHandler?
        try {
            let channel = EmbeddedChannel()
            let handler = HTTPConnectionHandler(responder: ScriptedResponder(), limits: EdgeConfig.Limits())
            released = handler
            try channel.pipeline.syncOperations.addHandler(CloseOnFlush())
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(ByteBuffer(string: "GET /now HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
            #expect(!channel.isActive, "closed in the flush")
            channel.embeddedEventLoop.advanceTime(by: .hours(1))
            _ = try? channel.finish()
        }()
        #expect(released == nil, "the handler outlived its closed connection")
    }
}
