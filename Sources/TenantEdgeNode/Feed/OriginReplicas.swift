import Synchronization
import TenantEdgeCore

/// The origin replicas a node follows (`origin.urls`), and which one it uses now. A call that
/// meets a connection error or an answer it does not expect (a `5xx`, a `401`) moves every caller
/// on to the next replica (round the list),
/// so the feed, bundle pulls and erasure confirmations all leave a replica that died. Nothing else
/// moves: the cursor is the node's own and sequence numbers are the shared store's, so resuming on
/// another replica loses no event and applies none twice.
final class OriginReplicas: Sendable {
    let urls: [String]
    private let index = Atomic<Int>(0)

    /// `urls`: validated, never empty (`EdgeConfig.Origin.replicas`).
    init(_ urls: [String]) { self.urls = urls.isEmpty ? [""] : urls }

    /// The replica to use now.
    var current: String { urls[index.load(ordering: .relaxed) % urls.count] }

    /// Moves on from `url` when it is still the current one (several callers failing at once move
    /// one step, not one each); true when a move happened.
    @discardableResult
    func failed(_ url: String) -> Bool {
        guard urls.count > 1 else { return false }
        let now = index.load(ordering: .relaxed)
        guard urls[now % urls.count] == url else { return false }
        return index.compareExchange(expected: now, desired: (now + 1) % urls.count, ordering: .relaxed).exchanged
    }

    /// Whether an answer of `status` (nil: no answer) should send callers to another replica: no
    /// answer, or any status the call does not expect (`accepted`). A replica that answers `401`
    /// for ever (its token list drifted) or `3xx` is as useless as one that is down; if every
    /// replica answers so, the node goes round them, which costs nothing more than staying.
    static func isReplicaFailure(_ status: Int?, accepted: Set<Int>) -> Bool {
        status.map { !accepted.contains($0) } ?? true
    }
}
