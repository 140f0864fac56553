import Logging
import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// The region's shared tier (L2) on Redis through hiredis.
///
/// Design: connections on the event loops themselves, with hiredis's reply parser
/// (`SharedTierConnections`): a call is written, pipelined behind whatever else is in flight, and
/// answered on the loop that made it, so an L2 hit crosses no thread and no loop ever blocks on
/// Redis (docs/decisions.md, 53). Every call
/// is bounded by `timeout_ms` by a timer on the event loop that answers "unavailable" if Redis has
/// not, so no request waits on Redis longer than that, even when calls queue. A `CircuitBreaker`
/// stops calling a Redis that keeps failing and probes it with backoff. Redis failures never fail a
/// request: reads become misses, writes are dropped.
///
/// Keys and scripts are described in `SharedTierScripts`: entries under the tenant's generation,
/// index sets per tag and path prefix (digests only, never names), a byte ledger, and a purge
/// fence that keeps a late write from bringing back what a purge removed. Tag and prefix purges
/// delete the members of their index sets; an `all` purge increments the generation, so every node
/// stops seeing the tenant's entries at once (O(1)) and Redis expires them itself.
final class RedisTier: Sendable {
    /// Credentials and database; with Sentinel its host and port are placeholders (`address` has them).
    let endpoint: RedisEndpoint
    /// Where the primary is now: fixed, or followed through Sentinel.
    let address: RedisPrimaryAddress
    /// This node's id, carried by the purge notices it publishes (so it skips its own).
    let nodeID: String
    let timeoutMs: Int
    private let connections: SharedTierConnections
    private let breaker = Mutex(CircuitBreaker())  // protects the breaker's state
    private let pending = Mutex(PendingPurges())  // tenants with a purge not yet applied in Redis
    let clock: any CacheClock
    let logger: Logger
    /// Until when (seconds on `clock`) reads go through the script because Redis answered `NOPERM`
    /// to a plain `MGET` (`RedisTier+Reads`); 0: plain reads are allowed.
    let plainReadsRetryAt = Atomic<Int>(0)
    let counters = TierCounters()

    /// - Parameters:
    ///   - endpoint: the Redis to use, with the credentials of this tier (a tenant's ACL user under `schema`).
    ///   - connectionsPerLoop: connections on each event loop that calls the tier, used round-robin.
    ///   - maxReplyBytes: the largest reply a connection takes before it closes (a value is bounded
    ///     by `limits.max_response_body_bytes` and its head).
    init(
        endpoint: RedisEndpoint, address: RedisPrimaryAddress? = nil, nodeID: String, connectionsPerLoop: Int,
        timeoutMs: Int, maxReplyBytes: Int, clock: any CacheClock, logger: Logger
    ) {
        self.endpoint = endpoint
        let address = address ?? RedisPrimaryAddress(fixed: endpoint)
        self.address = address
        self.nodeID = nodeID
        self.timeoutMs = timeoutMs
        self.clock = clock
        self.logger = logger
        self.connections = SharedTierConnections(
            endpoint: endpoint, address: address, perLoop: connectionsPerLoop, timeoutMs: timeoutMs,
            maxReplyBytes: maxReplyBytes)
    }

    var isUp: Bool { breaker.withLock { $0.isUp } }

    /// Calls that waited for a connection to be made (`edge_l2_connection_waits_total`).
    var connectionWaits: Int { connections.connectionWaits.load(ordering: .relaxed) }

    /// The endpoint to connect to now (the current primary's address); nil while none is known.
    var currentEndpoint: RedisEndpoint? { currentPrimary?.endpoint }

    /// The endpoint to connect to now and the address epoch it belongs to, read together.
    var currentPrimary: (endpoint: RedisEndpoint, epoch: Int)? {
        guard let (primary, epoch) = address.current() else { return nil }
        var current = endpoint
        (current.host, current.port) = (primary.host, primary.port)
        return (current, epoch)
    }

    func shutdown() async { await connections.shutdown() }

    // MARK: entry operations

    /// What a miss learned of the tenant's L2 before fetching: the purge fence, which a write made
    /// from this miss must present, and the generation entries made from it are bound to.
    struct Token: Sendable {
        var fence: [UInt8]
        var generation: UInt64
    }

