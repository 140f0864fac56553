import Foundation
import Logging
import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The node's side of the invalidation feed: a thread of its own long-polls
/// `GET /v1/invalidations?after=<cursor>&wait=<poll_wait_s>` through libcurl (peer verified against
/// `origin.ca_file`, never switched off), applies the events in order to L1 and L2, and persists the
/// cursor after each batch, so a restart resumes where it stopped and misses nothing. `410` makes
/// it purge every tenant whole and resume from the origin's head. Failures back off with jitter
/// (0.2 s doubling to 5 s). The time since the origin last answered is the invalidation lag.
package final class InvalidationFeed: Sendable {
    /// Largest feed answer the node downloads: four times what the origin puts in one
    /// (`OriginResponder.batchBytes`), so even an answer of one cap plus one maximal purge fits.
    package static let maxAnswerBytes = 16 << 20

    private let runtime: EdgeRuntime
    private let origin: EdgeConfig.Origin
    private let bundles: ConfigBundleGate
    private let token: String  // never logged
    let cursorPath: String
    private let state: Mutex<(cursor: Int, stopped: Bool, failures: Int)>
    private let finished = DispatchSemaphore(value: 0)

    init(runtime: EdgeRuntime, origin: EdgeConfig.Origin, bundles: ConfigBundleGate) throws(EdgeError) {
        self.runtime = runtime
        self.origin = origin
        self.bundles = bundles
        guard let path = origin.tokenFile, let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "origin.token_file: cannot read the node token")
        }
        token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw EdgeError(.invalidConfig, "origin.token_file: the file is empty") }
        cursorPath = runtime.config.stateDir + "/feed.cursor"
        // A cursor that is no sequence number (a torn or edited file) starts over from 0: the origin
        // then answers what it has, or `410` and a purge of everything, never a stuck feed.
        let saved = FileManager.default.contents(atPath: cursorPath).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
            .flatMap { (0...FeedAnswer.largestSequence).contains($0) ? $0 : nil } ?? 0
        state = Mutex((saved, false, 0))
        runtime.invalidationCursor.store(saved, ordering: .relaxed)
        heard()  // start-up counts as heard: the lag counts from here
    }

    var cursor: Int { state.withLock { $0.cursor } }
    package var failures: Int { state.withLock { $0.failures } }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "invalidation-feed"
        thread.start()
    }

    /// Ends the long poll in flight and waits for the feed thread to finish.
    func stop() async {
        state.withLock { $0.stopped = true }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.finished.wait()
                continuation.resume()
            }
        }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func run() {
        guard let client = try? CurlClient() else { return runtime.logger.error("invalidation feed: libcurl unavailable") }
        var backoff = 0.2
        var reconnected = true  // pull the bundle first: a push may have been missed while the node was down
        while !stopped {
            if reconnected { reconnected = !pullBundle(client) }
            let after = cursor
            let url = "\(origin.url)/v1/invalidations?after=\(after)&wait=\(origin.pollWaitSeconds)"
            do {
                let response = try client.get(url, caFile: origin.caFile, headers: ["Authorization: Bearer \(token)"],
                                              timeoutMs: (origin.pollWaitSeconds + 5) * 1000, maxBodyBytes: Self.maxAnswerBytes,
                                              shouldAbort: { [self] in stopped })
                try handle(status: response.status, body: response.body, after: after)
                backoff = 0.2
                if state.withLock({ let hadFailed = $0.failures > 0; $0.failures = 0; return hadFailed }) { reconnected = true }
            } catch {
                if stopped { return }
                let streak = state.withLock { $0.failures += 1; return $0.failures }
                if streak == 1 || streak % 20 == 0 {
                    runtime.logger.warning("invalidation feed failed; retrying", metadata: ["error": "\(error.message)", "failures": "\(streak)"])
                }
                Thread.sleep(forTimeInterval: backoff * Double.random(in: 0.5...1.0))
                backoff = min(backoff * 2, 5)
            }
        }
    }

    private func handle(status: Int, body: [UInt8], after: Int) throws(EdgeError) {
        switch try FeedAnswer.parse(status: status, body: body, after: after) {
        case .events(let events, _):
            heard()
            guard let last = events.last else { return }
            for event in events { apply(event) }
            try persist(cursor: last.seq)
        case .expired(let head):
            heard()
            runtime.logger.warning("invalidation cursor expired at the origin; purging every tenant", metadata: ["cursor": "\(after)", "head": "\(head)"])
            for tenant in runtime.table.tenants { apply(InvalidationEvent(seq: head, purge: PurgeRequest(tenant: tenant.id, all: true), publishedAt: "")) }
            try persist(cursor: head)
        }
    }

    /// Tells the origin this node has erased a tenant (`POST /v1/erasures/<tenant>`), retrying in the
    /// background with backoff until the origin has it (up to about a minute).
    func confirmErasure(_ tenant: String) {
        let (origin, token, node, logger) = (self.origin, self.token, runtime.config.node.id, runtime.logger)
        DispatchQueue.global().async {
            let body = Array(#"{"node":\#(JSONText.quote(node))}"#.utf8)
            for attempt in 0..<10 {
                if attempt > 0 { Thread.sleep(forTimeInterval: min(10, 0.2 * Double(1 << attempt))) }
                guard let client = try? CurlClient(),
                      let response = try? client.request("POST", "\(origin.url)/v1/erasures/\(tenant)", body: body, caFile: origin.caFile,
                                                         headers: ["Authorization: Bearer \(token)", "Content-Type: application/json"])
                else { continue }
                if response.status == 200 { return }
            }
            logger.warning("the origin did not take the erasure confirmation", metadata: ["tenant": "\(tenant)"])
        }
    }

    /// Pulls this region's latest bundle and applies it if newer (a `409` means it already runs it).
    /// True when the origin answered (whatever it answered), false to try again on the next round.
    private func pullBundle(_ client: CurlClient) -> Bool {
        let url = "\(origin.url)/v1/config/bundle?region=\(runtime.config.node.region)"
        guard let response = try? client.get(url, caFile: origin.caFile, headers: ["Authorization: Bearer \(token)"],
                                             timeoutMs: 5000, maxBodyBytes: EdgeConfig.Limits.maxBundleBytes,
                                             shouldAbort: { [self] in stopped }) else { return false }
        guard response.status == 200 else { return true }  // 404: nothing published yet
        do {
            let version = try bundles.apply(body: response.body, signatureHeader: response.headers["edge-signature"], actor: "origin:pull")
            runtime.logger.info("pulled config bundle", metadata: ["version": "\(version)"])
        } catch where error.status == 409 {
            // Already running it (or newer).
        } catch {
            runtime.logger.warning("pulled bundle refused", metadata: ["reason": "\(error.reason)"])
        }
        return true
    }

    /// Applies one event to L1 and L2 and waits for it (this is the feed's own thread, not an event loop).
    private func apply(_ event: InvalidationEvent) {
        guard let cache = runtime.caches[event.purge.tenant] else { return }  // not a tenant of this node
        let eventLoop = runtime.eventLoop
        let removed = (try? runtime.purge(event.purge, cache: cache, on: eventLoop).wait()) ?? 0
        runtime.audit.record("purge", actor: "origin:feed", tenant: event.purge.tenant, details: [
            "seq": String(event.seq), "keys": String(event.purge.keys.count), "tags": String(event.purge.tags.count),
            "prefixes": String(event.purge.prefixes.count), "all": String(event.purge.all), "purged": String(removed),
        ])
    }

    private func heard() { runtime.invalidationHeardMs.store(Int(runtime.clock.now() * 1000), ordering: .relaxed) }

    private func persist(cursor: Int) throws(EdgeError) {
        try DurableFile.write(Array(String(cursor).utf8), to: cursorPath)
        state.withLock { $0.cursor = cursor }
        runtime.invalidationCursor.store(cursor, ordering: .relaxed)
    }
}
