import Logging
import TenantEdgeCore

/// Keeps a replica's copies in step with a store other replicas write to: new events into the log's
/// window (which wakes the long polls they answer), changed documents into the registry and the
/// ledger. It follows the store's notifications (`OriginStore.changes()`), and reads everything
/// again every `safetySeconds` on the injected clock as well, so a lost notification delays a
/// change by at most that long. Not started for a store no one else writes (SQLite).
final class StoreFollower: Sendable {
    static let safetySeconds = 1.0
    private let tasks: [Task<Void, Never>]

    init?(
        store: any OriginStore, log: InvalidationLog, registry: TenantRegistry, ledger: ErasureLedger,
        clock: any CacheClock, logger: Logger
    ) {
        guard let changes = store.changes() else { return nil }
        @Sendable func apply(_ change: StoreChange) async {
            do throws(EdgeError) {
                switch change {
                case .events: try await log.catchUp()
                case .documents:
                    try await registry.reload()
                    try await ledger.reload()
                case .resync:
                    try await log.catchUp()
                    try await registry.reload()
                    try await ledger.reload()
                }
            } catch {
                logger.warning("could not read the store's changes; trying again", metadata: ["error": "\(error)"])
            }
        }
        tasks = [
            Task {
                for await change in changes { await apply(change) }
            },
            Task {
                while (try? await clock.sleep(seconds: Self.safetySeconds)) != nil { await apply(.resync) }
            },
        ]
    }

    func stop() async {
        for task in tasks { task.cancel() }
        for task in tasks { _ = await task.value }
    }
}
