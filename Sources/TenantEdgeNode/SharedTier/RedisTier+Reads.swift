import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// The L2 reads, without a script where one is not needed. An entry's key names the tenant's
/// generation, which only Redis knows for sure, so the `get` script reads the generation and then
/// the entry. But this node already holds the highest generation it has seen (`generationFloor`),
/// and one `MGET` of the entry at that generation, the fence and the generation is atomic in
/// Redis: when the generation it returns is the one guessed, the answer is exactly what the script
/// would have given. Only when the generation moved (a purge of everything, or a roll-back for
/// `admitted` to refuse) does the read go through the script, within what is left of the same
/// `timeout_ms`. Redis runs a plain `MGET` for a fraction of what `EVALSHA` costs it, and on a
/// machine Redis shares with the node that is the node's time too.
///
/// A Redis whose ACL was set up before `MGET` was granted (`edgectl redis acl` prints the current
/// list) answers `NOPERM`: reads and tokens then go through the script for a minute at a time,
/// the node says so once each time, and a refusal never counts against the tier.
extension RedisTier {
    /// The stored value for a tenant's digest and the fence, or nil (Redis unavailable, too slow,
    /// or the tenant's L2 untrusted because a purge could not reach Redis yet).
    func get(tenant: String, digest: KeyDigest, on eventLoop: any EventLoop) -> EventLoopFuture<Read?> {
        let promise = eventLoop.makePromise(of: Read?.self)
        get(tenant: tenant, digest: digest, on: eventLoop) { promise.succeed($0) }
        return promise.futureResult
    }

