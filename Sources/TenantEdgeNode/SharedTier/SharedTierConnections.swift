import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// The Redis tier's connections: `count` hiredis async connections, each with a poll-loop thread
/// of its own, used round-robin. Connecting blocks (name lookup, `AUTH`, `SELECT`), so it runs on a
/// one-thread pool and never on an event loop; calls that find their connection being made wait for
/// it within their own deadline. A connection that fails is dropped and made again on next use.
final class SharedTierConnections: Sendable {
    private enum Slot: Sendable {
        case empty
        case connecting(EventLoopFuture<RedisAsyncConnection>)
        case ready(RedisAsyncConnection)
    }

    private let endpoint: RedisEndpoint
    private let timeoutMs: Int
    private let slots: Mutex<[Slot]>
    private let nextSlot = Atomic<Int>(0)
    private let connector = NIOThreadPool(numberOfThreads: 1)

    init(endpoint: RedisEndpoint, count: Int, timeoutMs: Int) {
        self.endpoint = endpoint
        self.timeoutMs = timeoutMs
        slots = Mutex(Array(repeating: .empty, count: max(1, count)))
        connector.start()
    }

    /// The next connection round-robin, made first if needed.
    func connection(on eventLoop: any EventLoop) -> EventLoopFuture<RedisAsyncConnection> {
        enum Step {
            case use(RedisAsyncConnection)
            case wait(EventLoopFuture<RedisAsyncConnection>)
            case connect(Int, EventLoopFuture<RedisAsyncConnection>)
        }
        let step = slots.withLock { slots -> Step in
            let index = nextSlot.add(1, ordering: .relaxed).oldValue % slots.count
            switch slots[index] {
            case .ready(let connection): return .use(connection)
            case .connecting(let pending): return .wait(pending)
            case .empty:
                let (endpoint, timeoutMs) = (self.endpoint, self.timeoutMs)
                let pending = connector.runIfActive(eventLoop: eventLoop) {
                    try RedisAsyncConnection.open(endpoint, timeoutMs: timeoutMs)
                }
                slots[index] = .connecting(pending)
                return .connect(index, pending)
            }
        }
        switch step {
        case .use(let connection): return eventLoop.makeSucceededFuture(connection)
        case .wait(let pending): return pending.hop(to: eventLoop)
        case .connect(let index, let pending):
            // Registered outside the lock: a future that already failed runs this callback at once.
            pending.whenComplete { result in
                self.slots.withLock { slots in
                    guard case .connecting(let current) = slots[index], current === pending else { return }
                    if case .success(let connection) = result {
                        slots[index] = .ready(connection)
                    } else {
                        slots[index] = .empty
                    }
                }
            }
            return pending
        }
    }

    /// Drops a connection that failed, so the next call through its slot makes a new one.
    func discard(_ connection: RedisAsyncConnection) {
        slots.withLock { slots in
            for index in slots.indices {
                if case .ready(let held) = slots[index], held === connection { slots[index] = .empty }
            }
        }
    }

    func shutdown() async {
        try? await connector.shutdownGracefully()
        slots.withLock { slots in slots = slots.map { _ in .empty } }
    }
}
