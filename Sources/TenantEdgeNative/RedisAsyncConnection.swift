internal import CHiredis
import Foundation
import Synchronization
import TenantEdgeCore

/// One hiredis *async* connection driven by a thread of its own with `poll(2)`: what the Redis
/// tier uses, chosen over a pool of blocking connections by measurement (`edge-bench
/// redis-engines`: about 3x the calls per second on 2 cores, since queued commands go out as one
/// pipelined write and no thread hand-off happens per call). Callers on any
/// thread submit commands; the loop thread writes them (hiredis pipelines whatever is queued) and
/// completes each callback on the loop thread, in order. A pipe wakes the loop on submit.
///
/// hiredis frees an async context itself when the connection drops or the connect fails, so after
/// its `cleanup` hook the context is never touched again and every later submit fails at once.
public final class RedisAsyncConnection: Sendable {
    public typealias Completion = @Sendable (Result<RedisConnection.Reply, EdgeError>) -> Void
    private let loop: AsyncLoop

    public init(host: String, port: Int) throws(EdgeError) {
        loop = try AsyncLoop(host: host, port: port)
        let thread = Thread { [loop] in loop.run() }
        thread.name = "redis-async"
        thread.start()
    }

    /// Connects, authenticates (`AUTH [user] password`), selects the endpoint's database and waits
    /// for a `PING`, all within `timeoutMs`. Blocks: call it off the event loops. Errors name the
    /// endpoint with its password masked.
    public static func open(_ endpoint: RedisEndpoint, timeoutMs: Int) throws(EdgeError) -> RedisAsyncConnection {
        let connection = try RedisAsyncConnection(host: endpoint.host, port: endpoint.port)
        var commands: [[String]] = []
        if let password = endpoint.password {
            commands.append(["AUTH"] + (endpoint.user.map { [$0] } ?? []) + [password])
        }
        if endpoint.database != 0 { commands.append(["SELECT", String(endpoint.database)]) }
        commands.append(["PING"])
        let replies = ReplyCollector(expected: commands.count)
        for command in commands { connection.submit(command.map { Array($0.utf8) }) { replies.add($0) } }
        guard replies.done.wait(timeout: .now() + .milliseconds(timeoutMs)) == .success else {
            throw EdgeError(.redisFailure, "Redis at \(endpoint) did not answer within \(timeoutMs) ms")
        }
        for (command, reply) in zip(commands, replies.all) {
            switch reply {
            case .failure: throw EdgeError(.redisFailure, "cannot connect to Redis at \(endpoint)")
            case .success(.error(let message)) where command[0] == "AUTH":
                _ = message  // may echo the user name; the password is never in it
                throw EdgeError(.redisFailure, "Redis at \(endpoint) refused the credentials")
            case .success(.error(let message)):
                throw EdgeError(.redisFailure, "Redis at \(endpoint): \(command[0]) failed: \(message)")
            case .success: continue
            }
        }
        return connection
    }

    /// Replies gathered in order by the loop thread; `done` is signalled when all have come.
    private final class ReplyCollector: Sendable {
        let done = DispatchSemaphore(value: 0)
        private let replies = Mutex<[Result<RedisConnection.Reply, EdgeError>]>([])
        private let expected: Int
        init(expected: Int) { self.expected = expected }
        func add(_ reply: Result<RedisConnection.Reply, EdgeError>) {
            if replies.withLock({
                $0.append(reply)
                return $0.count
            }) == expected {
                done.signal()
            }
        }
        var all: [Result<RedisConnection.Reply, EdgeError>] { replies.withLock { $0 } }
    }

    /// Stops the loop; the context is freed when the loop thread lets go of it. If the loop has
    /// already ended, pending callbacks run on the releasing thread: release outside your locks.
    deinit { loop.stop() }

    /// Queues a command; `completion` runs on the loop thread with the reply or an error.
    public func submit(_ arguments: [[UInt8]], completion: @escaping Completion) {
        loop.submit(arguments, completion: completion, repeating: false)
    }

    /// `SUBSCRIBE` to `channels`: `onReply` runs on the loop thread for each confirmation and each
    /// message (an array `["message", channel, payload]`), and once with a failure when the
    /// connection is lost. A connection that subscribed should be used for nothing else.
    public func subscribe(_ channels: [String], onReply: @escaping Completion) {
        loop.submit([Array("SUBSCRIBE".utf8)] + channels.map { Array($0.utf8) }, completion: onReply, repeating: true)
    }

