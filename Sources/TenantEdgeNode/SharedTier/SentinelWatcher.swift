import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// Follows Redis Sentinel for the shared tier's primary (`cache.redis.sentinel`): ask every
/// sentinel for the master's address (`SENTINEL get-master-addr-by-name`) and follow the address a
/// majority of them name (the client guidelines take the first answer; a majority keeps one lying
/// or stale sentinel from moving the tier, which would also hand it the primary's password), hold a
/// subscription to `+switch-master` on one of them so a failover starts a round the moment it is
/// decided, and ask again
/// whenever a connection to the primary fails or a write meets `READONLY` (`RedisPrimaryAddress`
/// fires its suspicion), and every `recheckSeconds` in any case. Connections check `ROLE` when
/// they are made, so an answer that is already out of date costs a failed connect, never a write to
/// a replica. While no primary answers, the tier is a miss: calls fail fast and the breaker opens.
///
/// Everything runs on one event loop with `RedisLoopConnection`s: no thread, nothing blocks.
final class SentinelWatcher: Service, Sendable {
    /// Seconds between rounds when nothing is suspected (on the injected clock).
    static let recheckSeconds = 5.0
    /// The least time between two rounds, however often connections fail: a Redis that is down
    /// fires a suspicion per call, and the sentinels must not be asked at that rate.
    static let leastGapMilliseconds = 200

    let address: RedisPrimaryAddress
    private let master: String
    private let sentinels: [RedisEndpoint]
    private let timeoutMs: Int
    private let eventLoop: any EventLoop
    private let clock: any CacheClock
    private let logger: Logger
    /// The live `+switch-master` subscription, if any.
    private let subscription = Mutex<RedisLoopConnection?>(nil)
    /// Called after the primary moved from one address to another (not on the first answer).
    private let onSwitch = Mutex<(@Sendable () -> Void)?>(nil)

    /// Sets what runs after each switch: the runtime makes every tenant of this primary drop its
    /// generation on the new one, since writes the old primary took and never passed on to its
    /// replica (a purge among them) are lost with it.
    func whenSwitched(_ body: @escaping @Sendable () -> Void) { onSwitch.withLock { $0 = body } }

    private let onSwitched = Mutex<(@Sendable () -> Void)?>(nil)

    /// Sets what runs once a switch is published: the runtime moves every purge subscription, which
    /// would otherwise find the old address again.
    func afterSwitch(_ body: @escaping @Sendable () -> Void) { onSwitched.withLock { $0 = body } }