    /// What a read found: the value, if any, and the tenant's token at that moment.
    struct Read: Sendable {
        var value: [UInt8]?
        var token: Token
    }

    /// A generation as Redis returns it (decimal text); nil for anything else, a value past
    /// `UInt64.max` included. Read digit by digit: a `String` of it was an allocation every L2 read.
    static func generation(_ bytes: [UInt8]) -> UInt64? {
        guard (1...20).contains(bytes.count) else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (tens, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = tens.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
            guard !overflowed, !carried else { return nil }
            value = sum
        }
        return value
    }

    /// The highest generation this node has read per tenant. Generations only grow (a purge of
    /// everything increments one); a lower one read later means someone set it back in Redis to
    /// bring a purged generation's entries back, and that tenant's L2 is not used while it lasts.
    let generationFloor = Mutex<[String: UInt64]>([:])

    /// Whether `token` may be used: its generation is not below one already seen (and becomes the
    /// floor); a roll-back is a `decrypt_failed`-class security event for the caller to record.
    func admitted(_ token: Token, tenant: String, on eventLoop: any EventLoop) -> Bool {
        let floor = generationFloor.withLock { floors -> UInt64? in
            let floor = floors[tenant, default: 0]
            guard token.generation >= floor else { return floor }
            floors[tenant] = token.generation
            return nil
        }
        let ok = floor == nil
        if let floor { raiseGeneration(tenant: tenant, above: floor, on: eventLoop) }
        if !ok {
            let seen = counters.rolledBackGenerations.add(1, ordering: .relaxed).newValue
            if seen == 1 || seen % 1000 == 0 {  // every read would log otherwise
                logger.warning(
                    "L2 generation went backwards; not used, and raised above the highest seen",
                    metadata: ["tenant": "\(tenant)", "reads_refused": "\(seen)"])
            }
        }
        return ok
    }

    /// Tenants whose generation is being raised (one call in flight each).
    private let raising = Mutex<Set<String>>([])

    /// Moves a tenant's generation above `floor` in Redis (`SharedTierScripts.raiseGeneration`).
    private func raiseGeneration(tenant: String, above floor: UInt64, on eventLoop: any EventLoop) {
        guard floor < 1 << 53, raising.withLock({ $0.insert(tenant).inserted }) else { return }
        let arguments = SharedTierScripts.call(
            SharedTierScripts.raiseGeneration, tenant: tenant,
            [
                Array(PurgeNotice.channel(tenant: tenant, database: endpoint.database).utf8), Array(nodeID.utf8),
                Array(String(floor).utf8),
            ])
        evaluateCount(arguments, what: "generation raise", on: eventLoop).whenComplete { _ in
            self.raising.withLock { _ = $0.remove(tenant) }
        }
    }

    /// Stores a value with a Redis TTL and indexes it under `indexes` (tag and prefix digests),
    /// unless a purge ran since `fence` was read; failures are counted and otherwise ignored.
    /// `quotaBytes`: the tenant's L2 quota (0: none); a write that would pass it is refused by Redis.
    func set(
        tenant: String, digest: KeyDigest, value: [UInt8], ttlSeconds: Int, fence: [UInt8], keyVersion: UInt32,
        quotaBytes: Int = 0, indexes: [KeyDigest], on eventLoop: any EventLoop
    ) {
        guard ttlSeconds > 0, !isUntrusted(tenant) else { return }
        let arguments = SharedTierScripts.call(
            SharedTierScripts.set, tenant: tenant,
            [
                Array(digest.base64URL.utf8), value, Array(String(ttlSeconds).utf8), fence,
                Array(String(keyVersion).utf8),
                Array(String(max(0, quotaBytes)).utf8),
            ] + indexes.map { Array($0.base64URL.utf8) })
        _ = run(arguments, on: eventLoop) { reply -> Int in
            switch reply {
            case .integer(let outcome): return outcome
            case .error(let message): throw EdgeError(.redisFailure, "SET: \(message)")
            default: throw EdgeError(.redisFailure, "SET: unexpected reply")
            }
        }.map { outcome in
            switch outcome {
            case 1?:
                self.counters.writes.add(1, ordering: .relaxed)
                self.counters.bytesWritten.add(value.count, ordering: .relaxed)
            case 0?: self.counters.fencedWrites.add(1, ordering: .relaxed)
            case 2?: self.counters.quotaRefusedWrites.add(1, ordering: .relaxed)
            default: break
            }
        }
    }

