import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// What a tenant table swap leaves to do in the background, as a `Service`: erase from L2 the
/// tenants that left (or whose residency now excludes this region), retrying each until Redis has
/// none of their keys, on the injected clock; then stop the purge followers and Redis tiers the new
/// table no longer uses. A tier is shut only after the erasures that need it are done (a removed
/// `database` or `schema` tenant's own Redis), so every erasure can finish and be confirmed.
final class TenantRetirements: Service, Sendable {
    /// A tenant's data to remove from L2 (its L1 is emptied at the swap itself).
    struct Erasure: Sendable {
        var tenant: String
        var tier: RedisTier?
        /// The tenant left the tenant set: confirm the erasure to the origin once done.
        var confirm: Bool
    }

    /// One swap's leftovers.
    struct Job: Sendable {
        var erasures: [Erasure]
        var followers: [SiblingPurgeFollower]
        var tiers: [RedisTier]
        /// Seconds to let in-flight calls on the old tiers finish first.
        var grace: Double
    }

    private let region: String
    private let eventLoop: any EventLoop
    private let clock: any CacheClock
    private let audit: AuditLog
    private let logger: Logger
    private let jobs: AsyncStream<Job>
    private let jobInput: AsyncStream<Job>.Continuation
    /// Tiers handed over and not yet shut: shut at the latest when the service stops.
    private let unshut = Mutex<[ObjectIdentifier: RedisTier]>([:])
    /// Erasures running per tier, and who waits for a tier to have none: a tier is shut only when
    /// no erasure of any swap still needs it.
    private let erasing = Mutex<
        (counts: [ObjectIdentifier: Int], idle: [ObjectIdentifier: [CheckedContinuation<Void, Never>]])
    >(
        ([:], [:]))
    /// Tenants whose L2 erasure has not finished here, with how many erasures each: a tenant added
    /// back meanwhile must not read L2 until a generation drop of its own (`EdgeRuntime.activate`).
    private let erasingTenants = Mutex<[String: Int]>([:])
    /// Whether a tenant is served again (it returned while its erasure retried); set by the runtime.
    private let isServed = Mutex<(@Sendable (String) -> Bool)?>(nil)
    /// Called with a tenant's id once all its data is gone from this node (L1 and L2).
    private let erasureObserver = Mutex<(@Sendable (String) -> Void)?>(nil)

    init(region: String, eventLoop: any EventLoop, clock: any CacheClock, audit: AuditLog, logger: Logger) {
        self.region = region
        self.eventLoop = eventLoop
        self.clock = clock
        self.audit = audit
        self.logger = logger
        (jobs, jobInput) = AsyncStream.makeStream(of: Job.self)
    }

    func observeErasures(_ observer: @escaping @Sendable (String) -> Void) {
        erasureObserver.withLock { $0 = observer }
    }

    func checkServed(with check: @escaping @Sendable (String) -> Bool) { isServed.withLock { $0 = check } }

    /// Queues a swap's leftovers; callable from any thread.
    func submit(_ job: Job) {
        unshut.withLock { tiers in for tier in job.tiers { tiers[ObjectIdentifier(tier)] = tier } }
        erasing.withLock { state in
            for case let tier? in job.erasures.map(\.tier) { state.counts[ObjectIdentifier(tier), default: 0] += 1 }
        }
        erasingTenants.withLock { counts in
            for erasure in job.erasures where erasure.tier != nil { counts[erasure.tenant, default: 0] += 1 }
        }
        jobInput.yield(job)
    }

    /// Whether an L2 erasure of `tenant` is queued or running here.
    func isErasing(_ tenant: String) -> Bool { erasingTenants.withLock { $0[tenant] != nil } }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            // Each swap's leftovers on their own: one's grace period never holds up another's erasures.
            await withDiscardingTaskGroup { group in
                for await job in jobs { group.addTask { await self.perform(job) } }
            }
        }
        jobInput.finish()
        for tier in unshut.withLock({ $0.values }) { await tier.shutdown() }
    }

    private func perform(_ job: Job) async {
        for follower in job.followers { await follower.stop() }
        await withTaskGroup(of: Void.self) { group in
            for erasure in job.erasures { group.addTask { await self.erase(erasure) } }
            if job.grace > 0 { group.addTask { [clock] in try? await clock.sleep(seconds: job.grace) } }
            await group.waitForAll()
        }
        for tier in job.tiers {
            await idle(tier)
            unshut.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(tier)) }
            await tier.shutdown()
        }
    }

    /// Returns once no erasure runs on `tier`.
    private func idle(_ tier: RedisTier) async {
        let key = ObjectIdentifier(tier)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = erasing.withLock { state -> Bool in
                guard (state.counts[key] ?? 0) > 0 else { return true }
                state.idle[key, default: []].append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func finished(on tier: RedisTier) {
        let key = ObjectIdentifier(tier)
        let waiting = erasing.withLock { state -> [CheckedContinuation<Void, Never>] in
            let left = (state.counts[key] ?? 1) - 1
            state.counts[key] = left > 0 ? left : nil
            guard left <= 0 else { return [] }
            return state.idle.removeValue(forKey: key) ?? []
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Every key of the tenant in L2 goes (its generation dropped first, so nothing of it is read
    /// meanwhile), retried with backoff until Redis answers; then it is logged and audited, and a
    /// tenant that left is confirmed through the observer.
    private func erase(_ erasure: Erasure) async {
        if let tier = erasure.tier {
            defer {
                finished(on: tier)
                erasingTenants.withLock { counts in
                    let left = (counts[erasure.tenant] ?? 1) - 1
                    counts[erasure.tenant] = left > 0 ? left : nil
                }
            }
            var attempt = 0
            while !Task.isCancelled {
                // `gone` is checked in Redis against the generation this drop made: a late step finds
                // it moved once a returned tenant's own drop reached Redis first, and touches nothing
                // (one arriving before that drop still runs: docs/reliability.md, "Left open").
                if let drop = try? await tier.dropGeneration(tenant: erasure.tenant, on: eventLoop).get() {
                    let back = isServed.withLock { $0 }?(erasure.tenant) ?? false
                    let erased = try? await tier.erase(
                        tenant: erasure.tenant, back: back, generation: drop.count, on: eventLoop
                    ).get()
                    if erased == true { break }
                }
                attempt += 1
                do { try await clock.sleep(seconds: min(5, 0.2 * Double(1 << min(attempt, 5)))) } catch { break }
            }
            if Task.isCancelled {
                // Not kept across a restart: the origin's compliance report shows it unconfirmed.
                logger.warning("tenant erasure not finished before shutdown", metadata: ["tenant": "\(erasure.tenant)"])
                return
            }
        }
        guard erasure.confirm else {
            logger.info(
                "tenant data dropped: residency excludes this region", metadata: ["tenant": "\(erasure.tenant)"])
            audit.record("residency_dropped", actor: "node", tenant: erasure.tenant, details: ["region": region])
            return
        }
        logger.info("tenant erased from this node", metadata: ["tenant": "\(erasure.tenant)"])
        audit.record(
            "tenant_erased", actor: "node", tenant: erasure.tenant,
            details: ["tiers": erasure.tier == nil ? "memory" : "memory,redis"])
        erasureObserver.withLock { $0 }?(erasure.tenant)
    }
}
