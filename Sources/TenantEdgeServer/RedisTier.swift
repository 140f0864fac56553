import Logging
import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// The region's shared tier (L2) on Redis through hiredis.
///
/// Design: blocking hiredis connections, one per thread of a dedicated `NIOThreadPool`
/// (`cache.redis.pool_size` threads), so no event loop ever blocks. Every call is bounded by
/// `timeout_ms` twice: the socket timeout inside hiredis, and a timer on the event loop that answers
/// "unavailable" if the pool has not, so no request waits on Redis longer than `timeout_ms` even when
/// calls queue. A `CircuitBreaker` stops calling a Redis that keeps failing and probes it with
/// backoff. Redis failures never fail a request: reads become misses, writes are dropped.
///
/// Keys: `te:<tenant>:g<generation>:<base64url digest>`, with the tenant's generation in
/// `te:<tenant>:gen`, and index sets `te:<tenant>:g<generation>:idx:<digest>` per tag and path
/// prefix (digests only, never names). The generation is resolved inside Redis by short Lua scripts
/// in the same round trip. Tag and prefix purges delete the members of their index sets; an `all`
/// purge increments the generation, so every node stops seeing the tenant's entries at once (O(1))
/// and Redis expires them itself.
final class RedisTier: Sendable {
    let endpoint: RedisEndpoint
    private let timeoutMs: Int
    private let threadPool: NIOThreadPool
    private let idle = Mutex<[PooledConnection]>([])  // connections not in use by a pool thread
    private let breaker = Mutex(CircuitBreaker())  // protects the breaker's state
    private let untrusted = Mutex<Set<String>>([])  // tenants with a purge not yet applied in Redis
    private let clock: any CacheClock
    private let logger: Logger
    let counters = TierCounters()

    /// A hiredis connection parked in the pool.
    private final class PooledConnection: @unchecked Sendable {  // used by one pool thread at a time
        let connection: RedisConnection
        init(_ connection: RedisConnection) { self.connection = connection }
    }

    /// - Parameters:
    ///   - endpoint: the Redis to use, with the credentials of this tier (a tenant's ACL user under `schema`).
    ///   - poolSize: connections, each with its own pool thread.
    init(endpoint: RedisEndpoint, poolSize: Int, timeoutMs: Int, clock: any CacheClock, logger: Logger) {
        self.endpoint = endpoint
        self.timeoutMs = timeoutMs
        self.clock = clock
        self.logger = logger
        threadPool = NIOThreadPool(numberOfThreads: poolSize)
        threadPool.start()
    }

    var isUp: Bool { breaker.withLock { $0.isUp } }

    func shutdown() async {
        try? await threadPool.shutdownGracefully()
        idle.withLock { $0.removeAll() }
    }

    // MARK: entry operations

    private static let getScript = "local g = redis.call('GET', KEYS[1]) or '0' return redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])"
    /// SET plus membership in each index set (tags and path prefixes, by digest), each set living
    /// at least as long as its newest member.
    private static let setScript = """
        local g = redis.call('GET', KEYS[1]) or '0'
        local base = ARGV[1] .. g .. ':'
        local ttl = tonumber(ARGV[4])
        redis.call('SET', base .. ARGV[2], ARGV[3], 'EX', ttl)
        for i = 5, #ARGV do
          local idx = base .. 'idx:' .. ARGV[i]
          redis.call('SADD', idx, ARGV[2])
          if redis.call('TTL', idx) < ttl then redis.call('EXPIRE', idx, ttl) end
        end
        return 'OK'
        """
    /// Deletes every entry listed in the given index sets, and the sets; returns the entries deleted.
    private static let purgeIndexScript = """
        local g = redis.call('GET', KEYS[1]) or '0'
        local base = ARGV[1] .. g .. ':'
        local n = 0
        for i = 2, #ARGV do
          local idx = base .. 'idx:' .. ARGV[i]
          for _, member in ipairs(redis.call('SMEMBERS', idx)) do n = n + redis.call('DEL', base .. member) end
          redis.call('DEL', idx)
        end
        return n
        """
    private static let delScript = "local g = redis.call('GET', KEYS[1]) or '0' return redis.call('DEL', ARGV[1] .. g .. ':' .. ARGV[2])"

