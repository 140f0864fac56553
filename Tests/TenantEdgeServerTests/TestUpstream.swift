import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A scriptable tenant upstream on a real loopback socket: each request is answered by `script`,
/// and every request is recorded so tests can count what reached the upstream.
final class TestUpstream: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: HTTPHeaders
        func header(_ name: String) -> String? { headers.first(name: name) }
    }

    struct Reply: Sendable {
        var status: Int = 200
        var headers: [(String, String)] = []
        var body: String = ""
        var delayMs: Int = 0
    }

    typealias Script = @Sendable (Request) -> Reply

    /// Every request received, in arrival order.
    final class RequestLog: Sendable {
        let entries = Mutex<[Request]>([])  // protects the list
    }

    private let channel: any Channel
    private let log: RequestLog
    private let refusing: Refusing
    let port: Int

    /// Set by `refuseConnections()`: every connection is closed as it opens.
    final class Refusing: Sendable {
        let flag = Mutex(false)  // protects the mode
        let open = Mutex<[any Channel]>([])  // connections to close when refusing starts
    }

    init(script: @escaping Script) async throws {
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
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(script: script, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func requests(_ uri: String? = nil) -> [Request] {
        log.entries.withLock { log in uri.map { wanted in log.filter { $0.uri == wanted } } ?? log }
    }

    func count(_ uri: String) -> Int { requests(uri).count }

    func stop() async { try? await channel.close() }

    /// An upstream that is down without giving its port up (a stopped one's port may be taken by
    /// another test's listener, which would then answer in its place).
    func refuseConnections() {
        refusing.flag.withLock { $0 = true }
        for channel in refusing.open.withLock({ $0 }) { channel.close(promise: nil) }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let script: Script
        let log: RequestLog
        var head: HTTPRequestHead?

        init(script: @escaping Script, log: RequestLog) { self.script = script; self.log = log }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers)
                log.entries.withLock { $0.append(request) }
                let reply = script(request)
                let write = {
                    var headers = HTTPHeaders(reply.headers)
                    headers.replaceOrAdd(name: "content-length", value: String(reply.body.utf8.count))
                    context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version,
                        status: HTTPResponseStatus(statusCode: reply.status), headers: headers))), promise: nil)
                    if head.method != .HEAD {
                        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: reply.body)))), promise: nil)
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
    }
}