    /// Deletes the tenant's entries sealed under a retired key version, batch by batch (only that
    /// tenant's list for that version is read); true when none is left.
    func sweep(tenant: String, keyVersion: UInt32, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let arguments = SharedTierScripts.call(
            SharedTierScripts.sweepVersion, tenant: tenant, [Array(String(keyVersion).utf8)])
        return evaluateCount(arguments, what: "retirement sweep", on: eventLoop).flatMap { left in
            guard let left else { return eventLoop.makeSucceededFuture(false) }
            return left == 0
                ? eventLoop.makeSucceededFuture(true)
                : self.sweep(tenant: tenant, keyVersion: keyVersion, on: eventLoop)
        }
    }

    /// Deletes every key of the tenant in this Redis (erasure), batch by batch; true when none is
    /// left, false when Redis stopped answering first or the generation moved from `generation`
    /// (the caller drops it and decides `back` again).
    /// `back`: the tenant is served again here; its generation and acknowledgements are kept.
    /// Otherwise `generation` is the one the erasure's own drop made, checked in Redis by each batch.
    func erase(tenant: String, back: Bool, generation: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let arguments = SharedTierScripts.call(
            SharedTierScripts.erase, tenant: tenant,
            [Array((back ? "back" : "gone").utf8), Array(String(generation).utf8)])
        return evaluateCount(arguments, what: "erasure", on: eventLoop)
            .flatMap { left in
                guard let left, left >= 0 else { return eventLoop.makeSucceededFuture(false) }
                guard left == 0 else {
                    return self.erase(tenant: tenant, back: back, generation: generation, on: eventLoop)
                }
                if back { return eventLoop.makeSucceededFuture(true) }  // its floor is the returned tenant's
                // The tenant's generation is gone with it; if it comes back, it counts from 0 again.
                self.generationFloor.withLock { $0[tenant] = nil }
                return eventLoop.makeSucceededFuture(true)
            }
    }

    /// Bytes of the tenant's entries live in Redis (from the ledger), or nil when Redis was unavailable.
    func liveBytes(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        evaluateCount(
            SharedTierScripts.call(SharedTierScripts.liveBytes, tenant: tenant), what: "byte ledger", on: eventLoop)
    }

