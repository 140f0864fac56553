import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// Tells the origin which tenants this node has erased (`POST /v1/erasures/<tenant>`), a `Service`
/// performing what `ErasureConfirmer` decides: send at once, retry with backoff on the injected
/// clock, give up with one warning. Erasures arrive through `confirm(_:)` from the runtime.
package final class ErasureConfirmations: Service, Sendable {
    private let origin: EdgeConfig.Origin
    private let replicas: OriginReplicas
    private let token: String  // never logged
    private let node: String
    private let clock: any CacheClock
    private let logger: Logger
    private let erased: AsyncStream<String>
    private let erasedInput: AsyncStream<String>.Continuation
    private let machine = Mutex(ErasureConfirmer())  // shared by the tenants' tasks

    init(
        origin: EdgeConfig.Origin, replicas: OriginReplicas, node: String, clock: any CacheClock, logger: Logger
    ) throws(EdgeError) {
        self.origin = origin
        self.replicas = replicas
        self.token = try NodeToken.read(origin)
        self.node = node
        self.clock = clock
        self.logger = logger
        (erased, erasedInput) = AsyncStream.makeStream(of: String.self)
    }

    /// Queues `tenant`'s confirmation; callable from any thread.
    func confirm(_ tenant: String) { erasedInput.yield(tenant) }

    package func run() async throws {
        let transfers = try CurlTransferQueue(label: "erasure-confirmations")
        await cancelWhenGracefulShutdown { [self] in
            await withDiscardingTaskGroup { group in
                for await tenant in erased {
                    let first = machine.withLock { $0.erased(tenant: tenant) }
                    group.addTask { await self.follow(first, transfers: transfers) }
                }
                group.cancelAll()
            }
        }
        erasedInput.finish()
    }

    /// Performs one tenant's actions until it is confirmed or given up (or the service stops).
    private func follow(_ first: ErasureConfirmer.Action, transfers: CurlTransferQueue) async {
        var action: ErasureConfirmer.Action? = first
        while let current = action, !Task.isCancelled {
            switch current {
            case .send(let tenant):
                let body = Array(#"{"node":\#(JSONText.quote(node))}"#.utf8)
                let replica = replicas.current
                let status = try? await transfers.request(
                    "POST", "\(replica)/v1/erasures/\(tenant)", body: body, caFile: origin.caFile,
                    headers: ["Authorization: Bearer \(token)", "Content-Type: application/json"]
                ).status
                if OriginReplicas.isReplicaFailure(status, accepted: [200, 404]) { replicas.failed(replica) }
                action = machine.withLock { $0.answered(tenant: tenant, status: status) }
            case .retry(let tenant, let seconds):
                do { try await clock.sleep(seconds: seconds) } catch { return }
                action = machine.withLock { $0.waited(tenant: tenant) }
            case .confirmed:
                action = nil
            case .giveUp(let tenant, let attempts):
                logger.warning(
                    "the origin did not take the erasure confirmation",
                    metadata: ["tenant": "\(tenant)", "attempts": "\(attempts)"])
                action = nil
            }
        }
    }
}
