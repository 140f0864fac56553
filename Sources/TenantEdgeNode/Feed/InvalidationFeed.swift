import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The node's side of the invalidation feed, a `Service`: it long-polls
/// `GET /v1/invalidations?after=<cursor>&wait=<poll_wait_s>` through libcurl (peer verified against
/// `origin.ca_file`, never switched off) and performs what `FeedFollower` decides: apply events in
/// order to L1 and L2, persist the cursor after each batch (so a restart resumes where it stopped
/// and misses nothing), purge every tenant on `410`, back off on failures, pull the bundle after
/// an outage. Backoffs wait on the injected clock. The time since the origin last answered is the
/// invalidation lag.
package final class InvalidationFeed: Service, Sendable {
    /// Largest feed answer the node downloads: four times what the origin puts in one
    /// (`OriginResponder.batchBytes`), so even an answer of one cap plus one maximal purge fits.
    package static let maxAnswerBytes = 16 << 20

    private let runtime: EdgeRuntime
    private let origin: EdgeConfig.Origin
    private let replicas: OriginReplicas
    private let bundles: ConfigBundleGate
    private let token: String  // never logged
    let cursorPath: String
    private let status: Mutex<(cursor: Int, failures: Int)>
    private let savedCursor: Int

    init(
        runtime: EdgeRuntime, origin: EdgeConfig.Origin, replicas: OriginReplicas, bundles: ConfigBundleGate
    ) throws(EdgeError) {
        self.replicas = replicas
        self.runtime = runtime
        self.origin = origin
        self.bundles = bundles
        token = try NodeToken.read(origin)
        cursorPath = runtime.config.stateDir + "/feed.cursor"
        // A cursor that is no sequence number (a torn or edited file) starts over from 0: the origin
        // then answers what it has, or `410` and a purge of everything, never a stuck feed.
        let saved =
            FileManager.default.contents(atPath: cursorPath).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
            .flatMap { (0...FeedAnswer.largestSequence).contains($0) ? $0 : nil } ?? 0
        savedCursor = saved
        status = Mutex((saved, 0))
        runtime.feedStatus.cursor.store(saved, ordering: .relaxed)
        heard()  // start-up counts as heard: the lag counts from here
    }

    var cursor: Int { status.withLock { $0.cursor } }
    package var failures: Int { status.withLock { $0.failures } }

    /// Follows the feed until the group shuts down gracefully (the poll in flight is aborted).
    package func run() async throws {
        let transfers = try CurlTransferQueue(label: "invalidation-feed")
        try await cancelWhenGracefulShutdown { [self] in
            var follower = FeedFollower(cursor: savedCursor)
            var action = follower.start()
            while !Task.isCancelled {
                action = await perform(action, with: &follower, transfers: transfers)
                status.withLock { $0 = (follower.cursor, follower.failures) }
            }
        }
    }

    /// Does what `action` says and reports the outcome to `follower`, returning its next action.
    private func perform(
        _ action: FeedFollower.Action, with follower: inout FeedFollower,
        transfers: CurlTransferQueue
    ) async -> FeedFollower.Action {
        switch action {
        case .pullBundle:
            let refusal = await pullBundle(transfers)
            let next = follower.bundlePulled(answered: refusal == nil)
            if let refusal, follower.pullFailures == 1 || follower.pullFailures % 20 == 0 {
                runtime.logger.warning(
                    "config bundle pull failed; polling on and trying again later",
                    metadata: ["reason": "\(refusal)", "failures": "\(follower.pullFailures)"])
            }
            return next
        case .poll(let after):
            // Holding for a bundle (decision 63): events for tenants the node cannot see yet would be
            // skipped while the cursor moved past them. Pull again instead, after a backoff.
            if runtime.awaitingBundle.load(ordering: .acquiring) {
                return follower.failed(reason: "waiting for the origin's config bundle")
            }
            let replica = replicas.current
            let url = "\(replica)/v1/invalidations?after=\(after)&wait=\(origin.pollWaitSeconds)"
            do {
                let response = try await transfers.request(
                    "GET", url, caFile: origin.caFile, headers: ["Authorization: Bearer \(token)"],
                    timeoutMs: (origin.pollWaitSeconds + 5) * 1000, maxBodyBytes: Self.maxAnswerBytes)
                // 200 and 410 are the feed's answers; anything else moves the node on.
                if OriginReplicas.isReplicaFailure(response.status, accepted: [200, 410]) { failedOver(from: replica) }
                let next = follower.received(status: response.status, body: response.body, after: after)
                if case .backOff = next {} else { heard() }
                return next
            } catch {
                failedOver(from: replica)
                return follower.failed(reason: error.message)
            }
        case .apply(let events, let cursor):
            for event in events { await apply(event) }
            return persisted(cursor, &follower)
        case .purgeEverything(let cursor, let expired):
            runtime.logger.warning(
                "invalidation cursor expired at the origin; purging every tenant",
                metadata: ["cursor": "\(expired)", "head": "\(cursor)"])
            for tenant in runtime.table.tenants {
                await apply(
                    InvalidationEvent(seq: cursor, purge: PurgeRequest(tenant: tenant.id, all: true), publishedAt: ""))
            }
            return persisted(cursor, &follower)
        case .backOff(let seconds, let report, let reason):
            runtime.feedStatus.failed()
            if let report {
                runtime.logger.warning(
                    "invalidation feed failed; retrying", metadata: ["error": "\(reason)", "failures": "\(report)"])
            }
            status.withLock { $0.failures = follower.failures }
            try? await runtime.clock.sleep(seconds: seconds * Double.random(in: 0.5...1.0))
            return follower.waited()
        }
    }

    /// Moves every origin call on to the next replica, and says so.
    private func failedOver(from replica: String) {
        guard replicas.failed(replica) else { return }
        runtime.logger.warning(
            "origin replica failed; following the next one",
            metadata: ["from": "\(replica)", "to": "\(replicas.current)"])
    }

    private func persisted(_ cursor: Int, _ follower: inout FeedFollower) -> FeedFollower.Action {
        do {
            try DurableFile.write(Array(String(cursor).utf8), to: cursorPath)
        } catch {
            return follower.persistFailed(reason: error.message)
        }
        runtime.feedStatus.cursor.store(cursor, ordering: .relaxed)
        return follower.applied()
    }

    /// Pulls this region's latest bundle and applies it if newer (a `409` means it already runs it).
    /// Nil when the origin answered with a bundle or `404`; otherwise why, to try again later.
    private func pullBundle(_ transfers: CurlTransferQueue) async -> String? {
        let replica = replicas.current
        let url = "\(replica)/v1/config/bundle?region=\(runtime.config.node.region)"
        let response: CurlClient.Response
        do {
            response = try await transfers.request(
                "GET", url, caFile: origin.caFile, headers: ["Authorization: Bearer \(token)"], timeoutMs: 5000,
                maxBodyBytes: EdgeConfig.Limits.maxBundleBytes)
        } catch {
            failedOver(from: replica)
            return error.message
        }
        if OriginReplicas.isReplicaFailure(response.status, accepted: [200, 404]) {
            failedOver(from: replica)
            return "the origin answered \(response.status)"
        }
        // 404: nothing published yet. While holding, anything short of a bundle applied is pulled again.
        guard response.status == 200 else { return holdingReason }
        do {
            let version = try bundles.apply(
                body: response.body, signatureHeader: response.headers["edge-signature"],
                actor: "origin:pull")
            runtime.logger.info("pulled config bundle", metadata: ["version": "\(version)"])
        } catch  where error.status == 409 {
            // Already running it (or newer).
        } catch {
            runtime.logger.warning("pulled bundle refused", metadata: ["reason": "\(error.reason)"])
        }
        return holdingReason
    }

    /// Why a pull that got an answer must still be tried again: the node holds for a bundle (decision 63).
    private var holdingReason: String? {
        runtime.awaitingBundle.load(ordering: .acquiring) ? "still waiting for a usable config bundle" : nil
    }

    /// Applies one event to L1 and L2 and waits for it.
    private func apply(_ event: InvalidationEvent) async {
        guard let cache = runtime.caches[event.purge.tenant] else { return }  // not a tenant of this node
        let removed = (try? await runtime.purge(event.purge, cache: cache, on: runtime.eventLoop).get()) ?? 0
        runtime.audit.record(
            "purge", actor: "origin:feed", tenant: event.purge.tenant,
            details: [
                "seq": String(event.seq), "keys": String(event.purge.keys.count),
                "tags": String(event.purge.tags.count),
                "prefixes": String(event.purge.prefixes.count), "all": String(event.purge.all),
                "purged": String(removed),
            ])
    }

    private func heard() { runtime.feedStatus.heard(at: runtime.clock.now()) }
}
