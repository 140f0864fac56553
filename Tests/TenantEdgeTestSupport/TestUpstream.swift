import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A scriptable tenant upstream on a real loopback socket: each request is answered by `script`,
/// and every request is recorded so tests can count what reached the upstream.
package final class TestUpstream: Sendable {
    package struct Request: Sendable {
        package var method: String
        package var uri: String
        package var headers: HTTPHeaders
        package var body: [UInt8] = []
        package func header(_ name: String) -> String? { headers.first(name: name) }
    }

    package struct Reply: Sendable {
        package var status: Int = 200
        package var headers: [(String, String)] = []
        package var body: String = ""
        package var delayMs: Int = 0
        /// How the answer breaks on the wire, if it does (`Content-Length` still announces `body`).
        package var fault: WireFault? = nil

        package init(
            status: Int = 200, headers: [(String, String)] = [], body: String = "", delayMs: Int = 0,
            fault: WireFault? = nil
        ) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delayMs = delayMs
            self.fault = fault
        }
    }

    /// An upstream misbehaving below HTTP: what a crashed, overloaded or hostile upstream sends.
    package enum WireFault: Sendable {
        /// The head and the first `bodyBytes` bytes of the body, then the connection is closed.
        case truncated(bodyBytes: Int)
        /// The head and the first `bodyBytes` bytes, then a TCP reset (`SO_LINGER` 0).
        case reset(bodyBytes: Int)
        /// The whole body, then `extra` more bytes than `Content-Length` announced, in the same write.
        case overlong(extra: String)
        /// The body one byte at a time, `intervalMs` apart.
        case dribble(intervalMs: Int)
        /// The head, then nothing: the connection stays open and silent.
        case hangAfterHead
    }

    package typealias Script = @Sendable (Request) -> Reply

    /// Every request received, in arrival order.
    package final class RequestLog: Sendable {
        package let entries = Mutex<[Request]>([])  // protects the list
    }

    private let channel: any Channel
    private let log: RequestLog
    private let refusing: Refusing
    let port: Int

    /// Set by `refuseConnections()`: every connection is closed as it opens.
    package final class Refusing: Sendable {
        package let flag = Mutex(false)  // protects the mode
        package let open = Mutex<[any Channel]>([])  // connections to close when refusing starts
    }

    package init(script: @escaping Script) async throws {
        let log = RequestLog()
        self.log = log
        let refusing = Refusing()
        self.refusing = refusing
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                if refusing.flag.withLock({ $0 }) { return channel.close() }
                refusing.open.withLock { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    // configureHTTPServerPipeline's handlers, with the encoder named: a broken answer
                    // (`WireFault`) is written from its context, below it, as raw bytes.
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPResponseEncoder(), name: Handler.encoderName)
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(HTTPServerPipelineHandler())
                    try channel.pipeline.syncOperations.addHandler(Handler(script: script, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    package var url: String { "http://127.0.0.1:\(port)" }

    package func requests(_ uri: String? = nil) -> [Request] {
        log.entries.withLock { log in uri.map { wanted in log.filter { $0.uri == wanted } } ?? log }
    }

    package func count(_ uri: String) -> Int { requests(uri).count }

    package func stop() async { try? await channel.close() }

    /// An upstream that is down without giving its port up (a stopped one's port may be taken by
    /// another test's listener, which would then answer in its place).
    package func refuseConnections() {
        refusing.flag.withLock { $0 = true }
        for channel in refusing.open.withLock({ $0 }) { channel.close(promise: nil) }
    }

    private final class Handler: ChannelInboundHandler {
        static let encoderName = "test-upstream-response-encoder"
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let script: Script
        let log: RequestLog
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(script: @escaping Script, log: RequestLog) {
            self.script = script
            self.log = log
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(let part): body += part.readableBytesView
            case .end:
                guard let head else { return }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers, body: body)
                log.entries.withLock { $0.append(request) }
                let reply = script(request)
                if let fault = reply.fault {
                    Self.misbehave(fault, reply: reply, version: head.version, context: context)
                    return
                }
                let write = {
                    var headers = HTTPHeaders(reply.headers)
                    headers.replaceOrAdd(name: "content-length", value: String(reply.body.utf8.count))
                    context.write(
                        self.wrapOutboundOut(
                            .head(
                                HTTPResponseHead(
                                    version: head.version,
                                    status: HTTPResponseStatus(statusCode: reply.status), headers: headers))),
                        promise: nil)
                    if head.method != .HEAD {
                        context.write(
                            self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: reply.body)))), promise: nil)
                    }
                    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                }
                if reply.delayMs > 0 {
                    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(reply.delayMs))) { write() }
                } else {
                    write()
                }
            }
        }

        /// Writes `reply` broken as `fault` says, bypassing the encoder's framing where it must.
        private static func misbehave(
            _ fault: WireFault, reply: Reply, version: HTTPVersion, context: ChannelHandlerContext
        ) {
            let body = Array(reply.body.utf8)
            var head = "HTTP/1.1 \(reply.status) X\r\ncontent-length: \(body.count)\r\n"
            for (name, value) in reply.headers { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            // Raw bytes, written below the HTTP encoder, which would frame what a broken upstream sends.
            let channel = context.channel
            guard let raw = try? context.pipeline.syncOperations.context(name: encoderName) else { return }
            func send(_ bytes: [UInt8]) -> EventLoopFuture<Void> {
                raw.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)))
            }
            switch fault {
            case .truncated(let count):
                send(Array(head.utf8) + body.prefix(count)).whenComplete { _ in channel.close(promise: nil) }
            case .reset(let count):
                send(Array(head.utf8) + body.prefix(count)).whenComplete { _ in
                    let reset = (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                    (reset ?? channel.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in
                        channel.close(promise: nil)
                    }
                }
            case .overlong(let extra):
                _ = send(Array(head.utf8) + body + Array(extra.utf8))
            case .dribble(let interval):
                _ = send(Array(head.utf8))
                for (index, byte) in body.enumerated() {
                    channel.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(interval * (index + 1)))) {
                        guard channel.isActive else { return }
                        _ = send([byte])
                    }
                }
            case .hangAfterHead:
                _ = send(Array(head.utf8))
            }
        }
    }
}
