import NIOCore
import NIOPosix
import TenantEdgeCore
import TenantEdgeNative

/// One Redis connection living on an event loop: the loop that reads a request also writes its
/// Redis command and reads the reply, so an L2 call crosses no thread. Commands written in one turn
/// of the loop leave in one flush (misses in flight pipeline), and replies complete them in order.
///
/// `@unchecked Sendable` so futures can carry it; everything but `isUsable`'s channel check must be
/// called on `eventLoop`, and is (`SharedTierConnections` only hands it out there).
final class RedisLoopConnection: @unchecked Sendable {
    let eventLoop: any EventLoop
    /// The primary's epoch (`RedisPrimaryAddress`) this connection was made at.
    let epoch: Int
    private let channel: any Channel
    private let handler: RedisCommandHandler
    private var flushScheduled = false

    private init(channel: any Channel, handler: RedisCommandHandler, epoch: Int) {
        self.eventLoop = channel.eventLoop
        self.epoch = epoch
        self.channel = channel
        self.handler = handler
    }

    /// Whether calls may use it: connected, and never failed.
    var isUsable: Bool { channel.isActive }

    /// Queues a command; `completion` runs on the event loop with the reply or an error.
    func submit(_ arguments: [[UInt8]], completion: @escaping RedisCommand.Completion) {
        eventLoop.assertInEventLoop()
        channel.pipeline.syncOperations.write(
            NIOAny(RedisCommand(arguments: arguments, completion: completion)), promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        // After the I/O of this turn: every command the loop's requests wrote by then goes out in one write.
        eventLoop.execute { [self] in
            flushScheduled = false
            channel.flush()
        }
    }

    /// Closes the connection when commands wait and Redis has sent nothing for `timeout`, so the
    /// next call reconnects instead of queueing behind a Redis that stopped mid-stream.
    func closeIfStalled(after timeout: TimeAmount) {
        eventLoop.assertInEventLoop()
        if handler.isStalled(after: timeout) { close() }
    }

    func close() { channel.close(promise: nil) }

    /// Completes when the connection has closed, for whatever reason.
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// `SUBSCRIBE channel`: `onMessage` gets each message's payload on the event loop; the returned
    /// future succeeds once Redis confirmed. Use the connection for nothing else afterwards.
    func subscribe(_ name: String, onMessage: @escaping ([UInt8]) -> Void) -> EventLoopFuture<Void> {
        eventLoop.assertInEventLoop()
        handler.onPush = { reply in
            guard case .array(let items) = reply, items.count == 3, case .string(let kind) = items[0],
                kind.elementsEqual("message".utf8), case .string(let payload) = items[2]
            else { return }
            onMessage(payload)
        }
        let promise = eventLoop.makePromise(of: Void.self)
        submit([Array("SUBSCRIBE".utf8), Array(name.utf8)]) { reply in
            if case .success(.array(let items)) = reply, case .string(let kind)? = items.first,
                kind.elementsEqual("subscribe".utf8)
            {
                promise.succeed()
            } else {
                promise.fail(EdgeError(.redisFailure, "SUBSCRIBE \(name) was not confirmed"))
            }
        }
        return promise.futureResult
    }

    /// Connects on `eventLoop`, authenticates (`AUTH [user] password`), selects the endpoint's
    /// database and waits for a `PING`, all within `timeoutMs`. Errors name the endpoint with its
    /// password masked, never a reply that could echo it.
    /// - Parameters:
    ///   - checkRole: also ask `ROLE` and refuse a Redis that is not a primary (Sentinel mode: an old
    ///     primary that came back as a replica must never take the tier's writes).
    ///   - epoch: the primary's epoch the endpoint was read at.
    static func open(
        _ endpoint: RedisEndpoint, timeoutMs: Int, maxReplyBytes: Int, checkRole: Bool = false, epoch: Int = 0,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RedisLoopConnection> {
        guard eventLoop.inEventLoop else {
            return eventLoop.flatSubmit {
                open(
                    endpoint, timeoutMs: timeoutMs, maxReplyBytes: maxReplyBytes, checkRole: checkRole, epoch: epoch,
                    on: eventLoop)
            }
        }
        guard let bootstrap = ClientBootstrap(validatingGroup: eventLoop) else {
            return eventLoop.makeFailedFuture(EdgeError(.redisFailure, "the Redis tier needs a NIO event loop"))
        }
        let reader: RedisReplyReader
        do { reader = try RedisReplyReader(maxBufferedBytes: maxReplyBytes) } catch {
            return eventLoop.makeFailedFuture(error)
        }
        // Commands waiting for replies hold their encoded bytes until answered: room for two of
        // the largest value (a write) and never less than 32 MiB.
        let handler = NIOLoopBound(
            RedisCommandHandler(
                reader: reader, maxInFlight: maxInFlight, maxReplyBytes: maxReplyBytes,
                maxWaitingBytes: max(32 << 20, 2 * maxReplyBytes)),
            eventLoop: eventLoop)
        let connected = bootstrap.connectTimeout(.milliseconds(Int64(timeoutMs)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapErrorThrowing { _ in throw EdgeError(.redisFailure, "cannot connect to Redis at \(endpoint)") }
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeoutMs))
        return connected.flatMap { channel in
            let connection = RedisLoopConnection(channel: channel, handler: handler.value, epoch: epoch)
            let answered = connection.handshake(endpoint, checkRole: checkRole)
            let timer = eventLoop.scheduleTask(deadline: deadline) {
                connection.close()  // fails the handshake's commands, so `answered` fails
            }
            return answered.always { _ in timer.cancel() }.flatMapError { error in
                connection.close()
                return eventLoop.makeFailedFuture(error)
            }
        }
    }

    /// The most commands one connection holds unanswered; beyond it calls fail at once.
    static let maxInFlight = 16_384

    private func handshake(_ endpoint: RedisEndpoint, checkRole: Bool) -> EventLoopFuture<RedisLoopConnection> {
        var commands: [[String]] = []
        if let password = endpoint.password {
            commands.append(["AUTH"] + (endpoint.user.map { [$0] } ?? []) + [password])
        }
        if endpoint.database != 0 { commands.append(["SELECT", String(endpoint.database)]) }
        commands.append(checkRole ? ["ROLE"] : ["PING"])
        let promise = eventLoop.makePromise(of: RedisLoopConnection.self)
        var left = commands.count
        for command in commands {
            submit(command.map { Array($0.utf8) }) { [self] reply in
                switch reply {
                case .failure:
                    promise.fail(EdgeError(.redisFailure, "Redis at \(endpoint) did not answer"))
                case .success(.error) where command[0] == "AUTH":
                    promise.fail(EdgeError(.redisFailure, "Redis at \(endpoint) refused the credentials"))
                case .success(.error(let message)):
                    promise.fail(EdgeError(.redisFailure, "Redis at \(endpoint): \(command[0]) failed: \(message)"))
                case .success(let answer) where command[0] == "ROLE" && !Self.isPrimary(answer):
                    promise.fail(EdgeError(.redisFailure, "Redis at \(endpoint) is not a primary (ROLE)"))
                case .success:
                    left -= 1
                    if left == 0 { promise.succeed(self) }
                }
            }
        }
        return promise.futureResult
    }

    private static func isPrimary(_ role: RedisConnection.Reply) -> Bool {
        guard case .array(let items) = role, case .string(let first)? = items.first else { return false }
        return SentinelAnswer.isPrimaryRole(first)
    }
}
