import Foundation
import NIOCore
import ServiceLifecycle
import TenantEdgeHTTP

/// The listeners as a service: on graceful shutdown they stop accepting and finish the requests in
/// flight, for at most `deadlineSeconds`, then close. First in the node's shutdown order.
struct ListenerDrain: Service {
    let listeners: [HTTPListener]
    let deadlineSeconds: Int

    func run() async throws {
        try? await gracefulShutdown()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [listeners] in
                for listener in listeners { try? await listener.drain() }
            }
            group.addTask { [deadlineSeconds] in
                try? await Task.sleep(for: .seconds(deadlineSeconds))
            }
            await group.next()
            group.cancelAll()
        }
        for listener in listeners { await listener.close() }
    }
}

/// The runtime as a service: on graceful shutdown it releases the upstream pool, the Redis tiers
/// and their purge followers, and flushes the audit log. Last in the node's shutdown order.
struct RuntimeShutdown: Service {
    let runtime: EdgeRuntime

    func run() async throws {
        try? await gracefulShutdown()
        await runtime.shutdown()
    }
}

/// Retries the purges that did not reach Redis (`PendingPurges`), every 0.2 s on the injected
/// clock while any tier of the running tenant table has one.
struct PendingPurgeRetries: Service {
    static let interval = 0.2
    let runtime: EdgeRuntime

    func run() async throws {
        await cancelWhenGracefulShutdown { [runtime] in
            while (try? await runtime.clock.sleep(seconds: Self.interval)) != nil {
                for tier in runtime.table.allL2Tiers where tier.hasPendingPurges {
                    await tier.retryPendingPurges(on: runtime.eventLoop)
                }
            }
        }
    }
}
