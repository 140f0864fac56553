import NIOCore
import NIOExtras
import NIOHTTP1
import TenantEdgeCore

/// One HTTP/1.1 connection on the lean pipeline (NIO's `HTTPRequestDecoder` + this); the notes measured
/// a lean pipeline at 13 % over NIO's default one. Response heads are written by
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
/// - a decode error is answered `400` and the connection closed;
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
    package typealias InboundIn = HTTPServerRequestPart
    package typealias OutboundIn = IOData
    package typealias OutboundOut = IOData

    private struct Pending {
        var request: EdgeRequest
        /// An answer the handler gives itself (limits, a refused head), instead of the responder's.
        var rejection: EdgeResponse?
    }

    /// `header`: a request is on its way; `idle`: waiting between requests; `write`: the peer stopped
    /// taking a response.
    private enum TimerKind { case header, idle, write, linger }

    private let responder: any HTTPResponder
    private let maxHeaderBytes: Int
    private let maxBodyBytes: Int
    private let maxQueued: Int
    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount

    // State, touched only on the channel's event loop.
    private var current: Pending?
    private var queue: [Pending] = []
    private var busy = false
    private var quiescing = false
    private var closed = false
    /// Nothing more is read from this connection: a burst overflowed the queue, or a request was
    /// refused at its head. What is queued is answered, then the connection closes.
    private var discarding = false
    private var readSuppressed = false
    /// What the connection waits for, and until when.
    private var timerKind: TimerKind?
    private let deadline = MovingDeadline()
    /// The close of a connection whose last response is leaving, or that lingers after a refusal.
    private var closingTask: Scheduled<Void>?
    /// Bytes of a request arrived since the last complete one (a head may be half there).
    private var partialRequest = false
    /// Body bytes dropped of a request that will be refused once it has arrived.
    private var drained = 0
    /// Most body bytes read and dropped before a too-large request is refused: beyond this (or an
    /// announced length beyond it) the refusal goes out at once.
    private var drainLimit: Int { maxBodyBytes <= Int.max / 4 ? 4 * maxBodyBytes : Int.max }
    /// The last response went out after a refused upload: what the client still sends of it is read
    /// and dropped for a moment (nginx's lingering close), so the client reads the refusal instead
    /// of a reset; the connection closes when that request's end arrives or the moment is over.
    private var lingering = false
    /// Bytes waiting to be written when the write timer was armed: a peer that took some since is
    /// slow, not stalled, and gets another period (nginx's `send_timeout` is between two writes too).
    private var bufferedAtArm = 0
    /// Bytes a peer must take per idle period to count as reading (a byte a minute does not).
    private static let minimumProgress = 4096
    /// How long a refused upload is read and dropped before the connection is closed.
    private static let lingerTime: TimeAmount = .seconds(2)

    package init(responder: any HTTPResponder, limits: EdgeConfig.Limits) {
        self.responder = responder
        self.maxHeaderBytes = limits.maxHeaderBytes
        self.maxBodyBytes = limits.maxRequestBodyBytes
        self.maxQueued = limits.maxPipelinedRequests
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

    package func read(context: ChannelHandlerContext) {
        if lingering {
            context.read()  // dropped as it comes, never buffered
            return
        }
        if queue.count >= maxQueued || !context.channel.isWritable || discarding {
            readSuppressed = true
            return
        }
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if lingering {
            if case .end = unwrapInboundIn(data) { context.close(promise: nil) }
            return
        }
        if discarding || closed { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            var size = head.uri.utf8.count + 16
            for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
            let request = EdgeRequest(head: head, body: nil, peer: context.channel.remoteAddress)
            let length = head.headers.first(name: "content-length").flatMap(Int.init)
            let expectsContinue = head.headers.first(name: "expect")?.lowercased() == "100-continue"
            if let length, length > maxBodyBytes, length <= drainLimit, !expectsContinue, size <= maxHeaderBytes,
                responder.screen(head) == nil
            {
                // Somewhat too large: read and dropped, then refused, as clients that cannot take an
                // early answer expect (the whole request still has `header_timeout_ms`).
                current = Pending(request: request, rejection: .jsonError(.payloadTooLarge, code: "payload_too_large"))
                drained = 0
                return
            }
            if let refusal = refusal(of: head, size: size) {
                // Answered now, body unread: a refused upload costs the client, not this node.
                discarding = true  // before the answer is written, so the write lingers
                enqueue(Pending(request: request, rejection: refusal), context: context)
                return
            }
            if expectsContinue, head.version.minor >= 1, !busy, queue.isEmpty {
                var interim = context.channel.allocator.buffer(capacity: 32)
                HTTPResponseHeadWriter.writeContinue(version: head.version, into: &interim)
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(interim)), promise: nil)
            }
            current = Pending(request: request, rejection: nil)
        case .body(var chunk):
            guard var pending = current else { return }
            if pending.rejection != nil {
                drained += chunk.readableBytes
                if drained > drainLimit {  // more than announced, or no end in sight: answer now
                    current = nil
                    discarding = true
                    enqueue(pending, context: context)
                }
                return
            }
            if (pending.request.body?.readableBytes ?? 0) + chunk.readableBytes > maxBodyBytes {
                pending.request.body = nil
                pending.rejection = .jsonError(.payloadTooLarge, code: "payload_too_large")
                drained = chunk.readableBytes
                current = pending
            } else if pending.request.body == nil {
                pending.request.body = chunk
                current = pending
            } else {
                current = nil  // one reference to the body while it grows, so it is not copied
                pending.request.body!.writeBuffer(&chunk)
                current = pending
            }
        case .end:
            guard let pending = current else { return }
            current = nil
            partialRequest = false
            if queue.count >= 4 * maxQueued {
                discarding = true  // reads were stopped; what one read decoded beyond this is dropped
                return
            }
            enqueue(pending, context: context)
        }
    }

    /// The answer for a head that is refused before its body is read, or nil.
    private func refusal(of head: HTTPRequestHead, size: Int) -> EdgeResponse? {
        if size > maxHeaderBytes {
            return .jsonError(.requestHeaderFieldsTooLarge, code: "request_header_fields_too_large")
        }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
            return .jsonError(.payloadTooLarge, code: "payload_too_large")
        }
        return responder.screen(head)
    }

    private func enqueue(_ pending: Pending, context: ChannelHandlerContext) {
        queue.append(pending)
        serveNext(context: context)
    }

    private func serveNext(context: ChannelHandlerContext) {
        guard !busy, !closed, !queue.isEmpty, context.channel.isWritable else { return }
        let pending = queue.removeFirst()
        busy = true
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
        guard readSuppressed, queue.count < maxQueued, context.channel.isWritable, !discarding else { return }
        readSuppressed = false
        context.read()
    }

    private func write(
        _ response: EdgeResponse, for request: EdgeRequest, forceClose: Bool, context: ChannelHandlerContext
    ) {
        guard !closed else { return }
        let lastOfDiscarded = discarding && queue.isEmpty
        let keepAlive = request.head.isKeepAlive && !forceClose && !(quiescing && queue.isEmpty) && !lastOfDiscarded
        var headers = response.headers
        responder.decorate(&headers)
        let length = response.sendBody ? (response.body?.readableBytes ?? 0) : response.announcedLength
        let connection: String? = !keepAlive ? "close" : (request.head.version.minor == 0 ? "keep-alive" : nil)
        var head = context.channel.allocator.buffer(capacity: 256 + (response.rawHeaders?.readableBytes ?? 0))
        HTTPResponseHeadWriter.write(
            version: request.head.version, status: response.status, headers: headers,
            rawHeaders: response.rawHeaders, contentLength: length, connection: connection, into: &head)
        let body = response.sendBody ? response.body.flatMap { $0.readableBytes > 0 ? $0 : nil } : nil
        busy = false
        if keepAlive {
            context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
            if let body { context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil) }
            context.flush()
            serveNext(context: context)
            if !busy {
                if !context.channel.isWritable {
                    arm(.write, context: context)  // the response is still leaving: not idle yet
                } else {
                    arm(current == nil && !partialRequest ? .idle : .header, context: context)
                }
            }
            return
        }
        closed = true
        cancelTimer()
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: body == nil ? written : nil)
        if let body { context.write(wrapOutboundOut(.byteBuffer(body)), promise: written) }
        context.flush()
        let linger = discarding && forceClose
        watchClosingWrite(context: context)
        written.futureResult.assumeIsolated().whenComplete { _ in
            guard linger else { return context.close(promise: nil) }
            self.linger(context: context)
        }
    }

    /// The last response of a closing connection must still leave: a peer that stops taking it is
    /// closed after `idle_timeout_s` without progress, as a keep-alive one is.
    private func watchClosingWrite(context: ChannelHandlerContext) {
        let before = Self.buffered(context)
        deadline.stop()
        closingTask?.cancel()
        closingTask = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [self] in
            closingTask = nil
            guard !lingering, context.channel.isActive else { return }
            let left = Self.buffered(context)
            if left > 0, before - left >= min(Self.minimumProgress, before) {
                watchClosingWrite(context: context)  // slow, but reading
            } else if left > 0 {
                context.close(promise: nil)
            }
        }
    }

    /// Drops what still arrives after a refused upload, for `lingerTime` at most.
    private func linger(context: ChannelHandlerContext) {
        lingering = true
        deadline.stop()
        closingTask?.cancel()
        closingTask = context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) {
            context.close(promise: nil)
        }
        timerKind = .linger
        context.read()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if timerKind == .write { arm(current == nil && !partialRequest ? .idle : .header, context: context) }
            serveNext(context: context)
            resumeReading(context: context)
        } else if !busy {
            arm(.write, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if lingering, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)  // the client finished: nothing left to drop
            return
        }
        if event is InboundBytesNotifier.BytesArrived {
            partialRequest = true
            // The first byte after an idle wait starts the request's clock; later bytes never
            // restart it, so a request trickled a byte at a time still ends at the deadline.
            if !busy, timerKind == .idle { arm(.header, context: context) }
            return
        }
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if !busy && queue.isEmpty && current == nil {
                closed = true
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if lingering { return }  // what a refused client still sends may not parse; it is dropped anyway
        guard !closed else { return }
        if error is HTTPParserError, !busy {
            closed = true
            cancelTimer()
            write(status: .badRequest, code: "bad_request", detail: "malformed HTTP request", context: context)
            return
        }
        closed = true
        cancelTimer()
        context.close(promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        closed = true
        queue.removeAll()
        cancelTimer()
        deadline.stop()
        closingTask?.cancel()
        closingTask = nil
        context.fireChannelInactive()
    }

    // MARK: timeouts

    private func arm(_ kind: TimerKind, context: ChannelHandlerContext) {
        guard !closed, !lingering else { return }
        timerKind = kind
        if kind == .write { bufferedAtArm = Self.buffered(context) }
        if deadline.expired == nil {
            deadline.expired = { [self] in  // once per connection; `channelInactive` lets it go
                guard !closed, !lingering, let kind = timerKind else { return }
                timedOut(kind, context: context)
            }
        }
        deadline.move(after: kind == .header ? headerTimeout : idleTimeout, on: context.eventLoop)
    }

    /// Nothing to wait for (a response is being made).
    private func cancelTimer() {
        timerKind = nil
        deadline.clear()
    }

    private static func buffered(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    /// An idle or stalled connection closes quietly; one in the middle of a request is told `408` first.
    private func timedOut(_ kind: TimerKind, context: ChannelHandlerContext) {
        guard !closed, kind == .write || !busy else { return }
        if kind == .idle, Self.buffered(context) > 0 {
            arm(.write, context: context)  // not idle: the last response is still leaving, slowly
            return
        }
        if kind == .write {
            let left = Self.buffered(context)
            if left == 0 {  // all written meanwhile: the connection is merely idle now
                arm(current == nil && !partialRequest ? .idle : .header, context: context)
                return
            }
            if bufferedAtArm - left >= min(Self.minimumProgress, bufferedAtArm) {
                arm(.write, context: context)  // the peer is reading, slowly: another period
                return
            }
        }
        closed = true
        guard kind == .header, current != nil || partialRequest else {
            context.close(promise: nil)
            return
        }
        write(
            status: .requestTimeout, code: "request_timeout", detail: "the request did not arrive in time",
            context: context)
    }

    /// A JSON error the handler writes itself, closing the connection after it.
    private func write(status: HTTPResponseStatus, code: String, detail: String, context: ChannelHandlerContext) {
        let response = EdgeResponse.jsonError(status, code: code, detail: detail)
        var headers = response.headers
        responder.decorate(&headers)
        let body = response.body ?? ByteBuffer()
        var head = context.channel.allocator.buffer(capacity: 256)
        HTTPResponseHeadWriter.write(
            version: .http1_1, status: status, headers: headers, rawHeaders: nil,
            contentLength: body.readableBytes, connection: "close", into: &head)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        watchClosingWrite(context: context)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(body))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
