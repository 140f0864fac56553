import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// The Redis tier's connections: `perLoop` connections on each event loop that calls the tier
/// (`RedisLoopConnection`), used round-robin, each made on first use and made again after it
/// failed. An event loop that is a worker lane finds its connections without a lock; any other
/// caller (a background task, a test's loop) finds them in a locked table by event loop.
///
/// Replaced hiredis async connections on poll-loop threads of their own: each call crossed to that
/// thread and back (a pipe write, an eventfd wake, a promise completed from another thread), which
/// on 2 cores was most of an L2 hit's cost (docs/decisions.md, 53).
final class SharedTierConnections: Sendable {
    private let endpoint: RedisEndpoint
    private let address: RedisPrimaryAddress
    private let timeoutMs: Int
    private let perLoop: Int
    private let maxReplyBytes: Int
    private let laneSlots = LaneLocal<LoopSlots>()
    private let otherSlots = Mutex<[ObjectIdentifier: LoopSlots]>([:])
    /// Every `LoopSlots` made, lane or not, for `closeStalled` and `shutdown`.
    private let made = Mutex<[LoopSlots]>([])
    /// Set by `shutdown`: later calls fail at once and connect nothing.
    private let isShut = Atomic<Bool>(false)
    /// Calls that waited for a connection to be made (none was ready on their event loop).
    let connectionWaits = Atomic<Int>(0)

    /// - Parameters:
    ///   - endpoint: credentials and database; its host and port are `address`'s at each connect.
    init(endpoint: RedisEndpoint, address: RedisPrimaryAddress, perLoop: Int, timeoutMs: Int, maxReplyBytes: Int) {
        self.endpoint = endpoint
        self.address = address
        self.timeoutMs = timeoutMs
        self.perLoop = max(1, perLoop)
        self.maxReplyBytes = maxReplyBytes
    }

    /// A call's deadline: `expire` runs on the call's event loop at `deadline` unless `once` was
    /// claimed first (the call was answered or failed).
    struct Expiry: Sendable {
        let deadline: NIODeadline
        let once: Once
        let expire: @Sendable () -> Void
    }

    /// Calls `body` on `eventLoop` with one of its connections, made first if needed (within
    /// `timeout_ms`), or with the error that kept it from being made; `expiry` is kept in the
    /// loop's `CallDeadlines` meanwhile.
    func withConnection(
        on eventLoop: any EventLoop, expiry: Expiry,
        _ body: @escaping @Sendable (Result<RedisLoopConnection, any Error>) -> Void
    ) {
        guard !isShut.load(ordering: .acquiring) else {
            return body(.failure(EdgeError(.redisFailure, "the Redis tier was shut down")))
        }
        if eventLoop.inEventLoop, let slots = laneSlots.withValue(make: { makeSlots(eventLoop) }, { $0 }) {
            return slots.next(expiry, body)
        }
        let slots = otherSlots.withLock { table in
            if let slots = table[ObjectIdentifier(eventLoop)] { return slots }
            let made = makeSlots(eventLoop)
            table[ObjectIdentifier(eventLoop)] = made
            return made
        }
        if eventLoop.inEventLoop { return slots.next(expiry, body) }
        eventLoop.execute { slots.next(expiry, body) }
    }

    /// Closes `eventLoop`'s connections that have commands waiting and have heard nothing from
    /// Redis for twice `timeout_ms` (a call on them just timed out): the next call reconnects. Twice,
    /// so a Redis that pauses a little longer than a timeout (a fork) keeps its connections.
    func closeStalled(on eventLoop: any EventLoop) {
        eventLoop.assertInEventLoop()
        for slots in made.withLock({ $0 }) where slots.eventLoop === eventLoop {
            slots.closeStalled(after: .milliseconds(2 * Int64(timeoutMs)))
        }
    }

    private func makeSlots(_ eventLoop: any EventLoop) -> LoopSlots {
        let slots = newSlots(eventLoop)
        made.withLock { $0.append(slots) }
        return slots
    }

