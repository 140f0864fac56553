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
    private let timeoutMs: Int
    private let perLoop: Int
    private let maxReplyBytes: Int
    private let laneSlots = LaneLocal<LoopSlots>()
    private let otherSlots = Mutex<[ObjectIdentifier: LoopSlots]>([:])

    init(endpoint: RedisEndpoint, perLoop: Int, timeoutMs: Int, maxReplyBytes: Int) {
        self.endpoint = endpoint
        self.timeoutMs = timeoutMs
        self.perLoop = max(1, perLoop)
        self.maxReplyBytes = maxReplyBytes
    }

    /// Calls `body` on `eventLoop` with one of its connections, made first if needed (within
    /// `timeout_ms`), or with the error that kept it from being made.
    func withConnection(
        on eventLoop: any EventLoop, _ body: @escaping @Sendable (Result<RedisLoopConnection, any Error>) -> Void
    ) {
        if eventLoop.inEventLoop, let slots = laneSlots.withValue(make: { makeSlots(eventLoop) }, { $0 }) {
            return slots.next(body)
        }
        let slots = otherSlots.withLock { table in
            if let slots = table[ObjectIdentifier(eventLoop)] { return slots }
            let made = makeSlots(eventLoop)
            table[ObjectIdentifier(eventLoop)] = made
            return made
        }
        if eventLoop.inEventLoop { return slots.next(body) }
        eventLoop.execute { slots.next(body) }
    }

    /// Closes `eventLoop`'s connections that have commands waiting and have heard nothing from
    /// Redis for `timeout_ms` (a call on them just timed out): the next call reconnects.
    func closeStalled(on eventLoop: any EventLoop) {
        eventLoop.assertInEventLoop()
        let slots =
            laneSlots.withValue(make: { nil }, { $0 }) ?? otherSlots.withLock { $0[ObjectIdentifier(eventLoop)] }
        guard let slots, slots.eventLoop === eventLoop else { return }
        slots.closeStalled(after: .milliseconds(Int64(timeoutMs)))
    }

    private func makeSlots(_ eventLoop: any EventLoop) -> LoopSlots {
        let (endpoint, timeoutMs, maxReplyBytes) = (self.endpoint, self.timeoutMs, self.maxReplyBytes)
        return LoopSlots(eventLoop: eventLoop, count: perLoop) {
            RedisLoopConnection.open(endpoint, timeoutMs: timeoutMs, maxReplyBytes: maxReplyBytes, on: eventLoop)
        }
    }

    func shutdown() async {
        let all = laneSlots.madeValues + otherSlots.withLock { Array($0.values) }
        for slots in all { try? await slots.eventLoop.submit { slots.closeAll() }.get() }
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

    init(eventLoop: any EventLoop, count: Int, open: @escaping () -> EventLoopFuture<RedisLoopConnection>) {
        self.eventLoop = eventLoop
        self.slots = Array(repeating: .empty, count: count)
        self.open = open
    }

    func next(_ body: @escaping @Sendable (Result<RedisLoopConnection, any Error>) -> Void) {
        eventLoop.assertInEventLoop()
        let index = nextIndex % slots.count
        nextIndex &+= 1
        switch slots[index] {
        case .ready(let connection) where connection.isUsable:
            body(.success(connection))
        case .connecting(let pending):
            pending.whenComplete(body)
        case .ready, .empty:
            let pending = open()
            slots[index] = .connecting(pending)
            pending.whenComplete { [self] result in
                guard case .connecting(let current) = slots[index], current === pending else { return }
                if case .success(let connection) = result {
                    slots[index] = .ready(connection)
                } else {
                    slots[index] = .empty
                }
            }
            pending.whenComplete(body)
        }
    }

    func closeStalled(after timeout: TimeAmount) {
        for case .ready(let connection) in slots { connection.closeIfStalled(after: timeout) }
    }

    func closeAll() {
        for case .ready(let connection) in slots { connection.close() }
        slots = slots.map { _ in .empty }
    }
}
