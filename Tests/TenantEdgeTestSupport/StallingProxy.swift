import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore

/// A TCP proxy on loopback in front of a real server (Redis, the origin), for faults a server does not
/// make on its own: answers slowed down or frozen partway through a reply and let go later (so bytes
/// arrive after the client gave up on them), a long link with lost segments, or a partition. This
/// machine's kernel has no `netem` qdisc, so a link's delay and loss are played here, per chunk.
package final class StallingProxy: Sendable {
    package enum Mode: Sendable, Equatable {
        /// Every byte passes at once.
        case pass
        /// Every chunk of answer is held `milliseconds` before it passes (in order); requests pass.
        case delay(milliseconds: Int)
        /// `bytes` more bytes of answer pass (across all connections), then nothing until the mode
        /// changes; what was held then passes, late. Requests pass.
        case freezeAfter(bytes: Int)
        /// A long link: both directions delayed `oneWayMs`, and `lossPercent` of the chunks delayed
        /// again by a retransmission timeout (200 ms, TCP's least), as a lost segment is. In order.
        case link(oneWayMs: Int, lossPercent: Double)
        /// Nothing passes either way until the mode changes; then everything held passes.
        case partitioned
        /// `bytes` more bytes of answer pass (across all connections); the connection whose answer
        /// crosses that is cut there (closed both ways), and so is every answer after, until the mode
        /// changes: an origin or a network dying mid-answer.
        case cutAfter(bytes: Int)
    }

    /// What one chunk does.
    fileprivate enum Plan {
        case send(passing: Int, afterMs: Int)
        case hold
        /// Send the first `passing` bytes, then close the connection.
        case cut(passing: Int)
    }

    private struct State {
        var mode: Mode = .pass
        /// Bytes still allowed through while freezing.
        var allowance = 0
        /// Flushes what each held connection direction holds, run when the mode releases it.
        var releases: [@Sendable () -> Void] = []
        var losses = SeededGenerator(seed: 17)
    }

    private let state = Mutex(State())  // protects the mode, allowance, held directions and loss draws
    private let server: any Channel
    package let port: Int
    /// Connections accepted so far: a client that reuses its connection adds one.
    package let connectionsAccepted = Atomic<Int>(0)

    package init(to targetPort: Int) async throws {
        let box = ProxyBox()
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { client in
                client.eventLoop.makeCompletedFuture {
                    try client.pipeline.syncOperations.addHandler(Requests(targetPort: targetPort, box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress?.port ?? 0
        box.proxy = self
    }

    /// Switches the mode; leaving a freeze or a partition sends what was held, in order.
    package func set(_ mode: Mode) {
        let releases = state.withLock { state -> [@Sendable () -> Void] in
            state.mode = mode
            switch mode {
            case .freezeAfter(let bytes), .cutAfter(let bytes):
                state.allowance = bytes
                return []
            case .partitioned:
                return []
            default:
                defer { state.releases = [] }
                return state.releases
            }
        }
        for release in releases { release() }
    }

    package func stop() async { try? await server.close() }

    /// What a chunk of `count` bytes does now; `release` is kept to flush what is held.
    fileprivate func plan(_ count: Int, answer: Bool, held: Bool, release: @escaping @Sendable () -> Void) -> Plan {
        state.withLock { state in
            switch state.mode {
            case .pass: return held ? .hold : .send(passing: count, afterMs: 0)
            case .delay(let milliseconds):
                return held ? .hold : .send(passing: count, afterMs: answer ? milliseconds : 0)
            case .freezeAfter:
                guard answer else { return .send(passing: count, afterMs: 0) }
                let passing = held ? 0 : min(count, state.allowance)
                state.allowance -= passing
                if passing < count { state.releases.append(release) }
                return passing == 0 ? .hold : .send(passing: passing, afterMs: 0)
            case .link(let oneWay, let lossPercent):
                if held { return .hold }
                let lost = Double.random(in: 0..<100, using: &state.losses) < lossPercent
                return .send(passing: count, afterMs: oneWay + (lost ? 200 : 0))
            case .partitioned:
                state.releases.append(release)
                return .hold
            case .cutAfter:
                guard answer else { return held ? .hold : .send(passing: count, afterMs: 0) }
                let passing = min(count, state.allowance)
                state.allowance -= passing
                return passing < count ? .cut(passing: passing) : .send(passing: count, afterMs: 0)
            }
        }
    }

    /// Lets the channel initializer reach the proxy, which exists only once the server is bound.
    private final class ProxyBox: @unchecked Sendable {
        var proxy: StallingProxy?  // set once, before the first connection is accepted
    }

    /// One direction of one connection: chunks leave in arrival order, each when its plan says.
    private final class Direction {
        let out: any Channel
        let answer: Bool
        let proxy: StallingProxy?
        var held: [ByteBuffer] = []
        /// When the last scheduled chunk leaves: a later chunk never overtakes it.
        var lastDue = NIODeadline.uptimeNanoseconds(0)

        init(out: any Channel, answer: Bool, proxy: StallingProxy?) {
            self.out = out
            self.answer = answer
            self.proxy = proxy
        }

        func forward(_ incoming: ByteBuffer, on loop: any EventLoop) {
            var chunk = incoming
            guard let proxy else { return out.writeAndFlush(chunk, promise: nil) }
            let this = NIOLoopBound(self, eventLoop: loop)
            let plan = proxy.plan(chunk.readableBytes, answer: answer, held: !held.isEmpty) {
                loop.execute { this.value.flushHeld(on: loop) }
            }
            switch plan {
            case .hold:
                held.append(chunk)
            case .cut(let passing):
                let front = chunk.readSlice(length: passing) ?? ByteBuffer()
                let out = self.out
                out.writeAndFlush(front).whenComplete { _ in out.close(promise: nil) }
            case .send(let passing, let afterMs):
                if passing < chunk.readableBytes {
                    let front = chunk.readSlice(length: passing) ?? ByteBuffer()
                    held.append(chunk)
                    chunk = front
                }
                send(chunk, afterMs: afterMs, on: loop)
            }
        }

        func send(_ chunk: ByteBuffer, afterMs: Int, on loop: any EventLoop) {
            let due = max(NIODeadline.now() + .milliseconds(Int64(afterMs)), lastDue)
            lastDue = due
            if due <= .now() { return out.writeAndFlush(chunk, promise: nil) }
            let out = self.out
            loop.scheduleTask(deadline: due) { out.writeAndFlush(chunk, promise: nil) }
        }

        func flushHeld(on loop: any EventLoop) {
            let chunks = held
            held = []
            for chunk in chunks { forward(chunk, on: loop) }
        }
    }

    /// Client to server; opens the server connection, whose answers go through `Answers`.
    private final class Requests: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let targetPort: Int
        let box: ProxyBox
        var direction: Direction?
        /// What the client sent before the server connection was open.
        var early: [ByteBuffer] = []

        init(targetPort: Int, box: ProxyBox) {
            self.targetPort = targetPort
            self.box = box
        }

        func channelActive(context: ChannelHandlerContext) {
            let client = context.channel
            let proxy = box.proxy
            proxy?.connectionsAccepted.add(1, ordering: .relaxed)
            let loop = context.eventLoop
            let this = NIOLoopBound(self, eventLoop: loop)
            ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { target in
                    target.eventLoop.makeCompletedFuture {
                        let answers = Direction(out: client, answer: true, proxy: proxy)
                        try target.pipeline.syncOperations.addHandler(Answers(answers))
                    }
                }
                .connect(host: "127.0.0.1", port: targetPort)
                .whenComplete { result in
                    switch result {
                    case .success(let target): this.value.opened(target, proxy: proxy, on: loop)
                    case .failure: client.close(promise: nil)
                    }
                }
        }

        func opened(_ target: any Channel, proxy: StallingProxy?, on loop: any EventLoop) {
            let direction = Direction(out: target, answer: false, proxy: proxy)
            self.direction = direction
            for chunk in early { direction.forward(chunk, on: loop) }
            early = []
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let chunk = unwrapInboundIn(data)
            if let direction { direction.forward(chunk, on: context.eventLoop) } else { early.append(chunk) }
        }

        func channelInactive(context: ChannelHandlerContext) { direction?.out.close(promise: nil) }
    }

    /// Server to client.
    private final class Answers: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let direction: Direction
        init(_ direction: Direction) { self.direction = direction }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            direction.forward(unwrapInboundIn(data), on: context.eventLoop)
        }

        func channelInactive(context: ChannelHandlerContext) { direction.out.close(promise: nil) }
    }
}
