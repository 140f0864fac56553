import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import TenantEdgeCore

/// A bound HTTP/1.1 listener serving one responder on the lean pipeline, drainable through NIO's
/// quiescing helper.
package final class HTTPListener: Sendable {
    package let channel: any Channel
    private let budget: ConnectionBudget
    /// Released on the server channel's loop once drained: the helper fails a promise of that loop
    /// when it goes, and going anywhere else after the loops stopped scheduled work on a dead loop
    /// (SwiftNIO prints it today and will make it a crash).
    private let quiesce: NIOLockedValueBox<ServerQuiescingHelper?>

    /// Raw head bytes allowed beyond `limits.max_header_bytes` (which the connection checks against
    /// the head's counted size): the request line's and each line's punctuation and whitespace.
    static let headSlack = 1024

    /// The port actually bound (useful when the config asks for port 0).
    package var port: Int { channel.localAddress?.port ?? 0 }

    /// `tls`: serve HTTPS with this context (the origin); nil for plain HTTP (the node's listeners).
    package static func bind(
        address: HostPort, group: any EventLoopGroup, responder: any HTTPResponder, limits: EdgeConfig.Limits,
        tls: NIOSSLContext? = nil
    ) async throws -> HTTPListener {
        // The accepting channel and the helper's promise on one loop, so both end on it.
        let acceptor = group.next()
        let quiesce = ServerQuiescingHelper(group: acceptor)
        let budget = ConnectionBudget(limit: limits.maxConnections)
        let channel = try await ServerBootstrap(group: acceptor, childGroup: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard budget.admit(channel) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.inputClosed)  // the bootstrap closes it
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    let connection = HTTPConnectionHandler(responder: responder, limits: limits)
                    try pipeline.addHandler(InboundBytesNotifier(notifying: connection))
                    // No HTTPResponseEncoder: HTTPConnectionHandler writes response heads itself
                    // (HTTPResponseHeadWriter).
                    let decoder = StrictRequestDecoder(maxHeadBytes: limits.maxHeaderBytes + Self.headSlack)
                    try pipeline.addHandler(ByteToMessageHandler(decoder))
                    try pipeline.addHandler(connection)
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
        return HTTPListener(channel: channel, quiesce: quiesce, budget: budget)
    }

    private init(channel: any Channel, quiesce: ServerQuiescingHelper, budget: ConnectionBudget) {
        self.channel = channel
        self.quiesce = NIOLockedValueBox(quiesce)
        self.budget = budget
    }

    /// Connections admitted and not yet closed (`limits.max_connections` bounds them). A connection
    /// counts once its child channel is set up on its event loop, not when the kernel accepted it.
    package var openConnections: Int { budget.count }

    /// Stops accepting, lets open connections finish their in-flight response, and completes when
    /// all have closed.
    package func drain() async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        // No reference to the helper outlives this call but the box's.
        let started = quiesce.withLockedValue { helper -> Bool in
            helper?.initiateShutdown(promise: promise)
            return helper != nil
        }
        guard started else { return promise.succeed() }
        try await promise.futureResult.get()
        // The last reference goes on the helper's own loop (the box holds the only other one).
        try? await channel.eventLoop.submit { [quiesce] in quiesce.withLockedValue { $0 = nil } }.get()
    }
}
