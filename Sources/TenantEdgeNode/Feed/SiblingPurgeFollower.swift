import Logging
import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// Keeps this node's L1 in step with purges made on sibling nodes of the region: subscribes to
/// the tenants' `te:<tenant>:purge:<database>` channels on their Redis (the purge scripts publish a
/// `PurgeNotice` atomically with each purge) and applies each notice to L1.
///
/// Pub/sub delivers at most once, so a connection that drops may lose notices. After every
/// (re)subscription the follower reads each tenant's purge fence; a tenant whose fence moved while
/// the subscription was down has its whole L1 dropped: coarser than the lost purge, never staler.
/// A follower made for a new tenant table starts from the fences its predecessor knew, so purges made
/// between the table swap and its subscription are caught the same way; a tenant with no fence known
/// is dropped too unless its L1 is empty. Either way the node then acknowledges the fence it read, so
/// the purge status shows it covered the purges it never heard of.
///
/// `run` follows until `stop` (or cancellation): it subscribes on a thread pool of its own (hiredis
/// blocks while it connects), waits while the subscription lives, and after a failure or a lost
/// connection tries again after half a second on the injected clock. Each failed attempt in a row
/// doubles the time each step may take (up to `longestStepMs`): a Redis or a node too slow for
/// `timeout_ms` (a loaded machine, a sanitizer build) once failed every attempt at the same bound, for
/// good, and heard no sibling's purge. `isSubscribed` and the `edge_sibling_purge_subscriptions_down`
/// gauge show it. `SiblingFollowers` runs it.
final class SiblingPurgeFollower: Sendable {
    /// Applies a sibling's notice to `tenant`'s L1; how many entries went. Runs outside the lock.
    typealias Apply = @Sendable (_ tenant: String, _ notice: PurgeNotice) -> Int
    /// Drops `tenant`'s L1 when purges may have been missed; `change` says how the fence compares
    /// with the one known (moved: the caller drops L1; none known: the caller drops L1 unless it is
    /// empty); how many entries went. Runs outside the lock: after a Redis restarted empty every
    /// tenant's L1 goes, and notices must not wait for that.
    typealias Drop = @Sendable (_ tenant: String, _ change: PurgeFenceResync.Change) -> Int
    /// This node has applied `tenant`'s purges up to `fence` (`removed` entries went): after a notice
    /// (`change` nil) or a resync. The caller hands the acknowledgement over; it must not block.
    /// Runs under the follower's lock, after the L1 work it reports, so every acknowledgement is
    /// handed over in one order: a resync's `.back` one, which may replace a higher one, counts every
    /// notice acknowledged before it. Handed over after the lock, it once replaced a notice's
    /// acknowledged in between (the first purge after a Redis restarted empty, docs/reliability.md).
    typealias Acknowledge =
        @Sendable (
            _ tenant: String, _ fence: Int, _ removed: Int, _ change: PurgeFenceResync.Change?
        ) -> Void

    /// The Redis to subscribe on now and the epoch of the primary's address it belongs to (it moves
    /// with each Sentinel switch); nil while unknown.
    typealias Primary = @Sendable () -> (endpoint: RedisEndpoint, epoch: Int)?
    private let primary: Primary
    private let tenants: [String]
    private let nodeID: String
    private let timeoutMs: Int
    private let apply: Apply
    private let drop: Drop
    private let acknowledge: Acknowledge
    private let clock: any CacheClock
    private let connector = NIOThreadPool(numberOfThreads: 1)
    private let logger: Logger
    /// The live subscription, the last fence seen per tenant, and whether the follower stopped.
    /// `heard`: the highest fence per tenant whose notice arrived since this attempt's fences were
    /// about to be read; `acknowledged`: the same for notices acknowledged (both nil outside that stretch).
    private let state = Mutex<
        (
            connection: RedisAsyncConnection?, fences: [String: Int], stopped: Bool, heard: [String: Int]?,
            acknowledged: [String: Int]?
        )
    >((nil, [:], false, nil, nil))
    /// Whether the subscription is confirmed and its fences were read; failed attempts since the last one.
    private let progress = Mutex<(subscribed: Bool, failures: Int)>((false, 0))
    /// Wakes `run` when the subscription is lost or the follower stops.
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    static let retryInterval = 0.5
    /// The most a step of a subscription attempt may take, however many attempts failed before it.
    static let longestStepMs = 8000

