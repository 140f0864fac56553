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

    /// The handler reads its requests itself (no decoder in front): two requests a byte at a time,
    /// and a read whose bytes arrive while parts are handed on (a TLS handler releases what it held
    /// when the handler flushes), are answered in order.
    @Test func requestsInPiecesAndReadsDeliveredMeanwhileAreAnsweredInOrder() throws {
        let pieces = try Self.channel(ScriptedResponder())
        for byte in "GET /now-a HTTP/1.1\r\nHost: a\r\n\r\nGET /now-b HTTP/1.1\r\nHost: a\r\n\r\n".utf8 {
            try pieces.writeInbound(ByteBuffer(bytes: [byte]))
        }
        let split = try Self.written(pieces)
        #expect(split.components(separatedBy: "HTTP/1.1 200").count - 1 == 2)
        #expect(try #require(split.range(of: "/now-a")).lowerBound < #require(split.range(of: "/now-b")).lowerBound)
        _ = try? pieces.finish()

        let channel = try Self.channel(ScriptedResponder())
        let front = ReleaseOnFlush(ByteBuffer(string: "st: a\r\n\r\nGET /now-3 HTTP/1.1\r\nHost: a\r\n\r\n"))
        try channel.pipeline.syncOperations.addHandler(front, position: .first)
        try channel.writeInbound(ByteBuffer(string: "GET /now-1 HTTP/1.1\r\nHost: a\r\n\r\nGET /now-2 HTTP/1.1\r\nHo"))
        #expect(front.held == nil, "released inside the first answer's flush")
        let text = try Self.written(channel)
        let places = try ["/now-1", "/now-2", "/now-3"].map { try #require(text.range(of: $0)).lowerBound }
        #expect(places == places.sorted(), "\(text)")
        #expect(text.components(separatedBy: "HTTP/1.1 200").count - 1 == 3, "each answered once")
        _ = try? channel.finish()
    }

    /// A large read that ends inside a head keeps only that head's bytes while it waits for the rest.
    @Test func theRestOfALargeReadIsKeptAlone() throws {
        let channel = try Self.channel(ScriptedResponder())
        let handler = try channel.pipeline.syncOperations.handler(type: HTTPConnectionHandler.self)
        let pad = String(repeating: "p", count: 1000)
        let answered = (0..<8).map { "GET /now-\($0) HTTP/1.1\r\nHost: a\r\nX-Pad: \(pad)\r\n\r\n" }.joined()
        var read = ByteBufferAllocator().buffer(capacity: 65_536)
        read.writeString(answered + "GET /now-last HTTP/1.1\r\nHo")
        try channel.writeInbound(read)
        #expect(handler.unreadHeldBytes > 0 && handler.unreadHeldBytes <= 64, "\(handler.unreadHeldBytes) bytes held")
        try channel.writeInbound(ByteBuffer(string: "st: a\r\n\r\n"))
        let text = try Self.written(channel)
        #expect(text.components(separatedBy: "HTTP/1.1 200").count - 1 == 9 && text.hasSuffix("/now-last"))
        #expect(handler.unreadHeldBytes == 0)
        _ = try? channel.finish()
    }

    /// After a refusal nothing the client sent is served, in the same read or a later one.
    @Test func nothingAfterARefusalIsServed() throws {
        let channel = try Self.channel(ScriptedResponder())
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\nGET /now-1 HTTP/1.1\r\nHost: a\r\n\r\n"))
        try? channel.writeInbound(ByteBuffer(string: "GET /now-2 HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try Self.written(channel)
        #expect(text.hasPrefix("HTTP/1.1 400") && text.components(separatedBy: "HTTP/1.1").count - 1 == 1, "\(text)")
        #expect(!text.contains("/now-"))
        _ = try? channel.finish()
    }

    /// Holds one read and delivers it inside the first flush that passes, as a TLS handler may.
    final class ReleaseOnFlush: ChannelDuplexHandler, @unchecked Sendable {  // used on the embedded loop only
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = NIOAny
        var held: ByteBuffer?
        init(_ held: ByteBuffer) { self.held = held }
        func flush(context: ChannelHandlerContext) {
            if let bytes = held {
                held = nil
                context.fireChannelRead(NIOAny(bytes))
            }
            context.flush()
        }
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

/// The deadline and the handler's timeouts on the embedded loop's own clock.
@Suite("Connection deadlines on an embedded clock")
struct ConnectionDeadlineTests {
    @Test func aMovedDeadlineExpiresOnceAtItsLatestTime() {
        let loop = EmbeddedEventLoop()
        let deadline = MovingDeadline()
        let expiries = Tally()
        deadline.expired = { expiries.value += 1 }
        deadline.move(after: .seconds(10), on: loop)
        loop.advanceTime(by: .seconds(5))
        deadline.move(after: .seconds(10), on: loop)  // now due at 15 s
        loop.advanceTime(by: .seconds(6))
        #expect(expiries.value == 0, "the task fired at 10 s and waited for the rest")
        loop.advanceTime(by: .seconds(4))
        #expect(expiries.value == 1)
        deadline.move(after: .seconds(1), on: loop)
        deadline.clear()
        loop.advanceTime(by: .seconds(5))
        #expect(expiries.value == 1, "a cleared deadline does not expire")
    }

    @Test func aHalfHeadGets408AndAnIdleConnectionIsClosed() throws {
        let responder = ConnectionHandlerTests.ScriptedResponder()
        let half = try ConnectionHandlerTests.channel(responder) {
            $0.headerTimeoutMs = 1000
            $0.idleTimeoutSeconds = 5
        }
        try half.writeInbound(ByteBuffer(string: "GET /now HTTP/1.1\r\nHost: a"))
        half.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(try ConnectionHandlerTests.written(half).isEmpty)
        half.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(try ConnectionHandlerTests.written(half).hasPrefix("HTTP/1.1 408"))

        let idle = try ConnectionHandlerTests.channel(responder) {
            $0.headerTimeoutMs = 1000
            $0.idleTimeoutSeconds = 5
        }
        try idle.writeInbound(ByteBuffer(string: "GET /now HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try ConnectionHandlerTests.written(idle).hasPrefix("HTTP/1.1 200"))
        idle.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(idle.isActive, "kept alive within idle_timeout_s")
        idle.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!idle.isActive)
        _ = try? half.finish()
    }
}

/// A count bumped by callbacks that run on the embedded loop, which is this test's own thread.
private final class Tally: @unchecked Sendable {
    var value = 0
}
