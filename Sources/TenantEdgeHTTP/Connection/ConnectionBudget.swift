import NIOCore
import Synchronization

/// Open connections of one listener, against `limits.max_connections`: a connection over the cap is
/// closed as it is accepted, before any handler or buffer is set up for it.
package final class ConnectionBudget: Sendable {
    private let open = Atomic<Int>(0)
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    /// Takes a place for `channel`, given back when it closes; false when the listener is full.
    package func admit(_ channel: any Channel) -> Bool {
        guard open.add(1, ordering: .relaxed).newValue <= limit else {
            open.subtract(1, ordering: .relaxed)
            return false
        }
        channel.closeFuture.whenComplete { _ in self.open.subtract(1, ordering: .relaxed) }
        return true
    }

    package var count: Int { open.load(ordering: .relaxed) }
}
