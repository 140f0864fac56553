import NIOCore
import NIOHTTP1
import Testing

@testable import TenantEdgeHTTP

/// The connection's rules driven by hand: each input and the action it must lead to.
@Suite("HTTP connection state machine")
struct ConnectionStateMachineTests {
    static let limits = HTTPConnectionStateMachine.Limits(maxHeaderBytes: 1024, maxBodyBytes: 100, maxQueued: 2)
    static func head(
        _ uri: String, _ headers: [(String, String)] = [], version: HTTPVersion = .http1_1, method: HTTPMethod = .GET
    ) -> EdgeRequestHead {
        EdgeRequestHead(version: version, method: method, uri: uri, headers: .received(headers))
    }
    static let noScreen: @Sendable (EdgeRequest) -> EdgeResponse? = { _ in nil }

    /// The machine behind a reference, so its mutating inputs can be called inside `#expect`.
    final class Driver {
        var machine = HTTPConnectionStateMachine(limits: ConnectionStateMachineTests.limits)
        var closed: Bool { machine.closed }
        var discarding: Bool { machine.discarding }
        var queue: [HTTPConnectionStateMachine.Pending] { machine.queue }
        var current: HTTPConnectionStateMachine.Pending? { machine.current }

        /// A whole request, head to end.
        func request(_ uri: String) -> HTTPConnectionStateMachine.PartAction {
            _ = machine.receivedHead(head(uri), peer: nil, screen: noScreen)
            return machine.receivedEnd()
        }
        func receivedHead(
            _ head: EdgeRequestHead, peer: SocketAddress?, screen: (EdgeRequest) -> EdgeResponse?
        ) -> HTTPConnectionStateMachine.HeadAction { machine.receivedHead(head, peer: peer, screen: screen) }
        func receivedBody(_ chunk: inout ByteBuffer) -> HTTPConnectionStateMachine.PartAction {
            machine.receivedBody(&chunk)
        }
        func receivedEnd() -> HTTPConnectionStateMachine.PartAction { machine.receivedEnd() }
        func readRequested(writable: Bool) -> Bool { machine.readRequested(writable: writable) }
        func mayResumeReading(writable: Bool) -> Bool { machine.mayResumeReading(writable: writable) }
        func nextToServe(writable: Bool) -> HTTPConnectionStateMachine.Pending? {
            machine.nextToServe(writable: writable)
        }
        func responseReady(keepAliveRequested: Bool, forceClose: Bool) -> HTTPConnectionStateMachine.Disposition {
            machine.responseReady(keepAliveRequested: keepAliveRequested, forceClose: forceClose)
        }
        func quiesce() -> Bool { machine.quiesce() }
        func parseFailed() -> Bool { machine.parseFailed() }
        func startLingering() { machine.startLingering() }
    }

    @Test func pipelinedRequestsAreServedInOrderOneAtATime() {
        let machine = Driver()
        #expect(machine.request("/a") == .serve)
        #expect(machine.request("/b") == .serve)
        #expect(machine.nextToServe(writable: true)?.request.head.uri == "/a")
        #expect(machine.nextToServe(writable: true) == nil, "one at a time")
        #expect(machine.responseReady(keepAliveRequested: true, forceClose: false).keepAlive)
        #expect(machine.nextToServe(writable: false) == nil, "not while the peer takes nothing")
        #expect(machine.nextToServe(writable: true)?.request.head.uri == "/b")
    }

    @Test func readsStopWhileTheQueueIsFullOrThePeerIsNotReadingAndResume() {
        let machine = Driver()
        #expect(machine.readRequested(writable: true))
        #expect(!machine.readRequested(writable: false), "the peer is not taking what was written")
        #expect(machine.mayResumeReading(writable: true))
        _ = machine.request("/a")
        _ = machine.request("/b")
        #expect(!machine.readRequested(writable: true), "two queued: the queue is full")
        #expect(!machine.mayResumeReading(writable: true))
        _ = machine.nextToServe(writable: true)
        #expect(machine.mayResumeReading(writable: true), "one left the queue")
        #expect(!machine.mayResumeReading(writable: true), "and only once")
    }

    @Test func aBurstBeyondFourTimesTheQueueIsDroppedAndTheConnectionClosesAfterTheQueued() {
        let machine = Driver()
        for index in 0..<8 { #expect(machine.request("/\(index)") == .serve) }
        #expect(machine.request("/8") == HTTPConnectionStateMachine.PartAction.none)
        #expect(machine.discarding && machine.queue.count == 8)
        #expect(machine.request("/9") == HTTPConnectionStateMachine.PartAction.none, "nothing more is read")
        for _ in 0..<7 {
            _ = machine.nextToServe(writable: true)
            #expect(machine.responseReady(keepAliveRequested: true, forceClose: false).keepAlive)
        }
        _ = machine.nextToServe(writable: true)
        #expect(
            machine.responseReady(keepAliveRequested: true, forceClose: false) == .init(keepAlive: false, linger: false)
        )
        #expect(machine.closed)
    }

