import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import TenantEdgeCore

#if canImport(Glibc)
    import Glibc
#endif

/// A bound HTTP/1.1 listener serving one responder on the lean pipeline, drainable through NIO's
/// quiescing helper. One accepting socket on one event loop by default; with `reusePort`, one
/// socket per event loop bound to the same address with `SO_REUSEPORT` (nginx's `reuseport`), so
/// the kernel spreads new connections over the loops and each loop accepts its own.
package final class HTTPListener: Sendable {
    /// The accepting channels: one, or one per event loop.
    package let channels: [any Channel]
    private let budget: ConnectionBudget
    /// Connections each accepting channel took (admitted or not), in the order of `channels`.
    private let accepted: [AcceptedConnections]
    /// One per accepting channel, each released on its channel's loop once drained: a helper fails a
    /// promise of that loop when it goes, and going anywhere else after the loops stopped scheduled
    /// work on a dead loop (SwiftNIO prints it today and will make it a crash).
    private let quiesce: [NIOLockedValueBox<ServerQuiescingHelper?>]

    /// Raw head bytes allowed beyond `limits.max_header_bytes` (which the connection checks against
    /// the head's counted size): the request line's and each line's punctuation and whitespace.
    static let headSlack = 1024

    /// `SO_REUSEPORT`, which NIO names no option for.
    private static let reusePortOption = NIOBSDSocket.Option(rawValue: SO_REUSEPORT)

    /// The port actually bound (useful when the config asks for port 0).
    package var port: Int { channels.first?.localAddress?.port ?? 0 }

    /// `tls`: serve HTTPS with this context (the origin); nil for plain HTTP (the node's listeners).
    /// `reusePort`: one accepting socket per event loop of `group` (`listen.reuse_port`).
    package static func bind(
        address: HostPort, group: any EventLoopGroup, responder: any HTTPResponder, limits: EdgeConfig.Limits,
        tls: NIOSSLContext? = nil, reusePort: Bool = false
    ) async throws -> HTTPListener {
        let budget = ConnectionBudget(limit: limits.maxConnections)
        guard reusePort else {
            let (channel, helper, accepted) = try await accept(
                on: group.next(), childGroup: group, address: address, reusePort: false, budget: budget,
                responder: responder, limits: limits, tls: tls)
            return HTTPListener(channels: [channel], quiesce: [helper], accepted: [accepted], budget: budget)
        }
        var channels: [any Channel] = []
        var helpers: [ServerQuiescingHelper] = []
        var counts: [AcceptedConnections] = []
        var bound = address  // port 0: the first socket picks the port, the others join it
        do {
            for loop in group.makeIterator() {
                let (channel, helper, accepted) = try await accept(
                    on: loop, childGroup: loop, address: bound, reusePort: true, budget: budget,
                    responder: responder, limits: limits, tls: tls)
                channels.append(channel)
                helpers.append(helper)
                counts.append(accepted)
                if let port = channel.localAddress?.port { bound.port = port }
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return HTTPListener(channels: channels, quiesce: helpers, accepted: counts, budget: budget)
    }

    /// One accepting channel on `loop` whose connections live on `childGroup` (the whole group for a
    /// single acceptor, the same loop for one of several), with its quiescing helper on `loop`, so
    /// both end on it.
    private static func accept(
        on loop: any EventLoop, childGroup: any EventLoopGroup, address: HostPort, reusePort: Bool,
        budget: ConnectionBudget, responder: any HTTPResponder, limits: EdgeConfig.Limits, tls: NIOSSLContext?
    ) async throws -> (any Channel, ServerQuiescingHelper, AcceptedConnections) {
        let quiesce = ServerQuiescingHelper(group: loop)
        let accepted = AcceptedConnections()
        let channel = try await ServerBootstrap(group: loop, childGroup: childGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(Self.reusePortOption), value: reusePort ? 1 : 0)
            // Linux gives an accepted socket the listener's TCP_NODELAY (`HTTPListenerTests` checks it).
            .serverChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            // No `childChannelOption`s: the bootstrap applies those through a chain of futures, about
            // 11,000 instructions an option for each connection (`make bench-instructions` with
            // `CLOSE=1`), and even set directly each cost 3,500 (NIO's generic option path). Nagle is
            // off through the listener's option; reads per wakeup stay at NIO's default of 4, which
            // no request head needs more than one of.
            .childChannelInitializer { channel in
                accepted.count.add(1, ordering: .relaxed)
                guard budget.admit(channel) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.inputClosed)  // the bootstrap closes it
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    // One handler: it decodes requests itself (no ByteToMessageHandler) and writes
                    // response heads itself (no HTTPResponseEncoder, HTTPResponseHeadWriter).
                    try pipeline.addHandler(HTTPConnectionHandler(responder: responder, limits: limits))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
        return (channel, quiesce, accepted)
    }

    private init(
        channels: [any Channel], quiesce: [ServerQuiescingHelper], accepted: [AcceptedConnections],
        budget: ConnectionBudget
    ) {
        self.channels = channels
        self.quiesce = quiesce.map { NIOLockedValueBox($0) }
        self.accepted = accepted
        self.budget = budget
    }

    /// Connections each accepting socket took so far: how the kernel spread them with `reusePort`.
    package var acceptedPerSocket: [Int] { accepted.map { $0.count.load(ordering: .relaxed) } }

    /// Connections admitted and not yet closed (`limits.max_connections` bounds them, over all the
    /// accepting sockets). A connection counts once its child channel is set up on its event loop,
    /// not when the kernel accepted it.
    package var openConnections: Int { budget.count }

    /// Stops accepting on every socket at once, lets open connections finish their in-flight
    /// response, and completes when all have closed.
    package func drain() async throws {
        var waiting: [(any Channel, NIOLockedValueBox<ServerQuiescingHelper?>, EventLoopFuture<Void>)] = []
        for (channel, box) in zip(channels, quiesce) {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            // No reference to the helper outlives this call but the box's.
            let started = box.withLockedValue { helper -> Bool in
                helper?.initiateShutdown(promise: promise)
                return helper != nil
            }
            if started { waiting.append((channel, box, promise.futureResult)) } else { promise.succeed() }
        }
        for (channel, box, drained) in waiting {
            try await drained.get()
            // The last reference goes on the helper's own loop (the box holds the only other one).
            try? await channel.eventLoop.submit { [box] in box.withLockedValue { $0 = nil } }.get()
        }
    }

    /// Closes every accepting socket (open connections stay; `drain` is the graceful way).
    package func close() async {
        for channel in channels { try? await channel.close() }
    }
}

/// Connections one accepting socket took: a class, since an `Atomic` cannot be copied into the
/// listener's array of them.
private final class AcceptedConnections: Sendable {
    let count = Atomic<Int>(0)
}
