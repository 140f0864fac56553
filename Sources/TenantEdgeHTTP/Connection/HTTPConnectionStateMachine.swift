import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// The rules of one HTTP/1.1 connection, as a state machine: which requests are accepted, queued,
/// refused at their head or read and dropped, when reads stop (back-pressure), what is served
/// next, and whether a response keeps the connection. `HTTPConnectionHandler` feeds it what the
/// channel reports and performs the actions; the timers (header, idle, write stall, linger) stay
/// in the handler, which reads this machine's state to arm them.
struct HTTPConnectionStateMachine {
    struct Limits {
        var maxHeaderBytes: Int
        var maxBodyBytes: Int
        /// Requests that may wait behind the one being served before reads stop.
        var maxQueued: Int
    }

    struct Pending {
        var request: EdgeRequest
        /// An answer the handler gives itself (limits, a refused head), instead of the responder's.
        var rejection: EdgeResponse?
    }

    enum HeadAction: Equatable {
        /// Nothing to do until the body or the end arrives.
        case none
        /// Answer `100 Continue` now, in this version.
        case sendContinue(HTTPVersion)
        /// A refusal was queued: serve what is next.
        case serve
    }

    enum PartAction: Equatable {
        case none
        /// A request (or a refusal) was queued: serve what is next.
        case serve
        /// A refused upload's client finished: close now.
        case close
    }

    /// How the response being written leaves.
    struct Disposition: Equatable {
        var keepAlive: Bool
        /// After a refused upload: read and drop what still comes for a moment before closing.
        var linger: Bool
    }

    let limits: Limits
    private(set) var current: Pending?
    private(set) var queue: [Pending] = []
    /// A response is being made.
    private(set) var busy = false
    private(set) var quiescing = false
    private(set) var closed = false
    /// Nothing more is read from this connection: a burst overflowed the queue, or a request was
    /// refused at its head. What is queued is answered, then the connection closes.
    private(set) var discarding = false
    private(set) var readSuppressed = false
    /// The last response went out after a refused upload: what arrives is dropped.
    private(set) var lingering = false
    /// Bytes of a request arrived since the last complete one (a head may be half there).
    private(set) var partialRequest = false
    /// Body bytes dropped of a request that will be refused once it has arrived.
    private var drained = 0

    init(limits: Limits) { self.limits = limits }

    /// Most body bytes read and dropped before a too-large request is refused: beyond this (or an
    /// announced length beyond it) the refusal goes out at once.
    var drainLimit: Int { limits.maxBodyBytes <= Int.max / 4 ? 4 * limits.maxBodyBytes : Int.max }

    /// Whether a requested read may go ahead: not while the queue is full, the peer does not take
    /// what was written, or the connection is discarding (NIO's pipeline handler does the same).
    mutating func readRequested(writable: Bool) -> Bool {
        if lingering { return true }  // dropped as it comes, never buffered
        if queue.count >= limits.maxQueued || !writable || discarding {
            readSuppressed = true
            return false
        }
        return true
    }

    /// Whether reads stopped by `readRequested` may start again.
    mutating func mayResumeReading(writable: Bool) -> Bool {
        guard readSuppressed, queue.count < limits.maxQueued, writable, !discarding else { return false }
        readSuppressed = false
        return true
    }

    mutating func bytesArrived() { partialRequest = true }

    /// A request head. `screen` is the responder's refusal at the head (asked once, and only when
    /// the head is within the header limit: a refusal may be counted as a security event), `peer`
    /// the socket peer.
    mutating func receivedHead(
        _ head: EdgeRequestHead, peer: SocketAddress?, screen: (EdgeRequest) -> EdgeResponse?
    ) -> HeadAction {
        if lingering || discarding || closed { return .none }
        // One pass for the two fields the connection acts on (the first of each).
        let size = head.uri.utf8.count + 16 + head.headers.countedBytes
        var contentLength: String? = nil
        var expect: String? = nil
        head.headers.forEachField { name, value in
            if contentLength == nil, ASCII.equalIgnoringCase(name, "content-length") {
                contentLength = String(decoding: value, as: UTF8.self)
            } else if expect == nil, ASCII.equalIgnoringCase(name, "expect") {
                expect = String(decoding: value, as: UTF8.self)
            }
            return true
        }
        let request = EdgeRequest(head: head, body: nil, peer: peer)
        let length = contentLength.flatMap { Int($0) }
        let expectsContinue = expect?.caseInsensitiveEquals("100-continue") ?? false
        let screened = size <= limits.maxHeaderBytes ? screen(request) : nil
        if let length, length > limits.maxBodyBytes, length <= drainLimit, !expectsContinue,
            size <= limits.maxHeaderBytes, screened == nil
        {
            // Somewhat too large: read and dropped, then refused, as clients that cannot take an
            // early answer expect (the whole request still has the header timeout).
            current = Pending(request: request, rejection: .jsonError(.payloadTooLarge, code: "payload_too_large"))
            drained = 0
            return .none
        }
        if let refusal = refusal(size: size, length: length, screened: screened) {
            // Answered now, body unread: a refused upload costs the client, not this node.
            discarding = true
            queue.append(Pending(request: request, rejection: refusal))
            return .serve
        }
        current = Pending(request: request, rejection: nil)
        if expectsContinue, head.version.minor >= 1, !busy, queue.isEmpty {
            return .sendContinue(head.version)  // never ahead of an earlier final answer
        }
        return .none
    }