    @Test func continueGoesOnlyToHTTP11WithNothingAhead() {
        let machine = Driver()
        let expecting = [("Expect", "100-continue"), ("Content-Length", "5")]
        #expect(
            machine.receivedHead(Self.head("/u", expecting), peer: nil, screen: Self.noScreen)
                == .sendContinue(.http1_1))
        let old = Driver()
        #expect(
            old.receivedHead(Self.head("/u", expecting, version: .http1_0), peer: nil, screen: Self.noScreen)
                == HTTPConnectionStateMachine.HeadAction.none)
        let behind = Driver()
        _ = behind.request("/first")
        #expect(
            behind.receivedHead(Self.head("/u", expecting), peer: nil, screen: Self.noScreen)
                == HTTPConnectionStateMachine.HeadAction.none, "an earlier answer is still owed")
    }

    /// The screen may record a security event: it is asked once per head, and sees the peer.
    @Test func theScreenIsAskedOnceAndSeesThePeer() throws {
        final class Asked: @unchecked Sendable {  // touched by the one test thread only
            var peers: [SocketAddress?] = []
        }
        let asked = Asked()
        let peer = try SocketAddress(ipAddress: "10.1.2.3", port: 4567)
        for length in ["300", "10"] {  // over the body limit but drained, and within it
            asked.peers = []
            let machine = Driver()
            _ = machine.receivedHead(Self.head("/x", [("Content-Length", length)]), peer: peer) { request in
                asked.peers.append(request.peer)
                return .jsonError(.unauthorized, code: "unauthorized")
            }
            #expect(asked.peers == [peer], "Content-Length \(length)")
        }
    }

    @Test func headsOverTheLimitsOrScreenedAreRefusedAtOnce() {
        let cases: [([(String, String)], @Sendable (EdgeRequest) -> EdgeResponse?, HTTPResponseStatus)] = [
            ([("X-Big", String(repeating: "x", count: 2000))], Self.noScreen, .requestHeaderFieldsTooLarge),
            ([("Content-Length", "1000")], Self.noScreen, .payloadTooLarge),  // beyond four times the limit
            ([], { _ in .jsonError(.unauthorized, code: "unauthorized") }, .unauthorized),
        ]
        for (headers, screen, status) in cases {
            let machine = Driver()
            #expect(machine.receivedHead(Self.head("/x", headers), peer: nil, screen: screen) == .serve)
            let pending = machine.nextToServe(writable: true)
            #expect(pending?.rejection?.status == status)
            #expect(machine.discarding && !machine.readRequested(writable: true), "nothing more is read")
            #expect(
                machine.responseReady(keepAliveRequested: true, forceClose: true)
                    == .init(keepAlive: false, linger: true))
        }
    }

    @Test func aSomewhatLargeBodyIsReadAndDroppedThenRefusedAndBeyondFourTimesRefusedEarly() {
        let machine = Driver()
        #expect(
            machine.receivedHead(Self.head("/u", [("Content-Length", "300")]), peer: nil, screen: Self.noScreen)
                == HTTPConnectionStateMachine.HeadAction.none)
        var chunk = ByteBuffer(repeating: 1, count: 300)
        #expect(machine.receivedBody(&chunk) == HTTPConnectionStateMachine.PartAction.none)
        #expect(machine.receivedEnd() == .serve)
        #expect(machine.nextToServe(writable: true)?.rejection?.status == .payloadTooLarge)
        // No length announced: the body is held up to the limit, then dropped up to four times it.
        let chunked = Driver()
        _ = chunked.receivedHead(Self.head("/u", [("Transfer-Encoding", "chunked")]), peer: nil, screen: Self.noScreen)
        var small = ByteBuffer(repeating: 2, count: 60)
        #expect(chunked.receivedBody(&small) == HTTPConnectionStateMachine.PartAction.none)
        #expect(chunked.current?.request.body?.readableBytes == 60)
        #expect(chunked.receivedBody(&small) == HTTPConnectionStateMachine.PartAction.none)
        #expect(chunked.current?.request.body == nil && chunked.current?.rejection != nil, "over the limit: dropped")
        var flood = ByteBuffer(repeating: 3, count: 400)
        #expect(chunked.receivedBody(&flood) == .serve, "past four times the limit: refused now")
        #expect(chunked.discarding)
    }

    @Test func keepAliveFollowsTheRequestAndTheDrain() {
        let machine = Driver()
        _ = machine.request("/a")
        _ = machine.nextToServe(writable: true)
        #expect(
            machine.responseReady(keepAliveRequested: false, forceClose: false)
                == .init(keepAlive: false, linger: false))
        let draining = Driver()
        _ = draining.request("/a")
        _ = draining.request("/b")
        _ = draining.nextToServe(writable: true)
        #expect(!draining.quiesce(), "a response is being made and one is queued")
        #expect(
            draining.responseReady(keepAliveRequested: true, forceClose: false).keepAlive, "the queued one still comes")
        _ = draining.nextToServe(writable: true)
        #expect(!draining.responseReady(keepAliveRequested: true, forceClose: false).keepAlive, "the last one closes")
        let idle = Driver()
        #expect(idle.quiesce(), "nothing in flight: close now")
    }

    @Test func aLingeringConnectionDropsEverythingUntilTheRequestEnds() {
        let machine = Driver()
        machine.startLingering()
        #expect(machine.readRequested(writable: false), "read and dropped, never held")
        #expect(
            machine.receivedHead(Self.head("/x"), peer: nil, screen: Self.noScreen)
                == HTTPConnectionStateMachine.HeadAction.none)
        #expect(machine.receivedEnd() == .close)
    }

    @Test func aMalformedRequestIsAnsweredOnlyWhenNothingIsBeingServed() {
        let idle = Driver()
        #expect(idle.parseFailed() && idle.closed)
        let busy = Driver()
        _ = busy.request("/a")
        _ = busy.nextToServe(writable: true)
        #expect(!busy.parseFailed(), "a response is being made: just close")
        let queued = Driver()
        #expect(queued.request("/a") == .serve)
        #expect(!queued.parseFailed(), "an answer waits to be made: a 400 must not overtake it")
    }
}