    init(
        primary: @escaping Primary, tenants: [String], nodeID: String, timeoutMs: Int,
        clock: any CacheClock,
        logger: Logger, knownFences: [String: Int] = [:],
        apply: @escaping Apply, drop: @escaping Drop, acknowledge: @escaping Acknowledge
    ) {
        self.primary = primary
        self.tenants = tenants
        self.nodeID = nodeID
        self.timeoutMs = max(timeoutMs, 500)
        self.clock = clock
        self.logger = logger
        self.apply = apply
        self.drop = drop
        self.acknowledge = acknowledge
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.fences = knownFences.filter { tenants.contains($0.key) } }
        connector.start()
    }

    /// The last fence seen per tenant: handed to the follower of the next tenant table.
    var knownFences: [String: Int] { state.withLock { $0.fences } }

    private var stopped: Bool { state.withLock { $0.stopped } }

    /// True while a confirmed subscription lives: this node hears its siblings' purges.
    var isSubscribed: Bool { progress.withLock { $0.subscribed } && state.withLock { $0.connection != nil } }

    /// The bound for each step of the next attempt: `timeout_ms` (at least 500 ms), doubled per
    /// failed attempt in a row, at most `longestStepMs`.
    static func stepTimeoutMs(base: Int, failures: Int) -> Int {
        let base = max(base, 1)
        let ceiling = max(base, longestStepMs)
        var step = base
        for _ in 0..<min(max(failures, 0), 16) where step < ceiling { step = min(step * 2, ceiling) }
        return step
    }

    /// Subscribes, and subscribes again whenever the subscription is lost, until `stop`.
    func run() async {
        await withTaskCancellationHandler {
            var wakes = wakeUps.makeAsyncIterator()
            while !stopped {
                let failures = progress.withLock { $0.failures }
                let stepMs = Self.stepTimeoutMs(base: timeoutMs, failures: failures)
                do {
                    try await connector.runIfActive { [self] in try subscribe(stepMs: stepMs) }
                    progress.withLock { $0 = (true, 0) }
                    _ = await wakes.next()  // until the connection is lost, or the follower stops
                    progress.withLock { $0.subscribed = false }
                } catch {
                    progress.withLock { $0 = (false, failures + 1) }
                    // Once is a blip; three in a row is worth an operator's look (then every twentieth).
                    let level: Logger.Level = failures == 2 || (failures > 2 && failures % 20 == 2) ? .warning : .debug
                    logger.log(
                        level: level, "sibling purge subscription failed; retrying",
                        metadata: ["error": "\(error)", "attempts": "\(failures + 1)", "step_timeout_ms": "\(stepMs)"])
                    // Taken out and released outside the lock: its last release runs its callbacks,
                    // and `onLost` takes the lock (a subscription that timed out while Redis stalled
                    // trapped on a recursive lock here; IsolationUnderChangeTests found it).
                    let failed = state.withLock { state in
                        defer { state.connection = nil }
                        return state.connection
                    }
                    _ = failed
                }
                if stopped { break }
                do { try await clock.sleep(seconds: Self.retryInterval) } catch { break }
            }
        } onCancel: {
            state.withLock { $0.stopped = true }
            wake.yield()
        }
        await release()
    }

    /// Drops the subscription so `run` makes a new one (on the primary as it is now) and compares
    /// fences again: after a failover, the old primary may live on, cut off, hearing nothing. Called
    /// once the new address is published (`SiblingFollowers.resubscribeAll`); a subscription being
    /// made meanwhile, with no connection to drop yet, is caught by its own epoch check.
    func resubscribe() {
        let dropped = state.withLock { state in
            defer { state.connection = nil }
            return state.connection
        }
        guard dropped != nil else { return }
        wake.yield()
        _ = dropped  // released here, outside the lock (its last release may run its callbacks)
    }

    /// Ends `run`: the subscription is dropped and the connector's thread stops.
    func stop() async {
        state.withLock { $0.stopped = true }
        wake.yield()
        await release()
    }

    private func release() async {
        // Released outside the lock: a connection's last release may run its callbacks right here.
        let connection = state.withLock { state in
            defer { state.connection = nil }
            return state.connection
        }
        _ = connection
        try? await connector.shutdownGracefully()
    }

    /// On the connector thread: subscribe, wait for every confirmation, then compare fences.
    private func subscribe(stepMs: Int) throws(EdgeError) {
        guard let (endpoint, epoch) = primary() else {
            throw EdgeError(.redisFailure, "the L2 primary is not known yet")
        }
        let connection = try RedisAsyncConnection.open(endpoint, timeoutMs: stepMs)
        // Current before it subscribes, so a loss at any moment from here wakes `run`; the one it
        // replaces is released outside the lock (its last release may run callbacks).
        // What was known is taken with it, and notices from here on are counted apart
        // (`PurgeFenceResync`): a notice can arrive as soon as the first channel is confirmed, and one
        // taken into `known` would hide purges missed before it (a helper's review).
        let (previous, known) = state.withLock { state in
            defer {
                state.connection = connection
                state.heard = [:]
                state.acknowledged = [:]
            }
            return (state.connection, state.fences)
        }
        _ = previous
        // Weak: the subscription's callbacks live inside the connection they refer to.
        try connection.subscribeConfirmed(
            tenants.map { PurgeNotice.channel(tenant: $0, database: endpoint.database) }, timeoutMs: stepMs,
            onMessage: { [self, weak connection] channel, payload in
                received(channel: channel, payload: payload, database: endpoint.database, on: connection)
            },
            onLost: { [self, weak connection] in
                let wasCurrent = state.withLock { state -> Bool in
                    guard let connection, state.connection === connection else { return false }
                    state.connection = nil
                    return true
                }
                if wasCurrent { wake.yield() }
            })
        let reader = try RedisConnection.open(endpoint, timeoutMs: stepMs)
        let replies = try reader.pipeline(tenants.map { [Array("GET".utf8), RedisTier.tenantKey($0, "fence")] })
        // The primary moved while this subscribed, before a switch could find this connection to drop:
        // it may be the old primary, cut off and hearing nothing, whose fences must not count. `run`
        // tries again on the new one (this once left a follower on the old primary for good).
        guard primary()?.epoch == epoch else {
            throw EdgeError(.redisFailure, "the L2 primary moved while the purge subscription was made")
        }
        // An error reply (loading, no permission) says nothing about any fence: retry the subscription.
        // A value that is no number is one tenant's key damaged: that tenant counts as moved (its L1
        // goes), and the others follow on; one bad key must not stop every tenant's purges.
        var read: [(tenant: String, fence: Int?)] = []
        for (tenant, reply) in zip(tenants, replies) {
            switch reply {
            case .null: read.append((tenant, 0))
            case .string(let bytes):
                let fence = Int(String(decoding: bytes, as: UTF8.self)).flatMap { $0 >= 0 ? $0 : nil }
                read.append((tenant, fence))
            default: throw EdgeError(.redisFailure, "unexpected reply to the purge fence of '\(tenant)'")
            }
        }
        let resyncs = state.withLock { state in
            let outcome = PurgeFenceResync.compare(known: known, read: read, heard: state.heard ?? [:])
            state.heard = nil
            for (tenant, fence) in outcome.fences { state.fences[tenant] = fence }
            return outcome.resyncs
        }
        let removed = resyncs.map { drop($0.tenant, $0.change) }
        state.withLock { state in
            defer { state.acknowledged = nil }
            for (resync, removed) in zip(resyncs, removed) {
                let fence = max(resync.fence, state.acknowledged?[resync.tenant] ?? 0)
                acknowledge(resync.tenant, fence, removed, resync.change)
            }
        }
        for resync in resyncs where resync.change != .unknown {
            logger.info(
                "purges may have been missed while the subscription was down; L1 dropped",
                metadata: ["tenant": "\(resync.tenant)", "fence": "\(resync.fence)", "change": "\(resync.change)"])
        }
    }

    /// A notice on `connection` (nil once it is gone). It counts in the resync's fence only when it
    /// came on the current subscription and was heard within its stretch: a late one from a dropped
    /// connection is in the fences `known` already, and raising a `.back` acknowledgement to it would
    /// hand the old numbering to a Redis that restarted (a helper's review).
    private func received(channel: String, payload: [UInt8], database: Int, on connection: RedisAsyncConnection?) {
        guard let tenant = PurgeNotice.tenant(ofChannel: channel, database: database),
            let notice = PurgeNotice(payload: payload)
        else { return }
        let inStretch = state.withLock { state in
            state.fences[tenant] = max(state.fences[tenant] ?? 0, notice.fence)
            if var heard = state.heard {
                heard[tenant] = max(heard[tenant] ?? 0, notice.fence)
                state.heard = heard
            }
            return state.acknowledged != nil && connection != nil && state.connection === connection
        }
        guard notice.node != nodeID else { return }
        let removed = apply(tenant, notice)
        state.withLock { state in
            if inStretch, var acknowledged = state.acknowledged {
                acknowledged[tenant] = max(acknowledged[tenant] ?? 0, notice.fence)
                state.acknowledged = acknowledged
            }
            acknowledge(tenant, notice.fence, removed, nil)
        }
    }
}