    private func refusal(size: Int, length: Int?, screened: EdgeResponse?) -> EdgeResponse? {
        if size > limits.maxHeaderBytes {
            return .jsonError(.requestHeaderFieldsTooLarge, code: "request_header_fields_too_large")
        }
        if let length, length > limits.maxBodyBytes { return .jsonError(.payloadTooLarge, code: "payload_too_large") }
        return screened
    }

    /// A piece of the current request's body.
    mutating func receivedBody(_ chunk: inout ByteBuffer) -> PartAction {
        if lingering || discarding || closed { return .none }
        guard current != nil else { return .none }
        if current?.rejection != nil {
            drained += chunk.readableBytes
            if drained > drainLimit, let pending = current {  // more than announced, or no end in sight
                current = nil
                discarding = true
                queue.append(pending)
                return .serve
            }
            return .none
        }
        if (current?.request.body?.readableBytes ?? 0) + chunk.readableBytes > limits.maxBodyBytes {
            current?.request.body = nil
            current?.rejection = .jsonError(.payloadTooLarge, code: "payload_too_large")
            drained = chunk.readableBytes
        } else if current?.request.body == nil {
            current?.request.body = chunk
        } else {
            current?.request.body?.writeBuffer(&chunk)  // in place: one reference while it grows
        }
        return .none
    }

    /// The current request is complete.
    mutating func receivedEnd() -> PartAction {
        if lingering { return .close }
        if discarding || closed { return .none }
        guard let pending = current.take() else { return .none }  // moved out, not copied and dropped
        partialRequest = false
        if queue.count >= 4 * limits.maxQueued {
            discarding = true  // reads were stopped; what one read decoded beyond this is dropped
            return .none
        }
        queue.append(pending)
        return .serve
    }

    /// The next request to answer, in order, one at a time, and only while the peer takes what is
    /// written.
    mutating func nextToServe(writable: Bool) -> Pending? {
        guard !busy, !closed, !queue.isEmpty, writable else { return nil }
        busy = true
        return queue.removeFirst()
    }

    /// The response to `request` is about to be written: whether the connection stays open.
    mutating func responseReady(keepAliveRequested: Bool, forceClose: Bool) -> Disposition {
        let lastOfDiscarded = discarding && queue.isEmpty
        let keepAlive = keepAliveRequested && !forceClose && !(quiescing && queue.isEmpty) && !lastOfDiscarded
        busy = false
        guard !keepAlive else { return Disposition(keepAlive: true, linger: false) }
        closed = true
        return Disposition(keepAlive: false, linger: discarding && forceClose)
    }

    /// The closing response of a refused upload is written: drop what still comes.
    mutating func startLingering() { lingering = true }

    /// A graceful drain: true when the connection may close now (nothing in flight or queued).
    mutating func quiesce() -> Bool {
        quiescing = true
        guard !busy && queue.isEmpty && current == nil else { return false }
        closed = true
        return true
    }

    /// A refused request: true when it is answered with the refusal's status (nothing is being served or waits to
    /// be), false when the connection just closes, since an answer written ahead of a queued one
    /// would be taken by the client as that request's.
    mutating func parseFailed() -> Bool {
        let answer = !busy && queue.isEmpty
        closed = true
        return answer
    }

    /// The connection is closing or closed from the handler's side (a timeout, an error).
    mutating func markClosed() { closed = true }

    mutating func channelInactive() {
        closed = true
        queue.removeAll()
    }
}
