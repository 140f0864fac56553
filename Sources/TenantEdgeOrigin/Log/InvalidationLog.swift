import Foundation
import Logging
import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// The invalidation log as the feeds read it: the window of recent events in memory, filled from
/// the store (`OriginStore`), which holds them durably and gives out their numbers. `append` returns
/// once the event is committed, so a `{"seq":N}` answer survives a crash. Events written by any
/// writer (another call here, a tenant removal, another replica on the same PostgreSQL) enter the
/// window through `catchUp`, in order, since it reads what follows the window's head from the store.
///
/// Long polls wait here: `wait(after:)` completes as soon as an event after the cursor exists.
final class InvalidationLog: Sendable {
    private let store: any OriginStore
    private let state: Mutex<State>
    private let clock: any CacheClock

    private struct State {
        var window: InvalidationWindow
        var waiters: [(after: Int, promise: EventLoopPromise<Void>)] = []
    }

    private let logger: Logger

    /// Loads the retained window from `store`.
    static func open(
        store: any OriginStore, retention: Int, clock: any CacheClock,
        logger: Logger = Logger(label: "tenantedge.origin")
    ) async throws(EdgeError) -> InvalidationLog {
        let head = try await store.head()
        // The window starts where the store's events do: it may hold fewer than `retention` (a
        // larger retention than when they were trimmed, an import of a compacted log).
        let first = try await store.events(after: max(0, head - retention), limit: 1).first?.seq ?? (head + 1)
        let log = InvalidationLog(
            store: store, window: InvalidationWindow(retention: retention, startingAfter: first - 1),
            clock: clock, logger: logger)
        try await log.catchUp()
        return log
    }

    private init(store: any OriginStore, window: InvalidationWindow, clock: any CacheClock, logger: Logger) {
        self.store = store
        self.clock = clock
        self.logger = logger
        state = Mutex(State(window: window))
    }

    var head: Int { state.withLock { $0.window.head } }

    /// Makes a purge durable and visible; its event.
    func append(_ purge: PurgeRequest) async throws(EdgeError) -> InvalidationEvent {
        let (_, events) = try await store.write(reading: [], publishedAt: AuditChain.timestamp(clock.now())) {
            _ throws(EdgeError) in (StoreWrite(purges: [purge]), ())
        }
        guard let event = events.first else { throw EdgeError(.io, "the store appended no event") }
        try? await catchUp()  // durable already: a failed read here is caught up by the next one
        return event
    }

    /// Takes every committed event after the window's head into the window, in order, and wakes the
    /// long polls they answer.
    /// When the store no longer holds the events that follow the window (this replica fell behind
    /// by more than the store keeps), the window starts again after the gap: a cursor inside it is
    /// told it expired, as it would be anywhere.
    ///
    /// A store whose head went back (PostgreSQL promoted a standby that missed the last commits, a
    /// restore) makes the window start again at the store's events: nodes whose cursor is above the
    /// new head are told it expired and purge everything, and new events are followed again. (Their
    /// numbers reuse the lost ones: a node that saw a lost event and polls only once the head passed
    /// it again cannot tell, which is why docs/operations.md asks for synchronous replication.)
    func catchUp() async throws(EdgeError) {
        let storeHead = try await store.head()
        if storeHead < head {
            let first = try await store.events(after: 0, limit: 1).first?.seq ?? (storeHead + 1)
            state.withLock { state in
                state.window = InvalidationWindow(
                    retention: state.window.retention,
                    startingAfter: max(first - 1, storeHead - state.window.retention),
                    byteBudget: state.window.byteBudget)
            }
            logger.warning(
                "the store's log head went back; the window starts again there", metadata: ["head": "\(storeHead)"])
        }
        while true {
            let after = head
            let events = try await store.events(after: after, limit: Self.catchUpPage)
            let (added, ready) = state.withLock { state -> (Int, [EventLoopPromise<Void>]) in
                if let first = events.first, first.seq > state.window.head + 1 {
                    state.window = InvalidationWindow(
                        retention: state.window.retention, startingAfter: first.seq - 1,
                        byteBudget: state.window.byteBudget)
                }
                var added = 0
                for event in events where event.seq == state.window.head + 1 {
                    let bytes = ((try? event.json.canonicalText)?.utf8.count ?? 0) + 16  // + the answer's framing
                    state.window.append(event, encodedBytes: bytes)
                    added += 1
                }
                let head = state.window.head
                let ready = state.waiters.filter { $0.after < head }.map(\.promise)
                state.waiters.removeAll { $0.after < head }
                return (added, ready)
            }
            for waiter in ready { waiter.succeed() }
            if events.count < Self.catchUpPage || added == 0 {
                caughtUpAt.store(Self.monotonicMilliseconds(), ordering: .relaxed)
                return
            }
        }
    }

    /// Events read from the store at a time (up to 256 KiB each: a page stays within a store call's deadline).
    static let catchUpPage = 100

    /// When the window last matched the store (monotonic milliseconds).
    private let caughtUpAt = Atomic<Int>(0)

    /// Whether the window matched the store within `milliseconds`: a replica cut off from a shared
    /// store answers feeds with `503` past that, so its nodes move to another replica instead of
    /// being told, from memory, that nothing happened.
    func isCurrent(within milliseconds: Int) -> Bool {
        Self.monotonicMilliseconds() - caughtUpAt.load(ordering: .relaxed) <= milliseconds
    }

    static func monotonicMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }

    /// The newest retained event of each tenant (compliance report).
    func lastEvents() -> [String: InvalidationEvent] {
        state.withLock { state in
            guard
                case .events(let events, _) = state.window.read(
                    after: state.window.oldest - 1, limit: state.window.retention)
            else { return [:] }
            var last: [String: InvalidationEvent] = [:]
            for event in events { last[event.purge.tenant] = event }
            return last
        }
    }

    func read(after cursor: Int, limit: Int, maxBytes: Int = .max) -> InvalidationWindow.Read {
        state.withLock { $0.window.read(after: cursor, limit: limit, maxBytes: maxBytes) }
    }

    /// Completes when an event after `cursor` exists, or after `seconds`, whichever is first.
    ///
    /// An event may land between the caller's read and this call; the promise is then completed at
    /// once. (It was dropped unfulfilled, which NIO's debug builds stop the process for as a leaked
    /// promise: an origin died so under a node long-polling while purges were published every few
    /// milliseconds, `cli-checks.sh`, "node kill -9 under traffic".)
    func wait(after cursor: Int, seconds: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let ready = state.withLock { state -> Bool in
            if state.window.head > cursor { return true }
            state.waiters.append((cursor, promise))
            return false
        }
        if ready {
            promise.succeed()
            return promise.futureResult
        }
        eventLoop.scheduleTask(in: .seconds(Int64(seconds))) {
            // Only a waiter still registered is completed here; `append` completes the others.
            let stillWaiting = self.state.withLock { state -> Bool in
                let before = state.waiters.count
                state.waiters.removeAll { $0.promise.futureResult === promise.futureResult }
                return state.waiters.count < before
            }
            if stillWaiting { promise.succeed() }
        }
        return promise.futureResult
    }

    /// Answers every waiting long poll now (with what there is), so a stopping origin does not hold
    /// connections open until their waits run out.
    func releaseWaiters() {
        let waiters = state.withLock { state in
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.promise)
        }
        for waiter in waiters { waiter.succeed() }
    }
}