    /// `get` with a completion instead of a future (the L2 hit path makes none of its own):
    /// `completion` runs once, on `eventLoop` (at once when no call is made).
    func get(
        tenant: String, digest: KeyDigest, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Read?) -> Void
    ) {
        guard !isUntrusted(tenant) else {
            // Traffic for the tenant tries the pending drops too (a round at a time), so it recovers
            // as soon as Redis is back rather than on the next timer.
            eventLoop.makeFutureWithTask { await self.retryPendingPurges(on: eventLoop) }.whenComplete { _ in
                completion(nil)
            }
            return
        }
        guard !plainReadsRefused, let guessed = generationFloor.withLock({ $0[tenant] }) else {
            return scriptGet(tenant: tenant, digest: digest, on: eventLoop).whenComplete {
                completion((try? $0.get()) ?? nil)
            }
        }
        let started = NIODeadline.now()
        let arguments = [
            Self.mget, Self.entryKey(tenant: tenant, generation: guessed, digest: digest),
            Self.tenantKey(tenant, "fence"), Self.tenantKey(tenant, "gen"),
        ]
        call(arguments, on: eventLoop) { reply -> PlainRead<Read> in
            guard case .array(let items) = reply, items.count == 3 else { return try self.refusedOrFailed(reply) }
            // Missing fence and generation read as "0", as the scripts read them.
            guard let token = Self.token(fence: items[1], generation: items[2]) else { return .nonsense }
            guard token.generation == guessed else { return .askScript }
            switch items[0] {
            case .string(let value): return .answer(Read(value: value, token: token))
            case .null: return .answer(Read(value: nil, token: token))
            default: return .nonsense
            }
        } completion: { outcome in
            switch outcome {
            case .answer(let read): completion(self.finishRead(read, tenant: tenant, on: eventLoop))
            case .nonsense, nil: completion(nil)
            case .askScript:
                guard let left = self.timeLeft(since: started) else { return completion(nil) }
                self.scriptGet(tenant: tenant, digest: digest, timeoutMs: left, on: eventLoop).whenComplete {
                    completion((try? $0.get()) ?? nil)
                }
            }
        }
    }

    /// The tenant's token alone, for a fetch that did not read L2 first (a revalidation).
    func token(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<Token?> {
        guard !isUntrusted(tenant) else { return eventLoop.makeSucceededFuture(nil) }
        guard !plainReadsRefused else { return scriptToken(tenant: tenant, on: eventLoop) }
        let started = NIODeadline.now()
        let arguments = [Self.mget, Self.tenantKey(tenant, "fence"), Self.tenantKey(tenant, "gen")]
        return run(arguments, on: eventLoop) { reply -> PlainRead<Token> in
            guard case .array(let items) = reply, items.count == 2 else { return try self.refusedOrFailed(reply) }
            return Self.token(fence: items[0], generation: items[1]).map { .answer($0) } ?? .nonsense
        }.flatMap { outcome -> EventLoopFuture<Token?> in
            switch outcome {
            case .answer(let token):
                return eventLoop.makeSucceededFuture(self.admitted(token, tenant: tenant, on: eventLoop) ? token : nil)
            case .nonsense, nil: return eventLoop.makeSucceededFuture(nil)
            case .askScript:
                guard let left = self.timeLeft(since: started) else { return eventLoop.makeSucceededFuture(nil) }
                return self.scriptToken(tenant: tenant, timeoutMs: left, on: eventLoop)
            }
        }
    }

    /// `te:<tenant>:g<generation>:<digest>` as bytes, made without a `String` of the key or the
    /// digest (two allocations fewer per L2 read).
    static func entryKey(tenant: String, generation: UInt64, digest: KeyDigest) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(tenant.utf8.count + 73)  // "te:" ":g" ":", 20 digits at most, 43 characters
        key.append(contentsOf: "te:".utf8)
        key.append(contentsOf: tenant.utf8)
        key.append(contentsOf: ":g".utf8)
        let digitsStart = key.count
        var value = generation
        repeat {
            key.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10))
            value /= 10
        } while value > 0
        key[digitsStart...].reverse()
        key.append(UInt8(ascii: ":"))
        digest.appendBase64URL(to: &key)
        return key
    }

    /// `te:<tenant>:<name>` as bytes: the tenant's fence, generation and index keys, and the prefix
    /// of its entries' keys, here and in every script call (one definition of them). Made without a
    /// `String` to convert: an interpolation and its conversion cost an L2 read about 700
    /// instructions a key.
    static func tenantKey(_ tenant: String, _ name: StaticString) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(tenant.utf8.count + 4 + name.utf8CodeUnitCount)
        key.append(contentsOf: "te:".utf8)
        key.append(contentsOf: tenant.utf8)
        key.append(UInt8(ascii: ":"))
        name.withUTF8Buffer { key.append(contentsOf: $0) }
        return key
    }

    /// Whether reads go through the script now (Redis refused `MGET` less than a minute ago).
    var plainReadsRefused: Bool { Double(plainReadsRetryAt.load(ordering: .relaxed)) > clock.now() }

    // MARK: through the script

    /// `get` through the script, which resolves the generation in Redis.
    private func scriptGet(tenant: String, digest: KeyDigest, timeoutMs: Int? = nil, on eventLoop: any EventLoop)
        -> EventLoopFuture<Read?>
    {
        let arguments = SharedTierScripts.call(SharedTierScripts.get, tenant: tenant, [Array(digest.base64URL.utf8)])
        return run(arguments, timeoutMs: timeoutMs, on: eventLoop, Self.scriptRead).map { result in
            guard let read = result ?? nil else { return nil }
            return self.finishRead(read, tenant: tenant, on: eventLoop)
        }
    }

    /// The token through the `get` script, reading no entry (`-` is no digest).
    private func scriptToken(tenant: String, timeoutMs: Int? = nil, on eventLoop: any EventLoop)
        -> EventLoopFuture<Token?>
    {
        let arguments = SharedTierScripts.call(SharedTierScripts.get, tenant: tenant, [Array("-".utf8)])
        return run(arguments, timeoutMs: timeoutMs, on: eventLoop, Self.scriptRead).map { result in
            guard let token = (result ?? nil)?.token, self.admitted(token, tenant: tenant, on: eventLoop) else {
                return nil
            }
            return token
        }
    }

    /// The `get` script's answer `{value or nil, fence, generation}`. A value Redis holds that
    /// makes no sense (a generation of "-1") is this tenant's miss (nil), not a failure of the
    /// tier that would open the breaker for every tenant.
    @Sendable private static func scriptRead(_ reply: RedisConnection.Reply) throws -> Read? {
        switch reply {
        case .array(let items) where items.count == 3:
            guard case .string(let fence) = items[1], case .string(let generationText) = items[2],
                let generation = Self.generation(generationText)
            else { return nil }
            let token = Token(fence: fence, generation: generation)
            if case .string(let bytes) = items[0] { return Read(value: bytes, token: token) }
            return Read(value: nil, token: token)
        case .error(let message): throw EdgeError(.redisFailure, "GET: \(message)")
        default: throw EdgeError(.redisFailure, "GET: unexpected reply")
        }
    }

    /// A read whose generation is not below the highest seen, counted; nil otherwise.
    private func finishRead(_ read: Read, tenant: String, on eventLoop: any EventLoop) -> Read? {
        guard admitted(read.token, tenant: tenant, on: eventLoop) else { return nil }
        if let value = read.value {
            counters.hits.add(1, ordering: .relaxed)
            counters.bytesRead.add(value.count, ordering: .relaxed)
        } else {
            counters.misses.add(1, ordering: .relaxed)
        }
        return read
    }

    // MARK: plain reads

    /// What a plain read learned.
    enum PlainRead<Answer: Sendable>: Sendable {
        case answer(Answer)
        /// Redis answered nonsense for this tenant (a generation of "-1"): a miss.
        case nonsense
        /// The generation moved or `MGET` is not allowed: the script reads it.
        case askScript
    }

    private static let mget = Array("MGET".utf8)

    /// A reply that is not the `MGET` array: `NOPERM` turns plain reads off for a while (and is no
    /// failure of the tier); anything else is one.
    private func refusedOrFailed<Answer>(_ reply: RedisConnection.Reply) throws -> PlainRead<Answer> {
        guard case .error(let message) = reply else { throw EdgeError(.redisFailure, "MGET: unexpected reply") }
        guard message.hasPrefix("NOPERM") else { throw EdgeError(.redisFailure, "MGET: \(message)") }
        let now = clock.now()
        let previous = plainReadsRetryAt.exchange(Int.saturating(now + Self.plainReadPause), ordering: .relaxed)
        if Double(previous) <= now {
            logger.warning(
                "Redis refused MGET (an ACL from before it): L2 reads use the get script; re-apply `edgectl redis acl`",
                metadata: ["reply": "\(message.prefix(80))"])
        }
        return .askScript
    }

    /// Seconds reads stay on the script after a `NOPERM`, before a plain read is tried again.
    static let plainReadPause = 60.0

    /// A token from `MGET` items: a missing fence or generation reads as "0", as in the scripts.
    private static func token(fence: RedisConnection.Reply, generation: RedisConnection.Reply) -> Token? {
        guard let fence = textOrZero(fence), let text = textOrZero(generation), let value = Self.generation(text)
        else { return nil }
        return Token(fence: fence, generation: value)
    }

    private static func textOrZero(_ item: RedisConnection.Reply) -> [UInt8]? {
        switch item {
        case .string(let bytes): return bytes
        case .null: return zeroText
        default: return nil
        }
    }

    /// "0", made once: a tenant with no purge yet has no fence, and every read would make it.
    private static let zeroText = Array("0".utf8)

    /// Milliseconds of `timeout_ms` left since `started` for the script that follows a plain read;
    /// nil (the read is a miss) when less than a quarter is: a call given a sliver of the timeout
    /// would time out for our own reason, and a timeout counts against the breaker every tenant
    /// of this Redis shares.
    private func timeLeft(since started: NIODeadline) -> Int? {
        let left = timeoutMs - Int((NIODeadline.now() - started).nanoseconds / 1_000_000)
        return left >= max(1, timeoutMs / 4) ? left : nil
    }
}