    /// The stored value for a tenant's digest, or nil (absent, Redis unavailable, too slow, or the
    /// tenant's L2 untrusted because a purge could not reach Redis yet).
    func get(tenant: String, digest: KeyDigest, on eventLoop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        guard !isUntrusted(tenant) else {
            return applyPendingPurges(on: eventLoop).map { _ in nil }
        }
        let arguments = Self.arguments(Self.getScript, tenant: tenant, digest: digest)
        return run(on: eventLoop) { connection -> [UInt8]? in
            switch try Self.evaluate(arguments, on: connection) {
            case .string(let bytes): return bytes
            case .null: return nil
            case .error(let message): throw EdgeError(.redisFailure, "GET: \(message)")
            default: return nil
            }
        }.map { result in
            let value = result ?? nil
            if let value {
                self.counters.hits.add(1, ordering: .relaxed)
                self.counters.bytesRead.add(value.count, ordering: .relaxed)
            } else {
                self.counters.misses.add(1, ordering: .relaxed)
            }
            return value
        }
    }

    /// Stores a value with a Redis TTL and indexes it under `indexes` (tag and prefix digests);
    /// failures are counted and otherwise ignored.
    func set(tenant: String, digest: KeyDigest, value: [UInt8], ttlSeconds: Int, indexes: [KeyDigest], on eventLoop: any EventLoop) {
        guard ttlSeconds > 0, !isUntrusted(tenant) else { return }
        let arguments = Self.arguments(Self.setScript, tenant: tenant, digest: digest) + [value, Array(String(ttlSeconds).utf8)]
            + indexes.map { Array($0.base64URL.utf8) }
        _ = run(on: eventLoop) { connection -> Bool in
            if case .error(let message) = try Self.evaluate(arguments, on: connection) { throw EdgeError(.redisFailure, "SET: \(message)") }
            return true
        }.map { stored in
            guard stored == true else { return }
            self.counters.writes.add(1, ordering: .relaxed)
            self.counters.bytesWritten.add(value.count, ordering: .relaxed)
        }
    }

    /// Deletes the entries of these digests; how many Redis removed, or nil when Redis was unavailable.
    func delete(tenant: String, digests: [KeyDigest], on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        let commands = digests.map { Self.arguments(Self.delScript, tenant: tenant, digest: $0) }
        return run(on: eventLoop) { connection -> Int in
            var removed = 0
            for command in commands { if case .integer(let count) = try Self.evaluate(command, on: connection) { removed += count } }
            return removed
        }
    }

    /// Deletes the entries indexed under these tag or prefix digests (O(entries removed), no scan);
    /// how many, or nil when Redis was unavailable.
    func purge(tenant: String, indexes: [KeyDigest], on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        let arguments = [Array("EVAL".utf8), Array(Self.purgeIndexScript.utf8), Array("1".utf8), Array("te:\(tenant):gen".utf8),
                         Array("te:\(tenant):g".utf8)] + indexes.map { Array($0.base64URL.utf8) }
        return run(on: eventLoop) { connection -> Int in
            switch try Self.evaluate(arguments, on: connection) {
            case .integer(let count): return count
            case .error(let message): throw EdgeError(.redisFailure, "index purge: \(message)")
            default: return 0
            }
        }
    }

    /// Makes every stored entry of the tenant unreachable at once (O(1)); they expire on their own.
    /// False when Redis was unavailable.
    func dropGeneration(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let key = Array("te:\(tenant):gen".utf8)
        return run(on: eventLoop) { connection -> Bool in
            guard case .integer = try connection.command([Array("INCR".utf8), key]) else {
                throw EdgeError(.redisFailure, "INCR of the tenant generation failed")
            }
            return true
        }.map { $0 == true }
    }

    // MARK: purges that could not reach Redis

    /// Records that a purge for `tenant` did not reach Redis. Until a generation drop for it
    /// succeeds, this node neither reads nor writes the tenant's L2 entries, and it retries the drop
    /// in the background, so no purge is lost to an outage.
    func markUntrusted(_ tenant: String, on eventLoop: any EventLoop) {
        let first = untrusted.withLock { set -> Bool in
            let wasEmpty = set.isEmpty
            set.insert(tenant)
            return wasEmpty
        }
        logger.warning("purge did not reach Redis; tenant's L2 untrusted until it does", metadata: ["tenant": "\(tenant)"])
        if first { scheduleRetry(on: eventLoop) }
    }

    func isUntrusted(_ tenant: String) -> Bool { untrusted.withLock { $0.contains(tenant) } }

    private func scheduleRetry(on eventLoop: any EventLoop) {
        eventLoop.scheduleTask(in: .milliseconds(200)) {
            self.applyPendingPurges(on: eventLoop).whenComplete { _ in
                if !self.untrusted.withLock({ $0.isEmpty }) { self.scheduleRetry(on: eventLoop) }
            }
        }
    }