    /// `SUBSCRIBE` to `channels` and block until Redis has confirmed every one (or `timeoutMs`
    /// passed, or the connection failed: both throw). Then `onMessage` runs on the loop thread for
    /// each message as `(channel, payload)`, and `onLost` once if the connection drops. Blocks: call
    /// it off the event loops.
    public func subscribeConfirmed(
        _ channels: [String], timeoutMs: Int, onMessage: @escaping @Sendable (String, [UInt8]) -> Void,
        onLost: @escaping @Sendable () -> Void
    ) throws(EdgeError) {
        let confirmations = Confirmations(expected: channels.count)
        subscribe(channels) { reply in
            switch reply {
            case .failure:
                if confirmations.fail() { onLost() }
            case .success(.array(let items)) where items.count == 3:
                if case .string(let kind) = items[0], kind == Array("subscribe".utf8) { return confirmations.add() }
                guard case .string(let channel) = items[1], case .string(let payload) = items[2] else { return }
                onMessage(String(decoding: channel, as: UTF8.self), payload)
            default:
                break
            }
        }
        guard confirmations.wait(milliseconds: timeoutMs) else {
            throw EdgeError(.redisFailure, "SUBSCRIBE was not confirmed")
        }
    }

    /// Counts `subscribe` confirmations from the loop thread; the subscribing thread waits for them.
    private final class Confirmations: Sendable {
        private let count = Mutex<(seen: Int, failed: Bool, waited: Bool)>((0, false, false))
        private let done = DispatchSemaphore(value: 0)
        private let expected: Int
        init(expected: Int) { self.expected = expected }
        func add() {
            if count.withLock({
                $0.seen += 1
                return $0.seen
            }) == expected {
                done.signal()
            }
        }
        /// True when the failure came after the subscription was confirmed: the connection was lost.
        func fail() -> Bool {
            let (first, afterConfirmation) = count.withLock { state -> (Bool, Bool) in
                let first = !state.failed
                state.failed = true
                return (first, state.waited)
            }
            if first && !afterConfirmation { done.signal() }
            return first && afterConfirmation
        }
        func wait(milliseconds: Int) -> Bool {
            let signalled = done.wait(timeout: .now() + .milliseconds(milliseconds)) == .success
            return count.withLock { state in
                state.waited = true
                return signalled && !state.failed
            }
        }
    }
}

/// The loop thread's side: owns the hiredis async context and the wake-up pipe, and frees
/// both in `deinit`, after the loop has ended.
private final class AsyncLoop: @unchecked Sendable {  // context touched only on the loop thread
    typealias Completion = RedisAsyncConnection.Completion
    private let context: UnsafeMutablePointer<redisAsyncContext>
    private let wakeReadFD: Int32, wakeWriteFD: Int32
    private let queue = Mutex<(commands: [([[UInt8]], Completion, Bool)], stopping: Bool)>(([], false))
    private let state: LoopState
    /// Callbacks hiredis may call many times (subscriptions): kept until the context is gone.
    private var repeatingBoxes: [CompletionBox] = []

    /// Loop-thread state, reachable from the C hooks through `ev.data`.
    private final class LoopState {
        var wantsWrite = true  // the first writable event completes the non-blocking connect
        var connected = true
    }

    init(host: String, port: Int) throws(EdgeError) {
        guard let context = redisAsyncConnect(host, Int32(port)) else {
            throw EdgeError(.redisFailure, "cannot allocate a Redis context")
        }
        if context.pointee.err != 0 {
            redisAsyncFree(context)
            throw EdgeError(.redisFailure, "cannot connect to Redis at \(host):\(port)")
        }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0,
            fcntl(pipeFDs[0], F_SETFL, O_NONBLOCK) == 0, fcntl(pipeFDs[1], F_SETFL, O_NONBLOCK) == 0
        else {
            redisAsyncFree(context)
            throw EdgeError(.redisFailure, "cannot make the wake-up pipe")
        }
        self.context = context
        (wakeReadFD, wakeWriteFD) = (pipeFDs[0], pipeFDs[1])
        state = LoopState()
        context.pointee.ev.data = Unmanaged.passUnretained(state).toOpaque()
        context.pointee.ev.addWrite = { data in
            Unmanaged<LoopState>.fromOpaque(data!).takeUnretainedValue().wantsWrite = true
        }
        context.pointee.ev.delWrite = { data in
            Unmanaged<LoopState>.fromOpaque(data!).takeUnretainedValue().wantsWrite = false
        }
        // hiredis calls `cleanup` whenever it frees the context: after a dropped connection, a
        // failed connect (which never calls the disconnect callback), or our own free.
        context.pointee.ev.cleanup = { data in
            Unmanaged<LoopState>.fromOpaque(data!).takeUnretainedValue().connected = false
        }
    }