    private func evaluateCount(_ arguments: [[UInt8]], what: String, on eventLoop: any EventLoop) -> EventLoopFuture<
        Int?
    > {
        run(arguments, on: eventLoop) { reply -> Int in
            switch reply {
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
    func markUntrusted(
        _ tenant: String, because reason: String = "purge did not reach Redis", on eventLoop: any EventLoop
    ) {
        guard pending.withLock({ $0.purgeFailed(tenant: tenant) }) else { return }
        logger.warning(
            "\(reason); tenant's L2 untrusted until its generation is dropped", metadata: ["tenant": "\(tenant)"])
    }

    func isUntrusted(_ tenant: String) -> Bool { pending.withLock { $0.isUntrusted(tenant) } }

    var hasPendingPurges: Bool { pending.withLock { !$0.isEmpty } }

    /// One round of the pending generation drops (`PendingPurgeRetries` calls it on its timer);
    /// each success makes that tenant's L2 trusted again.
    func retryPendingPurges(on eventLoop: any EventLoop) async {
        guard case .dropGenerations(let tenants) = pending.withLock({ $0.retryDue() }) else { return }
        var dropped: Set<String> = []
        for tenant in tenants where (try? await dropGeneration(tenant: tenant, on: eventLoop).get()) != nil {
            dropped.insert(tenant)
        }
        pending.withLock { $0.roundFinished(dropped: dropped) }
    }

    // MARK: connections, deadline and breaker

    /// Sends one command and answers `interpret(reply)`, or nil (unavailable) when the breaker is
    /// open, the connection fails, Redis answers something `interpret` rejects, or `timeout_ms`
    /// (or what is left of it, `timeoutMs`, for a second call of one request) passes first. Our
    /// scripts go as `EVALSHA`, and again as `EVAL` after a `NOSCRIPT` answer.
    func run<T: Sendable>(
        _ arguments: [[UInt8]], timeoutMs: Int? = nil, on eventLoop: any EventLoop,
        _ interpret: @escaping @Sendable (RedisConnection.Reply) throws -> T
    ) -> EventLoopFuture<T?> {
        let promise = eventLoop.makePromise(of: T?.self)
        call(arguments, timeoutMs: timeoutMs, on: eventLoop, interpret) { promise.succeed($0) }
        return promise.futureResult
    }

    /// `run` without a future: `completion` runs exactly once, on `eventLoop` when the call was made
    /// there. The read path uses it, since each future an L2 hit makes and drops costs it about a
    /// thousand instructions of allocation and generic metadata lookups.
    func call<T: Sendable>(
        _ arguments: [[UInt8]], timeoutMs: Int? = nil, on eventLoop: any EventLoop,
        _ interpret: @escaping @Sendable (RedisConnection.Reply) throws -> T,
        completion: @escaping @Sendable (T?) -> Void
    ) {
        let now = clock.now()
        guard breaker.withLock({ $0.beforeCall(now: now) }) == .attempt else { return completion(nil) }
        let once = Once()
        let settle: @Sendable (T?, (any Error)?) -> Void = { value, error in
            guard once.claim() else { return }
            if let error {
                self.counters.errors.add(1, ordering: .relaxed)
                self.logger.debug("redis call failed", metadata: ["error": "\(error)"])
            }
            self.breaker.withLock { error == nil ? $0.succeeded() : $0.failed(now: self.clock.now()) }
            completion(value)
        }
        let submitted = NIODeadline.now()
        let deadline = submitted + .milliseconds(Int64(timeoutMs ?? self.timeoutMs))
        counters.calls.add(1, ordering: .relaxed)
        // The deadline runs from here, waiting for a connection included (`CallDeadlines`).
        // (The loop's connections that stalled are closed once per firing that expired any call.)
        let expiry = SharedTierConnections.Expiry(deadline: deadline, once: once) {
            settle(nil, EdgeError(.redisFailure, "no answer within timeout_ms"))
        }
        connections.withConnection(on: eventLoop, expiry: expiry) { result in
            switch result {
            case .failure(let error):
                settle(nil, error)
            case .success(let connection):
                Self.send(arguments, on: connection, wanted: { !once.isClaimed }) { reply in
                    if self.address.followsSentinel, case .success(.error(let message)) = reply,
                        message.hasPrefix("READONLY")
                    {
                        // A primary that became a replica: this connection is done, and the
                        // sentinels are asked where the primary went.
                        connection.close()
                        self.address.suspect()
                    }
                    self.counters.callDuration.record(nanoseconds: (NIODeadline.now() - submitted).nanoseconds)
                    switch reply {
                    case .failure(let error): settle(nil, error)
                    case .success(let reply):
                        do { settle(try interpret(reply), nil) } catch { settle(nil, error) }
                    }
                }
            }
        }
    }

    /// `wanted`: whether the caller still waits; a script Redis no longer has is sent again in full
    /// only then (after a Redis restart, every timed-out call would otherwise run a second time).
    private static func send(
        _ arguments: [[UInt8]], on connection: RedisLoopConnection, wanted: @escaping () -> Bool,
        completion: @escaping RedisCommand.Completion
    ) {
        guard arguments.count > 1, arguments[0] == evalCommand,
            let sha = SharedTierScripts.shas[String(decoding: arguments[1], as: UTF8.self)]
        else {
            return connection.submit(arguments, completion: completion)
        }
        var bySHA = arguments
        bySHA[0] = evalSHACommand
        bySHA[1] = sha
        connection.submit(bySHA) { reply in
            if case .success(.error(let message)) = reply, message.hasPrefix("NOSCRIPT"), wanted() {
                connection.submit(arguments, completion: completion)
            } else {
                completion(reply)
            }
        }
    }
}

/// The command names `send` compares and writes, made once (an `Array("EVAL".utf8)` per call was
/// an allocation on every L2 read).
private let evalCommand = Array("EVAL".utf8)
private let evalSHACommand = Array("EVALSHA".utf8)
