import NIOCore

/// The one deadline a connection waits against (a request head, an idle keep-alive, a stalled
/// write). Moving it is an assignment: one task is scheduled at a time and, when it fires before
/// the deadline (the deadline moved on meanwhile), it is scheduled again for the rest. Scheduling a
/// task per request cost a third of the hit path's throughput (measured with `wrk`, issue 11).
/// Bound to its channel's event loop; time is the loop's own (`EventLoop.now`), so a test on an
/// `EmbeddedEventLoop` moves it with `advanceTime`.
package final class MovingDeadline {
    private var deadline = NIODeadline.distantFuture
    private var task: Scheduled<Void>?
    private var taskFiresAt = NIODeadline.distantFuture
    private var armed = false
    /// Runs when an armed deadline passes unmoved. Set once (a closure made per move would be an
    /// allocation per request); `stop()` lets go of it, and of what it captures.
    package var expired: (() -> Void)?

    /// Sets the deadline `period` from now; `expired` runs once it passes without another move.
    package func move(after period: TimeAmount, on loop: any EventLoop) {
        armed = true
        deadline = loop.now + period
        guard task == nil || taskFiresAt > deadline else { return }  // the pending task fires first and re-checks
        task?.cancel()
        schedule(on: loop)
    }

    /// Nothing to wait for until the next move (a response is being made).
    package func clear() { armed = false }

    /// No more moves: the pending task is cancelled and the callback let go.
    package func stop() {
        armed = false
        expired = nil
        task?.cancel()
        task = nil
    }

    private func schedule(on loop: any EventLoop) {
        taskFiresAt = deadline
        task = loop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            task = nil
            guard armed else { return }
            if deadline > loop.now {
                schedule(on: loop)  // moved on since: wait for the rest
            } else {
                armed = false
                expired?()
            }
        }
    }
}
