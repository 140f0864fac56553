import NIOCore
import NIOExtras
import NIOHTTP1
import TenantEdgeCore

/// One HTTP/1.1 connection on the lean pipeline (NIO's `HTTPRequestDecoder` + this); the notes measured
/// a lean pipeline at 13 % over NIO's default one. Response heads are written by
/// `HTTPResponseHeadWriter`, so a hit's stored header block goes out as it is. Because the pipeline
/// has no `HTTPServerPipelineHandler`, this handler does that handler's work itself:
/// - pipelined requests are answered strictly in order: requests queue and one is served at a time;
/// - `Connection: close` / HTTP/1.0 without keep-alive close after the response;
/// - at most `limits.max_pipelined_requests` wait; while the queue is full, reads stop (as NIO's
///   pipeline handler does), and a burst that decodes to four times that many closes the connection
///   once the queued ones are answered;
/// - `Expect: 100-continue` is answered before the body is read, only to HTTP/1.1 clients and only
///   when nothing is ahead of it (an interim answer never overtakes an earlier final one);
/// - a decode error is answered `400` and the connection closed;
/// - header and body limits answer `431` and `413`;
/// - a request head (and, on a new connection, the TLS handshake) must arrive within
///   `limits.header_timeout_ms` of its first byte, and a body may not pause longer than that
///   (`408` and a close); an idle keep-alive connection closes after `limits.idle_timeout_s`;
/// - on quiesce (graceful drain) the connection closes once its in-flight response is written.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private struct Pending {
        var request: EdgeRequest
        /// A status the handler answers itself (limits), instead of the responder.
        var rejection: (HTTPResponseStatus, String)?
    }

    private enum TimerKind { case header, idle }

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
    /// A burst decoded more requests than the queue may hold: answer the queued, then close.
    private var overflowed = false
    private var readSuppressed = false
    private var timer: Scheduled<Void>?
    private var timerKind: TimerKind?
    /// Bytes of a request arrived since the last complete one (a head may be half there).
    private var partialRequest = false

    init(responder: any HTTPResponder, limits: EdgeConfig.Limits) {
        self.responder = responder
        self.maxHeaderBytes = limits.maxHeaderBytes
        self.maxBodyBytes = limits.maxRequestBodyBytes
        self.maxQueued = limits.maxPipelinedRequests
        self.headerTimeout = .milliseconds(Int64(limits.headerTimeoutMs))
        self.idleTimeout = .seconds(Int64(limits.idleTimeoutSeconds))
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(.header, context: context)  // the TLS handshake and the first head share the header timeout
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(.header, context: context) }
    }

    func read(context: ChannelHandlerContext) {
        if queue.count >= maxQueued {
            readSuppressed = true
            return
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if overflowed || closed { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if !busy { arm(.header, context: context) }  // the body has the same allowance between reads
            var size = head.uri.utf8.count + 16
            for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
            var pending = Pending(request: EdgeRequest(head: head, body: nil, peer: context.channel.remoteAddress), rejection: nil)
            if size > maxHeaderBytes {
                pending.rejection = (.requestHeaderFieldsTooLarge, "request_header_fields_too_large")
            } else if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
                pending.rejection = (.payloadTooLarge, "payload_too_large")
            } else if head.headers.first(name: "expect")?.lowercased() == "100-continue", head.version.minor >= 1,
                      !busy, queue.isEmpty {
                var interim = context.channel.allocator.buffer(capacity: 32)
                HTTPResponseHeadWriter.writeContinue(version: head.version, into: &interim)
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(interim)), promise: nil)
            }
            current = pending
        case .body(var chunk):
            guard var pending = current, pending.rejection == nil else { return }
            if (pending.request.body?.readableBytes ?? 0) + chunk.readableBytes > maxBodyBytes {
                pending.rejection = (.payloadTooLarge, "payload_too_large")
                pending.request.body = nil
            } else if pending.request.body == nil {
                pending.request.body = chunk
            } else {
                pending.request.body!.writeBuffer(&chunk)
            }
            current = pending
        case .end:
            guard let pending = current else { return }
            current = nil
            partialRequest = false
            if queue.count >= 4 * maxQueued {
                overflowed = true  // reads were stopped; what one read decoded beyond this is dropped
                return
            }
            queue.append(pending)
            serveNext(context: context)
        }
    }

    private func serveNext(context: ChannelHandlerContext) {
        guard !busy, !closed, !queue.isEmpty else { return }
        let pending = queue.removeFirst()
        busy = true
        cancelTimer()
        if readSuppressed, queue.count < maxQueued {
            readSuppressed = false
            context.read()
        }
        if let (status, code) = pending.rejection {
            write(EdgeResponse.jsonError(status, code: code), for: pending.request, forceClose: true, context: context)
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
                    self.write(EdgeResponse.jsonError(.internalServerError, code: "internal_error"),
                               for: pending.request, forceClose: false, context: context)
                }
            }
        }
    }

    private func write(_ response: EdgeResponse, for request: EdgeRequest, forceClose: Bool, context: ChannelHandlerContext) {
        guard !closed else { return }
        let keepAlive = request.head.isKeepAlive && !forceClose && !(quiescing && queue.isEmpty) && !(overflowed && queue.isEmpty)
        var headers = response.headers
        responder.decorate(&headers)
        let length = response.sendBody ? (response.body?.readableBytes ?? 0) : response.announcedLength
        let connection: String? = !keepAlive ? "close" : (request.head.version.minor == 0 ? "keep-alive" : nil)
        var head = context.channel.allocator.buffer(capacity: 256 + (response.rawHeaders?.readableBytes ?? 0))
        HTTPResponseHeadWriter.write(version: request.head.version, status: response.status, headers: headers,
                                     rawHeaders: response.rawHeaders, contentLength: length, connection: connection, into: &head)
        let body = response.sendBody ? response.body.flatMap { $0.readableBytes > 0 ? $0 : nil } : nil
        busy = false
        if keepAlive {
            context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
            if let body { context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil) }
            context.flush()
            serveNext(context: context)
            if !busy { arm(current == nil ? .idle : .header, context: context) }
            return
        }
        closed = true
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: body == nil ? written : nil)
        if let body { context.write(wrapOutboundOut(.byteBuffer(body)), promise: written) }
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is InboundBytesNotifier.BytesArrived {
            partialRequest = true
            // Bytes after an idle wait start a new head's clock; bytes of a body restart its clock.
            if !busy, timerKind == .idle || current != nil { arm(.header, context: context) }
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

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !closed else { return }
        if error is HTTPParserError, !busy {
            closed = true
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            responder.decorate(&headers)
            let body = ByteBuffer(string: "{\"error\":\"bad_request\",\"detail\":\"malformed HTTP request\"}")
            var head = context.channel.allocator.buffer(capacity: 256)
            HTTPResponseHeadWriter.write(version: .http1_1, status: .badRequest, headers: headers, rawHeaders: nil,
                                         contentLength: body.readableBytes, connection: "close", into: &head)
            context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(body))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        closed = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        queue.removeAll()
        cancelTimer()
        context.fireChannelInactive()
    }

    // MARK: timeouts

    private func arm(_ kind: TimerKind, context: ChannelHandlerContext) {
        guard !closed else { return }
        timer?.cancel()
        timerKind = kind
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: kind == .header ? headerTimeout : idleTimeout) { [self] in
            timedOut(kind, context: context)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerKind = nil
    }

    /// An idle connection closes quietly; one in the middle of a request is told `408` first.
    private func timedOut(_ kind: TimerKind, context: ChannelHandlerContext) {
        guard !closed, !busy else { return }
        closed = true
        timer = nil
        guard kind == .header, current != nil || partialRequest else {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        responder.decorate(&headers)
        let body = ByteBuffer(string: "{\"error\":\"request_timeout\",\"detail\":\"the request did not arrive in time\"}")
        var head = context.channel.allocator.buffer(capacity: 256)
        HTTPResponseHeadWriter.write(version: .http1_1, status: .requestTimeout, headers: headers, rawHeaders: nil,
                                     contentLength: body.readableBytes, connection: "close", into: &head)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(body))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