    /// Tries the pending generation drops; each success makes that tenant's L2 trusted again.
    private func applyPendingPurges(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let tenants = untrusted.withLock { Array($0) }
        let drops = tenants.map { tenant in
            dropGeneration(tenant: tenant, on: eventLoop).map { dropped in
                if dropped { _ = self.untrusted.withLock { $0.remove(tenant) } }
            }
        }
        return EventLoopFuture.andAllComplete(drops, on: eventLoop)
    }

    private static func arguments(_ script: String, tenant: String, digest: KeyDigest) -> [[UInt8]] {
        [Array("EVAL".utf8), Array(script.utf8), Array("1".utf8), Array("te:\(tenant):gen".utf8),
         Array("te:\(tenant):g".utf8), Array(digest.base64URL.utf8)]
    }

    /// Script SHA-1s, computed once: calls send `EVALSHA` (40 bytes instead of the script, and no
    /// hashing of the body in Redis), falling back to `EVAL` when Redis does not know the script yet.
    private static let scriptSHAs: [String: [UInt8]] = Dictionary(uniqueKeysWithValues:
        [getScript, setScript, delScript, purgeIndexScript].map { ($0, Array(OpenSSL.sha1Hex($0).utf8)) })

    /// Runs an `EVAL …` argument list as `EVALSHA`, and as `EVAL` after a `NOSCRIPT` answer.
    private static func evaluate(_ arguments: [[UInt8]], on connection: RedisConnection) throws(EdgeError) -> RedisConnection.Reply {
        let script = String(decoding: arguments[1], as: UTF8.self)
        guard let sha = scriptSHAs[script] else { return try connection.command(arguments) }
        var bySHA = arguments
        bySHA[0] = Array("EVALSHA".utf8)
        bySHA[1] = sha
        let reply = try connection.command(bySHA)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") { return try connection.command(arguments) }
        return reply
    }

    // MARK: pool, deadline and breaker

    /// Runs `body` on a pool thread with a pooled connection. Answers nil (unavailable) when the
    /// breaker is open, the call fails, or `timeout_ms` passes first.
    private func run<T: Sendable>(on eventLoop: any EventLoop,
                                  _ body: @escaping @Sendable (RedisConnection) throws -> T) -> EventLoopFuture<T?> {
        let now = clock.now()
        guard breaker.withLock({ $0.beforeCall(now: now) }) == .attempt else {
            return eventLoop.makeSucceededFuture(nil)
        }
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeoutMs))
        let promise = eventLoop.makePromise(of: T?.self)
        let once = Once()
        let settle: @Sendable (T?, Bool) -> Void = { value, ok in
            guard once.claim() else { return }
            self.breaker.withLock { ok ? $0.succeeded() : $0.failed(now: self.clock.now()) }
            promise.succeed(value)
        }
        let timer = eventLoop.scheduleTask(deadline: deadline) { settle(nil, false) }
        let submitted = NIODeadline.now()
        threadPool.runIfActive(eventLoop: eventLoop) { () throws -> T in
            let started = NIODeadline.now()
            self.counters.calls.add(1, ordering: .relaxed)
            self.counters.poolWaitNanoseconds.add(Int((started - submitted).nanoseconds), ordering: .relaxed)
            guard started < deadline else { throw EdgeError(.redisFailure, "queued past timeout_ms") }
            // A connection that failed is not returned to the pool: it may be mid-reply or broken.
            let pooled = try self.idle.withLock({ $0.popLast() })
                ?? PooledConnection(RedisConnection.open(self.endpoint, timeoutMs: self.timeoutMs))
            let value = try body(pooled.connection)
            self.idle.withLock { $0.append(pooled) }
            return value
        }.whenComplete { result in
            timer.cancel()
            switch result {
            case .success(let value): settle(value, true)
            case .failure(let error):
                self.counters.errors.add(1, ordering: .relaxed)
                self.logger.debug("redis call failed", metadata: ["error": "\(error)"])
                settle(nil, false)
            }
        }
        return promise.futureResult
    }
}

/// True for the first caller only: settles a call exactly once between its reply and its timer.
private final class Once: Sendable {
    private let done = Atomic<Bool>(false)
    func claim() -> Bool { done.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged }
}

/// Per-tier counters for stats and metrics.
final class TierCounters: Sendable {
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let bytesRead = Atomic<Int>(0)
    let bytesWritten = Atomic<Int>(0)
    /// Calls that reached a pool thread, and the nanoseconds they waited for one in total.
    let calls = Atomic<Int>(0)
    let poolWaitNanoseconds = Atomic<Int>(0)
}
