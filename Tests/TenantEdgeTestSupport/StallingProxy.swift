import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on loopback in front of a real server (Redis), for faults a server does not make on
/// its own: answers slowed down, or frozen partway through a reply and let go later, so the bytes
/// arrive after the client gave up on them. Requests pass unchanged; only answers are held back.
package final class StallingProxy: Sendable {
    package enum Mode: Sendable, Equatable {
        /// Every byte passes at once.
        case pass
        /// Every chunk of answer is held `milliseconds` before it passes (in order).
        case delay(milliseconds: Int)
        /// `bytes` more bytes of answer pass (across all connections), then nothing until the mode
        /// changes; what was held then passes, late.
        case freezeAfter(bytes: Int)
    }

    private struct State {
        var mode: Mode = .pass
        /// Bytes still allowed through while freezing.
        var allowance = 0
        /// Flushes what each frozen connection holds, run when the freeze ends.
        var releases: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())  // protects the mode, allowance and held connections
    private let server: any Channel
    package let port: Int

    package init(to targetPort: Int) async throws {
        let box = StateBox()
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { client in
                client.eventLoop.makeCompletedFuture {
                    try client.pipeline.syncOperations.addHandler(Requests(targetPort: targetPort, box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress?.port ?? 0
        box.proxy = self
    }

    /// Switches the mode; leaving a freeze sends what was held, in order.
    package func set(_ mode: Mode) {
        let releases = state.withLock { state -> [@Sendable () -> Void] in
            state.mode = mode
            if case .freezeAfter(let bytes) = mode { state.allowance = bytes }
            if case .freezeAfter = mode { return [] }
            defer { state.releases = [] }
            return state.releases
        }
        for release in releases { release() }
    }

    package func stop() async { try? await server.close() }

    /// How much of a chunk passes now, and after what delay; the rest is held.
    fileprivate func admit(_ count: Int, held: Bool, release: @escaping @Sendable () -> Void) -> (
        passing: Int, delayMs: Int
    ) {
        state.withLock { state in
            switch state.mode {
            case .pass: return (held ? 0 : count, 0)
            case .delay(let milliseconds): return (held ? 0 : count, milliseconds)
            case .freezeAfter:
                let passing = held ? 0 : min(count, state.allowance)
                state.allowance -= passing
                if passing < count { state.releases.append(release) }
                return (passing, 0)
            }
        }
    }

    /// Lets the channel initializer reach the proxy, which exists only once the server is bound.
    private final class StateBox: @unchecked Sendable {
        var proxy: StallingProxy?  // set once, before the first connection is accepted
    }

    /// Client to server: passes as it comes, once the connection to the server is open.
    private final class Requests: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let targetPort: Int
        let box: StateBox
        var target: (any Channel)?
        /// What the client sent before the server connection was open.
        var early: [ByteBuffer] = []

        init(targetPort: Int, box: StateBox) {
            self.targetPort = targetPort
            self.box = box
        }

        func channelActive(context: ChannelHandlerContext) {
            let client = context.channel
            let proxy = box.proxy
            let this = NIOLoopBound(self, eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { target in
                    target.eventLoop.makeCompletedFuture {
                        try target.pipeline.syncOperations.addHandler(Answers(to: client, proxy: proxy))
                    }
                }
                .connect(host: "127.0.0.1", port: targetPort)
                .whenComplete { result in
                    switch result {
                    case .success(let target): this.value.opened(target)
                    case .failure: client.close(promise: nil)
                    }
                }
        }

        func opened(_ target: any Channel) {
            self.target = target
            for chunk in early { target.write(chunk, promise: nil) }
            early = []
            target.flush()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let chunk = unwrapInboundIn(data)
            if let target { target.writeAndFlush(chunk, promise: nil) } else { early.append(chunk) }
        }

        func channelInactive(context: ChannelHandlerContext) { target?.close(promise: nil) }
    }

    /// Server to client: through the proxy's mode.
    private final class Answers: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let client: any Channel
        let proxy: StallingProxy?
        /// Held back during a freeze, in arrival order.
        var held: [ByteBuffer] = []

        init(to client: any Channel, proxy: StallingProxy?) {
            self.client = client
            self.proxy = proxy
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            guard let proxy else { return client.writeAndFlush(chunk, promise: nil) }
            let loop = context.eventLoop
            let this = NIOLoopBound(self, eventLoop: loop)
            let (passing, delay) = proxy.admit(chunk.readableBytes, held: !held.isEmpty) {
                loop.execute { this.value.flushHeld() }
            }
            if passing < chunk.readableBytes {
                let front = chunk.readSlice(length: passing)
                held.append(chunk)
                chunk = front ?? ByteBuffer()
            }
            guard chunk.readableBytes > 0 else { return }
            if delay > 0 {
                let client = self.client
                loop.scheduleTask(in: .milliseconds(Int64(delay))) { client.writeAndFlush(chunk, promise: nil) }
            } else {
                client.writeAndFlush(chunk, promise: nil)
            }
        }

        func flushHeld() {
            for chunk in held { client.write(chunk, promise: nil) }
            held = []
            client.flush()
        }

        func channelInactive(context: ChannelHandlerContext) { client.close(promise: nil) }
    }
}
