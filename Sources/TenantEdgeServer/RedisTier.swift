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
/// Keys and scripts are described in `SharedTierScripts`: entries under the tenant's generation,
/// index sets per tag and path prefix (digests only, never names), a byte ledger, and a purge
/// fence that keeps a late write from bringing back what a purge removed. Tag and prefix purges
/// delete the members of their index sets; an `all` purge increments the generation, so every node
/// stops seeing the tenant's entries at once (O(1)) and Redis expires them itself.
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

    /// What a read found: the value, if any, and the tenant's purge fence at that moment, which a
    /// write made from this miss must present.
    struct Read: Sendable {
        var value: [UInt8]?
        var fence: [UInt8]
    }

    /// The stored value for a tenant's digest and the fence, or nil (Redis unavailable, too slow,
    /// or the tenant's L2 untrusted because a purge could not reach Redis yet).
    func get(tenant: String, digest: KeyDigest, on eventLoop: any EventLoop) -> EventLoopFuture<Read?> {
        guard !isUntrusted(tenant) else {
            return applyPendingPurges(on: eventLoop).map { _ in nil }
        }
        let arguments = SharedTierScripts.call(SharedTierScripts.get, tenant: tenant, [Array(digest.base64URL.utf8)])
        return run(on: eventLoop) { connection -> Read in
            switch try Self.evaluate(arguments, on: connection) {
            case .array(let items) where items.count == 2:
                guard case .string(let fence) = items[1] else { throw EdgeError(.redisFailure, "GET: no fence in the reply") }
                if case .string(let bytes) = items[0] { return Read(value: bytes, fence: fence) }
                return Read(value: nil, fence: fence)
            case .error(let message): throw EdgeError(.redisFailure, "GET: \(message)")
            default: throw EdgeError(.redisFailure, "GET: unexpected reply")
            }
        }.map { result in
            guard let read = result ?? nil else { return nil }
            if let value = read.value {
                self.counters.hits.add(1, ordering: .relaxed)
                self.counters.bytesRead.add(value.count, ordering: .relaxed)
            } else {
                self.counters.misses.add(1, ordering: .relaxed)
            }
            return read
        }
    }

    /// The tenant's purge fence alone, for a fetch that did not read L2 first (a revalidation).
    func fence(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        guard !isUntrusted(tenant) else { return eventLoop.makeSucceededFuture(nil) }
        let arguments = [Array("GET".utf8), Array("te:\(tenant):fence".utf8)]
        return run(on: eventLoop) { connection -> [UInt8] in
            switch try connection.command(arguments) {
            case .string(let fence): return fence
            case .null: return Array("0".utf8)
            default: throw EdgeError(.redisFailure, "GET of the purge fence failed")
            }
        }.map { $0 ?? nil }
    }

    /// Stores a value with a Redis TTL and indexes it under `indexes` (tag and prefix digests),
    /// unless a purge ran since `fence` was read; failures are counted and otherwise ignored.
    func set(tenant: String, digest: KeyDigest, value: [UInt8], ttlSeconds: Int, fence: [UInt8], indexes: [KeyDigest],
             on eventLoop: any EventLoop) {
        guard ttlSeconds > 0, !isUntrusted(tenant) else { return }
        let arguments = SharedTierScripts.call(SharedTierScripts.set, tenant: tenant,
            [Array(digest.base64URL.utf8), value, Array(String(ttlSeconds).utf8), fence] + indexes.map { Array($0.base64URL.utf8) })
        _ = run(on: eventLoop) { connection -> Bool in
            switch try Self.evaluate(arguments, on: connection) {
            case .integer(let stored): return stored == 1
            case .error(let message): throw EdgeError(.redisFailure, "SET: \(message)")
            default: throw EdgeError(.redisFailure, "SET: unexpected reply")
            }
        }.map { stored in
            switch stored {
            case true?:
                self.counters.writes.add(1, ordering: .relaxed)
                self.counters.bytesWritten.add(value.count, ordering: .relaxed)
            case false?: self.counters.fencedWrites.add(1, ordering: .relaxed)
            case nil: break
            }
        }
    }

    /// Deletes the entries of these digests; how many Redis removed, or nil when Redis was unavailable.
    func delete(tenant: String, digests: [KeyDigest], on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        evaluateCount(SharedTierScripts.delete, tenant: tenant, digests: digests, what: "delete", on: eventLoop)
    }

    /// Deletes the entries indexed under these tag or prefix digests (O(entries removed), no scan);
    /// how many, or nil when Redis was unavailable.
    func purge(tenant: String, indexes: [KeyDigest], on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        evaluateCount(SharedTierScripts.purgeIndexes, tenant: tenant, digests: indexes, what: "index purge", on: eventLoop)
    }

    /// Makes every stored entry of the tenant unreachable at once (O(1)); they expire on their own.
    /// False when Redis was unavailable.
    func dropGeneration(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        evaluateCount(SharedTierScripts.dropGeneration, tenant: tenant, digests: [], what: "generation drop", on: eventLoop)
            .map { $0 != nil }
    }

    /// Bytes of the tenant's entries live in Redis (from the ledger), or nil when Redis was unavailable.
    func liveBytes(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        evaluateCount(SharedTierScripts.liveBytes, tenant: tenant, digests: [], what: "byte ledger", on: eventLoop)
    }

    private func evaluateCount(_ script: String, tenant: String, digests: [KeyDigest], what: String,
                               on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        let arguments = SharedTierScripts.call(script, tenant: tenant, digests.map { Array($0.base64URL.utf8) })
        return run(on: eventLoop) { connection -> Int in
            switch try Self.evaluate(arguments, on: connection) {
            case .integer(let count): return count
            case .error(let message): throw EdgeError(.redisFailure, "\(what): \(message)")
            default: throw EdgeError(.redisFailure, "\(what): unexpected reply")
            }
        }
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

    /// Runs an `EVAL …` argument list as `EVALSHA`, and as `EVAL` after a `NOSCRIPT` answer.
    private static func evaluate(_ arguments: [[UInt8]], on connection: RedisConnection) throws(EdgeError) -> RedisConnection.Reply {
        let script = String(decoding: arguments[1], as: UTF8.self)
        guard let sha = SharedTierScripts.shas[script] else { return try connection.command(arguments) }
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
    /// Writes Redis refused because a purge ran between the read of the miss and the write.
    let fencedWrites = Atomic<Int>(0)
    /// Calls that reached a pool thread, and the nanoseconds they waited for one in total.
    let calls = Atomic<Int>(0)
    let poolWaitNanoseconds = Atomic<Int>(0)
}