    private func newSlots(_ eventLoop: any EventLoop) -> LoopSlots {
        let (template, address, timeoutMs, maxReplyBytes) = (endpoint, self.address, self.timeoutMs, maxReplyBytes)
        return LoopSlots(
            eventLoop: eventLoop, count: perLoop, epoch: { address.epoch },
            waited: { [weak self] in self?.connectionWaits.add(1, ordering: .relaxed) },
            expired: { [weak self] in self?.closeStalled(on: eventLoop) }
        ) {
            guard let (primary, epoch) = address.current() else {
                address.suspect()
                return eventLoop.makeFailedFuture(EdgeError(.redisFailure, "no sentinel has named the primary yet"))
            }
            var endpoint = template
            (endpoint.host, endpoint.port) = (primary.host, primary.port)
            let opened = RedisLoopConnection.open(
                endpoint, timeoutMs: timeoutMs, maxReplyBytes: maxReplyBytes, checkRole: address.followsSentinel,
                epoch: epoch, on: eventLoop)
            opened.whenFailure { _ in address.suspect() }
            return opened
        }
    }

    func shutdown() async {
        isShut.store(true, ordering: .releasing)
        for slots in made.withLock({ $0 }) { try? await slots.eventLoop.submit { slots.closeAll() }.get() }
    }
}

/// One event loop's connections and the round-robin over them; touched only on that loop.
private final class LoopSlots: @unchecked Sendable {
    private enum Slot {
        case empty
        case connecting(EventLoopFuture<RedisLoopConnection>)
        case ready(RedisLoopConnection)
    }

    let eventLoop: any EventLoop
    private var slots: [Slot]
    private var nextIndex = 0
    private let open: () -> EventLoopFuture<RedisLoopConnection>
    /// The primary's epoch now: a connection made at another is closed at its next use.
    private let epoch: () -> Int
    /// Called when a call has to wait for a connection being made.
    private let waited: () -> Void
    private let deadlines: CallDeadlines

    /// `expired`: after calls timed out (closes the loop's connections that stalled).
    init(
        eventLoop: any EventLoop, count: Int, epoch: @escaping () -> Int, waited: @escaping () -> Void,
        expired: @escaping () -> Void, open: @escaping () -> EventLoopFuture<RedisLoopConnection>
    ) {
        self.eventLoop = eventLoop
        self.slots = Array(repeating: .empty, count: count)
        self.epoch = epoch
        self.waited = waited
        self.open = open
        deadlines = CallDeadlines(eventLoop: eventLoop, afterExpiring: expired)
    }

    func next(
        _ expiry: SharedTierConnections.Expiry,
        _ body: @escaping @Sendable (Result<RedisLoopConnection, any Error>) -> Void
    ) {
        eventLoop.assertInEventLoop()
        deadlines.add(expiry.deadline, once: expiry.once, expire: expiry.expire)
        let index = nextIndex % slots.count
        nextIndex &+= 1
        switch slots[index] {
        case .ready(let connection) where connection.isUsable && connection.epoch == epoch():
            body(.success(connection))
        case .connecting(let pending):
            waited()
            deliver(pending, to: body)
        case .ready, .empty:
            waited()
            if case .ready(let stale) = slots[index] { stale.close() }  // failed, or the primary moved
            let pending = open()
            slots[index] = .connecting(pending)
            pending.whenComplete { [self] result in
                guard case .connecting(let current) = slots[index], current === pending else {
                    if case .success(let connection) = result { connection.close() }  // closed meanwhile
                    return
                }
                if case .success(let connection) = result {
                    slots[index] = .ready(connection)
                } else {
                    slots[index] = .empty
                }
            }
            deliver(pending, to: body)
        }
    }

    /// Hands over a connection once made, unless the primary moved while it was being made: a
    /// connection to the old primary (which may still say `master` for a moment) must take no call.
    private func deliver(
        _ pending: EventLoopFuture<RedisLoopConnection>,
        to body: @escaping @Sendable (Result<RedisLoopConnection, any Error>) -> Void
    ) {
        let epoch = self.epoch
        pending.whenComplete { result in
            if case .success(let connection) = result, connection.epoch != epoch() {
                connection.close()
                return body(.failure(EdgeError(.redisFailure, "the L2 primary moved while connecting")))
            }
            body(result)
        }
    }

    func closeStalled(after timeout: TimeAmount) {
        for case .ready(let connection) in slots { connection.closeIfStalled(after: timeout) }
    }

    /// Closes every connection, ready or being made (those close as they complete).
    func closeAll() {
        for case .ready(let connection) in slots { connection.close() }
        slots = slots.map { _ in .empty }
    }
}
