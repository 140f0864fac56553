import NIOCore
import NIOEmbedded
import NIOExtras
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

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
