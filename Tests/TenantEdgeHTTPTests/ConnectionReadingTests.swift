import NIOCore
import NIOEmbedded
import NIOExtras
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

/// `HTTPConnectionHandler` reading its requests itself (decision 77): pieces, reads delivered while
/// parts are handed on, what it keeps of a read, and nothing after a refusal.
@Suite("Connection handler reading its own requests")
struct ConnectionReadingTests {
    /// The handler reads its requests itself (no decoder in front): two requests a byte at a time,
    /// and a read whose bytes arrive while parts are handed on (a TLS handler releases what it held
    /// when the handler flushes), are answered in order.
    @Test func requestsInPiecesAndReadsDeliveredMeanwhileAreAnsweredInOrder() throws {
        let pieces = try ConnectionHandlerTests.channel(ConnectionHandlerTests.ScriptedResponder())
        for byte in "GET /now-a HTTP/1.1\r\nHost: a\r\n\r\nGET /now-b HTTP/1.1\r\nHost: a\r\n\r\n".utf8 {
            try pieces.writeInbound(ByteBuffer(bytes: [byte]))
        }
        let split = try ConnectionHandlerTests.written(pieces)
        #expect(split.components(separatedBy: "HTTP/1.1 200").count - 1 == 2)
        #expect(try #require(split.range(of: "/now-a")).lowerBound < #require(split.range(of: "/now-b")).lowerBound)
        _ = try? pieces.finish()

        let channel = try ConnectionHandlerTests.channel(ConnectionHandlerTests.ScriptedResponder())
        let front = ReleaseOnFlush(ByteBuffer(string: "st: a\r\n\r\nGET /now-3 HTTP/1.1\r\nHost: a\r\n\r\n"))
        try channel.pipeline.syncOperations.addHandler(front, position: .first)
        try channel.writeInbound(ByteBuffer(string: "GET /now-1 HTTP/1.1\r\nHost: a\r\n\r\nGET /now-2 HTTP/1.1\r\nHo"))
        #expect(front.held == nil, "released inside the first answer's flush")
        let text = try ConnectionHandlerTests.written(channel)
        let places = try ["/now-1", "/now-2", "/now-3"].map { try #require(text.range(of: $0)).lowerBound }
        #expect(places == places.sorted(), "\(text)")
        #expect(text.components(separatedBy: "HTTP/1.1 200").count - 1 == 3, "each answered once")
        _ = try? channel.finish()
    }

    /// A large read that ends inside a head keeps only that head's bytes while it waits for the rest.
    @Test func theRestOfALargeReadIsKeptAlone() throws {
        let channel = try ConnectionHandlerTests.channel(ConnectionHandlerTests.ScriptedResponder())
        let handler = try channel.pipeline.syncOperations.handler(type: HTTPConnectionHandler.self)
        let pad = String(repeating: "p", count: 1000)
        let answered = (0..<8).map { "GET /now-\($0) HTTP/1.1\r\nHost: a\r\nX-Pad: \(pad)\r\n\r\n" }.joined()
        var read = ByteBufferAllocator().buffer(capacity: 65_536)
        read.writeString(answered + "GET /now-last HTTP/1.1\r\nHo")
        try channel.writeInbound(read)
        #expect(handler.unreadHeldBytes > 0 && handler.unreadHeldBytes <= 64, "\(handler.unreadHeldBytes) bytes held")
        try channel.writeInbound(ByteBuffer(string: "st: a\r\n\r\n"))
        let text = try ConnectionHandlerTests.written(channel)
        #expect(text.components(separatedBy: "HTTP/1.1 200").count - 1 == 9 && text.hasSuffix("/now-last"))
        #expect(handler.unreadHeldBytes == 0)
        _ = try? channel.finish()
    }

    /// After a refusal nothing the client sent is served, in the same read or a later one.
    @Test func nothingAfterARefusalIsServed() throws {
        let channel = try ConnectionHandlerTests.channel(ConnectionHandlerTests.ScriptedResponder())
        let handler = try channel.pipeline.syncOperations.handler(type: HTTPConnectionHandler.self)
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\nGET /now-1 HTTP/1.1\r\nHost: a\r\n\r\n"))
        try? channel.writeInbound(ByteBuffer(string: "GET /now-2 HTTP/1.1\r\nHost: a\r\n\r\nGET /now-3 HTTP/1.1\r\nHo"))
        #expect(handler.unreadHeldBytes == 0, "what follows a refusal is dropped, not kept")
        let text = try ConnectionHandlerTests.written(channel)
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
}