    init(
        config: RedisSentinelConfig, address: RedisPrimaryAddress, timeoutMs: Int, eventLoop: any EventLoop,
        clock: any CacheClock, logger: Logger
    ) throws(EdgeError) {
        let password = try config.sentinelPasswordFile.map { path throws(EdgeError) in
            try PasswordFile.read(path, key: "cache.redis.sentinel.sentinel_password_file")
        }
        sentinels = try config.addresses.map { text throws(EdgeError) in
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (1...65_535).contains(port)
            else {
                throw EdgeError(.invalidConfig, "cache.redis.sentinel.addresses: '\(text.prefix(80))' is not host:port")
            }
            let host = text[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            return RedisEndpoint(host: host, port: port, password: password)
        }
        master = config.master
        self.address = address
        self.timeoutMs = max(timeoutMs, 500)
        self.eventLoop = eventLoop
        self.clock = clock
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                await round()
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.address.suspicion.untilFired() }
                    group.addTask { try? await self.clock.sleep(seconds: Self.recheckSeconds) }
                    await group.next()
                    group.cancelAll()
                }
                try? await Task.sleep(for: .milliseconds(Self.leastGapMilliseconds))
            }
        }
        let held = subscription.withLock { held in
            defer { held = nil }
            return held
        }
        held?.close()
    }

    /// Asks every sentinel, follows what most of them say, and subscribes to switches when no
    /// subscription lives. Each step is bounded by `timeout_ms`, so a sentinel that stalls after
    /// it connected costs a round that much, never the watcher.
    func round() async {
        if let primary = await resolve() { moved(to: primary) }
        if subscription.withLock({ $0 == nil }) { await subscribe() }
    }

    /// Moves the address. On a switch, `onSwitch` runs first (every tenant of this primary is
    /// untrusted before any call can reach the new one), then the new address is published, then
    /// `onSwitched` runs (subscriptions made again now reach the new primary).
    private func moved(to primary: SentinelAnswer.Primary) {
        let previous = address.current()?.primary
        guard previous != primary else { return }
        if previous != nil { onSwitch.withLock { $0 }?() }
        address.update(primary)
        if previous != nil { onSwitched.withLock { $0 }?() }
        logger.notice(
            previous == nil ? "L2 primary (from Sentinel)" : "L2 primary switched (Sentinel)",
            metadata: ["master": "\(master)", "primary": "\(primary)"])
    }

    /// The address a strict majority of the configured sentinels name (one lying or stale sentinel
    /// cannot move the tier, nor flip it back and forth); nil when no address has a majority.
    private func resolve() async -> SentinelAnswer.Primary? {
        let command = [Array("SENTINEL".utf8), Array("get-master-addr-by-name".utf8), Array(master.utf8)]
        var votes: [SentinelAnswer.Primary: Int] = [:]
        for sentinel in sentinels {
            guard let connection = try? await open(sentinel) else { continue }
            let reply = await ask(connection, command)
            connection.close()
            guard case .array(let items)? = reply, items.count == 2, case .string(let host) = items[0],
                case .string(let port) = items[1], let primary = SentinelAnswer.primary(host: host, port: port)
            else {
                logger.debug("a sentinel did not name the primary", metadata: ["sentinel": "\(sentinel)"])
                continue
            }
            votes[primary, default: 0] += 1
        }
        guard let (primary, count) = votes.max(by: { $0.value < $1.value }), count > sentinels.count / 2 else {
            logger.warning(
                "no majority of the sentinels named the L2 primary",
                metadata: ["master": "\(master)", "answers": "\(votes.values.reduce(0, +))"])
            return nil
        }
        return primary
    }

    /// One command's reply within `timeout_ms` (the connection is closed when it passes, which
    /// fails the command), or nil; a cancelled task closes it at once.
    private func ask(_ connection: RedisLoopConnection, _ command: [[UInt8]]) async -> RedisConnection.Reply? {
        let timeoutMs = Int64(self.timeoutMs)
        return await withTaskCancellationHandler {
            try? await eventLoop.flatSubmit { [eventLoop] () -> EventLoopFuture<RedisConnection.Reply> in
                let promise = eventLoop.makePromise(of: RedisConnection.Reply.self)
                let deadline = eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) { connection.close() }
                connection.submit(command) { reply in
                    deadline.cancel()
                    promise.completeWith(reply.mapError { $0 as any Error })
                }
                return promise.futureResult
            }.get()
        } onCancel: {
            connection.close()
        }
    }

    /// Subscribes to `+switch-master` on the first sentinel that confirms within `timeout_ms`. A
    /// message about our master starts a round at once (a majority decides, not the one sentinel
    /// subscribed to). A lost subscription fires the suspicion, so the next round subscribes again.
    private func subscribe() async {
        let timeoutMs = Int64(self.timeoutMs)
        for sentinel in sentinels {
            guard let connection = try? await open(sentinel) else { continue }
            let (address, master) = (self.address, self.master)
            let confirmed = await withTaskCancellationHandler {
                try? await eventLoop.flatSubmit { [eventLoop] in
                    connection.closeFuture.whenComplete { _ in address.suspicion.fire() }
                    let deadline = eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) { connection.close() }
                    return connection.subscribe("+switch-master") { payload in
                        if SentinelAnswer.switched(payload: payload, master: master) != nil { address.suspicion.fire() }
                    }.always { _ in deadline.cancel() }
                }.get()
            } onCancel: {
                connection.close()
            }
            guard confirmed != nil else {
                connection.close()
                continue
            }
            subscription.withLock { $0 = connection }
            connection.closeFuture.whenComplete { [self] _ in
                subscription.withLock { if $0 === connection { $0 = nil } }
            }
            return
        }
    }

    private func open(_ sentinel: RedisEndpoint) async throws -> RedisLoopConnection {
        try await RedisLoopConnection.open(sentinel, timeoutMs: timeoutMs, maxReplyBytes: 1 << 16, on: eventLoop).get()
    }
}

/// A password kept in a file of its own (Redis `AUTH`): its first line, which must be 1 to 512
/// printable bytes. Errors name the config key, never the content.
enum PasswordFile {
    static func read(_ path: String, key: String) throws(EdgeError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "\(key): cannot read \(path)")
        }
        let line = data.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        guard (1...512).contains(line.count), line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }),
            line.first != 0x20, line.last != 0x20, let text = String(data: line, encoding: .ascii)
        else {
            throw EdgeError(
                .invalidConfig,
                "\(key): \(path) must hold a password of 1 to 512 printable characters, no space at either end")
        }
        return text
    }
}
