import NIOCore
import NIOExtras
import NIOHTTP1
import TenantEdgeCore

/// One HTTP/1.1 connection on the lean pipeline: this handler alone (behind TLS when it is on),
/// reading its requests with `StrictRequestDecoder` itself (`+Reading`); the notes measured a lean
/// pipeline at 13 % over NIO's default one. Response heads are written by
/// `HTTPResponseHeadWriter`, so a hit's stored header block goes out as it is. Because the pipeline
/// has no `HTTPServerPipelineHandler`, this handler does that handler's work itself:
/// - pipelined requests are answered strictly in order: requests queue and one is served at a time;
/// - at most `limits.max_pipelined_requests` wait; while the queue is full, or the peer does not
///   take what was written (the channel is not writable), reads stop and nothing new is served, as
///   NIO's pipeline handler does; a burst that decodes to four times that many closes the
///   connection once the queued ones are answered;
/// - `Connection: close` / HTTP/1.0 without keep-alive close after the response;
/// - `Expect: 100-continue` is answered before the body is read, only to HTTP/1.1 clients and only
///   when nothing is ahead of it (an interim answer never overtakes an earlier final one);
/// - a request the decoder refuses is answered with the refusal's status (`400`, `414`, `431`,
///   `501`, `505`) and the connection closed;
/// - a body over the body limit is read and dropped up to four times the limit, then refused
///   (`413`), since many clients cannot take an answer before they finished sending; a head over the
///   header limit (`431`), an announced body beyond that, or a head the responder refuses before its
///   body (`HTTPResponder.screen`, e.g. a missing admin token) is answered as soon as the head is
///   read, and what the client still sends of it is dropped for a moment before the close;
/// - a whole request (and, on a new connection, the TLS handshake) must arrive within
///   `limits.header_timeout_ms` of its first byte (`408` and a close); an idle keep-alive connection
///   closes after `limits.idle_timeout_s`, and so does one whose peer stops taking its response;
/// - on quiesce (graceful drain) the connection closes once its in-flight response is written.
package final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = IOData
    package typealias OutboundOut = IOData

    /// `header`: a request is on its way; `idle`: waiting between requests; `write`: the peer stopped
    /// taking a response; `closing`: the last response is leaving before the close.
    enum TimerKind { case header, idle, write, closing, linger }

    private let responder: any HTTPResponder
    /// The responder's fixed fields, read once per connection rather than per response.
    private let fixedHeaders: FixedHeaderLines
    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount

    // State, touched only on the channel's event loop.
    /// The protocol's rules: what is accepted, queued, refused, read; whether a response keeps the connection.
    var machine: HTTPConnectionStateMachine
    /// What the connection waits for, and until when.
    var timerKind: TimerKind?
    let deadline = MovingDeadline()
    /// Where responses are written, kept between them so a keep-alive connection's answers do not
    /// allocate one each.
    private var responseBuffer = ByteBuffer()
    /// The socket peer, read from the channel at the first request: a TCP connection's peer does
    /// not change, and reading it from the channel (an event-loop check, a copy of the address and
    /// its retain) cost about 220 instructions a request.
    private var peer: SocketAddress?
    private var peerRead = false
    /// Reads requests from the connection's bytes, run by `channelRead` (`+Reading`).
    var decoder: StrictRequestDecoder
    /// Bytes read and not decoded yet: part of a head or a body, or what arrived while parts were handed on.
    var unread: ByteBuffer?
    /// Parts are being handed on: a read that arrives meanwhile only adds its bytes to `unread`.
    var decoding = false
    /// The decoder refused what the client sent: nothing more of it is read.
    var refusedInput = false
    /// The close of a connection that lingers after a refusal.
    var closingTask: Scheduled<Void>?
    /// Bytes waiting to be written when the write (or closing) timer was armed: a peer that took some since is
    /// slow, not stalled, and gets another period (nginx's `send_timeout` is between two writes too).
    var bufferedAtArm = 0
    /// Bytes a peer must take per idle period to count as reading (a byte a minute does not).
    static let minimumProgress = 4096
    /// Bodies up to this size are copied behind their head and written with it.
    static let coalescedBodyBytes = 4 * 1024
    /// A response buffer larger than this is not kept for the next response of the connection.
    static let keptResponseBufferBytes = 16 * 1024
    /// How long a refused upload is read and dropped before the connection is closed.
    static let lingerTime: TimeAmount = .seconds(2)

    package init(responder: any HTTPResponder, limits: EdgeConfig.Limits) {
        self.responder = responder
        self.fixedHeaders = responder.fixedHeaders
        self.machine = HTTPConnectionStateMachine(
            limits: .init(
                maxHeaderBytes: limits.maxHeaderBytes, maxBodyBytes: limits.maxRequestBodyBytes,
                maxQueued: limits.maxPipelinedRequests))
        self.decoder = StrictRequestDecoder(maxHeadBytes: limits.maxHeaderBytes + HTTPListener.headSlack)
        self.headerTimeout = .milliseconds(Int64(limits.headerTimeoutMs))
        self.idleTimeout = .seconds(Int64(limits.idleTimeoutSeconds))
    }

    package func channelActive(context: ChannelHandlerContext) {
        arm(.header, context: context)  // the TLS handshake and the first head share the header timeout
        context.fireChannelActive()
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(.header, context: context) }
    }

    /// Before each read's bytes are decoded: a head that never completes is still timed out.
    func bytesArrived(context: ChannelHandlerContext) {
        machine.bytesArrived()
        // The first byte after an idle wait starts the request's clock; later bytes never
        // restart it, so a request trickled a byte at a time still ends at the deadline.
        if !machine.busy, timerKind == .idle { arm(.header, context: context) }
    }

    package func read(context: ChannelHandlerContext) {
        if machine.readRequested(writable: context.channel.isWritable) { context.read() }
    }

    /// One part of a request, as the decoder read it.
    func received(_ part: EdgeRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            if !peerRead {
                peer = context.channel.remoteAddress
                peerRead = true
            }
            switch machine.receivedHead(head, peer: peer, screen: { self.responder.screen($0) })
            {
            case .none:
                break
            case .sendContinue(let version):
                var interim = context.channel.allocator.buffer(capacity: 32)
                HTTPResponseHeadWriter.writeContinue(version: version, into: &interim)
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(interim)), promise: nil)
            case .serve:
                serveNext(context: context)
            }
        case .body(var chunk):
            if machine.receivedBody(&chunk) == .serve { serveNext(context: context) }
        case .end:
            switch machine.receivedEnd() {
            case .none: break
            case .serve: serveNext(context: context)
            case .close: context.close(promise: nil)
            }
        }
    }

    private func serveNext(context: ChannelHandlerContext) {
        guard let pending = machine.nextToServe(writable: context.channel.isWritable) else { return }
        cancelTimer()
        resumeReading(context: context)
        if let rejection = pending.rejection {
            write(rejection, for: pending.request, forceClose: true, context: context)
            return
        }
        switch responder.respond(to: pending.request, on: context.eventLoop) {
        case .now(let response):
            write(response, for: pending.request, forceClose: false, context: context)
        case .later(let future):
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let response):
                    self.write(response, for: pending.request, forceClose: false, context: context)
                case .failure:
                    self.write(
                        EdgeResponse.jsonError(.internalServerError, code: "internal_error"),
                        for: pending.request, forceClose: false, context: context)
                }
            }
        }
    }

    private func resumeReading(context: ChannelHandlerContext) {
        if machine.mayResumeReading(writable: context.channel.isWritable) { context.read() }
    }

    private func write(
        _ response: EdgeResponse, for request: EdgeRequest, forceClose: Bool, context: ChannelHandlerContext
    ) {
        guard !machine.closed else { return }
        let disposition = machine.responseReady(
            keepAliveRequested: request.head.keepsConnection, forceClose: forceClose)
        let keepAlive = disposition.keepAlive
        let length = response.sendBody ? (response.body?.readableBytes ?? 0) : response.announcedLength
        let connection: String? = !keepAlive ? "close" : (request.head.version.minor == 0 ? "keep-alive" : nil)
        var body = response.sendBody ? response.body.flatMap { $0.readableBytes > 0 ? $0 : nil } : nil
        // A body up to `coalescedBodyBytes` leaves in the head's buffer: one write through the
        // pipeline and one iovec instead of two, for the price of copying it (bench/instructions.sh).
        let coalesced = (body?.readableBytes ?? Int.max) <= Self.coalescedBodyBytes
        // The connection's own buffer, reused: `clear()` keeps its storage when the last response
        // has left (the channel let go of it) and gives it new storage when that is still queued.
        responseBuffer.clear()
        responseBuffer.reserveCapacity(
            256 + (response.rawHeaders?.readableBytes ?? 0) + (coalesced ? body?.readableBytes ?? 0 : 0))
        HTTPResponseHeadWriter.write(
            version: request.head.version, response: response, fixed: fixedHeaders, contentLength: length,
            connection: connection, into: &responseBuffer)
        if coalesced, var whole = body {
            responseBuffer.writeBuffer(&whole)
            body = nil
        }
        let head = responseBuffer
        if responseBuffer.capacity > Self.keptResponseBufferBytes { responseBuffer = ByteBuffer() }
        if keepAlive {
            context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
            if let body { context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil) }
            context.flush()
            serveNext(context: context)
            if !machine.busy {
                if !context.channel.isWritable {
                    arm(.write, context: context)  // the response is still leaving: not idle yet
                } else {
                    arm(waitingForRequest ? .idle : .header, context: context)
                }
            }
            return
        }
        cancelTimer()
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: body == nil ? written : nil)
        if let body { context.write(wrapOutboundOut(.byteBuffer(body)), promise: written) }
        context.flush()
        let linger = disposition.linger
        watchClosingWrite(context: context)
        written.futureResult.assumeIsolated().whenComplete { _ in
            guard linger else { return context.close(promise: nil) }
            self.linger(context: context)
        }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if timerKind == .write { arm(waitingForRequest ? .idle : .header, context: context) }
            serveNext(context: context)
            resumeReading(context: context)
        } else if !machine.busy {
            arm(.write, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if machine.lingering, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)  // the client finished: nothing left to drop
            return
        }
        if event is ChannelShouldQuiesceEvent {
            if machine.quiesce() { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if machine.lingering { return }  // what a refused client still sends may not parse; it is dropped anyway
        guard !machine.closed else { return }
        cancelTimer()
        if machine.parseFailed(), let refusal = error as? RequestRefusal {
            write(
                status: HTTPResponseStatus(statusCode: refusal.status), code: refusal.code, detail: refusal.detail,
                context: context)
            return
        }
        context.close(promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        machine.channelInactive()
        unread = nil  // an answer still on its way keeps this handler, not the bytes it read
        cancelTimer()
        deadline.stop()
        closingTask?.cancel()
        closingTask = nil
        context.fireChannelInactive()
    }

    /// A JSON error the handler writes itself, closing the connection after it.
    func write(status: HTTPResponseStatus, code: String, detail: String, context: ChannelHandlerContext) {
        let response = EdgeResponse.jsonError(status, code: code, detail: detail)
        let body = response.body ?? ByteBuffer()
        var head = context.channel.allocator.buffer(capacity: 256)
        HTTPResponseHeadWriter.write(
            version: .http1_1, response: response, fixed: fixedHeaders, contentLength: body.readableBytes,
            connection: "close", into: &head)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        watchClosingWrite(context: context)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(body))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