    deinit {
        if state.connected { redisAsyncFree(context) }  // fails pending callbacks with a nil reply
        close(wakeReadFD)
        close(wakeWriteFD)
    }

    func stop() {
        queue.withLock { $0.stopping = true }
        wake()
    }

    func submit(_ arguments: [[UInt8]], completion: @escaping Completion, repeating: Bool) {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.stopping else { return false }
            queue.commands.append((arguments, completion, repeating))
            return true
        }
        guard accepted else { return completion(.failure(EdgeError(.redisFailure, "Redis connection is closing"))) }
        wake()
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)  // a full pipe already means "awake"
    }

    func run() {
        while true {
            let (commands, stopping) = queue.withLock { queue in
                defer { queue.commands.removeAll(keepingCapacity: true) }
                return (queue.commands, queue.stopping)
            }
            for (arguments, completion, repeating) in commands {
                if repeating { sendRepeating(arguments, completion) } else { send(arguments, completion) }
            }
            if stopping { return }
            // The context is read only while hiredis has not freed it (`cleanup` clears `connected`):
            // after a dropped connection its memory, descriptor included, is gone.
            guard state.connected else {
                var wakeOnly = [pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0)]
                _ = poll(&wakeOnly, 1, 1000)  // nothing to drive: wait for submits (failed at once) or stop
                drainWake()
                continue
            }
            var fds = [
                pollfd(fd: context.pointee.c.fd, events: Int16(POLLIN | (state.wantsWrite ? POLLOUT : 0)), revents: 0),
                pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&fds, 2, 1000) >= 0 else { continue }
            if fds[1].revents != 0 { drainWake() }
            if fds[0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 { redisAsyncHandleRead(context) }
            if state.connected, fds[0].revents & Int16(POLLOUT) != 0 { redisAsyncHandleWrite(context) }
        }
    }

    private func drainWake() {
        var bytes = [UInt8](repeating: 0, count: 256)
        while read(wakeReadFD, &bytes, bytes.count) > 0 {}
    }

    private func send(_ arguments: [[UInt8]], _ completion: @escaping Completion) {
        guard state.connected else { return completion(.failure(EdgeError(.redisFailure, "Redis connection lost"))) }
        let box = Unmanaged.passRetained(CompletionBox(completion)).toOpaque()
        let status = RedisConnection.withArgv(arguments) { count, argv, lengths in
            redisAsyncCommandArgv(
                context,
                { _, reply, privdata in
                    let completion = Unmanaged<CompletionBox>.fromOpaque(privdata!).takeRetainedValue().completion
                    guard let reply else {
                        return completion(.failure(EdgeError(.redisFailure, "Redis connection lost")))
                    }
                    completion(.success(RedisConnection.convert(reply.assumingMemoryBound(to: redisReply.self))))
                }, box, count, argv, lengths)
        }
        if status != REDIS_OK {
            Unmanaged<CompletionBox>.fromOpaque(box).release()
            completion(.failure(EdgeError(.redisFailure, "Redis command could not be queued")))
        }
    }

    /// Like `send`, but the callback stays alive for every reply hiredis routes to it.
    private func sendRepeating(_ arguments: [[UInt8]], _ completion: @escaping Completion) {
        guard state.connected else { return completion(.failure(EdgeError(.redisFailure, "Redis connection lost"))) }
        let box = CompletionBox(completion)
        repeatingBoxes.append(box)
        let status = RedisConnection.withArgv(arguments) { count, argv, lengths in
            redisAsyncCommandArgv(
                context,
                { _, reply, privdata in
                    let completion = Unmanaged<CompletionBox>.fromOpaque(privdata!).takeUnretainedValue().completion
                    guard let reply else {
                        return completion(.failure(EdgeError(.redisFailure, "Redis connection lost")))
                    }
                    completion(.success(RedisConnection.convert(reply.assumingMemoryBound(to: redisReply.self))))
                }, Unmanaged.passUnretained(box).toOpaque(), count, argv, lengths)
        }
        if status != REDIS_OK { completion(.failure(EdgeError(.redisFailure, "Redis command could not be queued"))) }
    }

    private final class CompletionBox {
        let completion: Completion
        init(_ completion: @escaping Completion) { self.completion = completion }
    }
}
