import NIOCore
import Synchronization

/// The `timeout_ms` deadlines of the Redis calls made on one event loop, under one timer.
///
/// A timer per call (`scheduleTask`, then `cancel` when Redis answered) cost an L2 hit about 5,000
/// of its 124,000 instructions: a scheduled task, its promise and future, and a search of the
/// loop's task queue to cancel it (`make bench-instructions`, `TIER=l2`). Here a call is a queue
/// entry; the answer only claims the call's `Once`, and the one timer, armed for the earliest
/// deadline, expires the calls still unclaimed at their deadline and arms itself again. Calls on a
/// connection are answered in order, so claimed calls leave from the front as new ones arrive and
/// the queue holds about the calls in flight.
///
/// Touched only on its event loop.
final class CallDeadlines {
    private struct Pending {
        let deadline: NIODeadline
        let once: Once
        /// Settles the call as timed out (it claims `once` itself).
        let expire: () -> Void
    }

    private let eventLoop: any EventLoop
    private let now: () -> NIODeadline
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var timer: Scheduled<Void>?
    private var armedFor = NIODeadline.distantFuture

    /// `now`: the loop's clock (an `EmbeddedEventLoop`'s in tests).
    init(eventLoop: any EventLoop, now: @escaping () -> NIODeadline = { .now() }) {
        self.eventLoop = eventLoop
        self.now = now
    }

    /// Calls waiting for their answer or their deadline, for tests.
    var count: Int { pending.count }

    /// Expires the call `once` names at `deadline` unless it is claimed first.
    func add(_ deadline: NIODeadline, once: Once, expire: @escaping () -> Void) {
        eventLoop.assertInEventLoop()
        while let first = pending.first, first.once.isClaimed { pending.removeFirst() }
        pending.append(Pending(deadline: deadline, once: once, expire: expire))
        if deadline < armedFor { arm(deadline) }
    }

    private func arm(_ deadline: NIODeadline) {
        timer?.cancel()
        armedFor = deadline
        timer = eventLoop.scheduleTask(deadline: deadline) { [self] in fire() }
    }

    /// Expires the overdue calls, keeps the others, and arms for the earliest of them. The queue is
    /// consistent before any call is expired: an expiry can make another call, which adds itself.
    private func fire() {
        timer = nil
        armedFor = .distantFuture
        let now = self.now()
        var kept = CircularBuffer<Pending>(initialCapacity: max(16, pending.count))
        var overdue: [() -> Void] = []
        var earliest = NIODeadline.distantFuture
        for call in pending where !call.once.isClaimed {
            if call.deadline <= now {
                overdue.append(call.expire)
            } else {
                kept.append(call)
                earliest = min(earliest, call.deadline)
            }
        }
        pending = kept
        if earliest < armedFor { arm(earliest) }
        for expire in overdue { expire() }
    }
}

/// Lets exactly one of a call's outcomes through: its answer, an error, or its deadline.
final class Once: Sendable {
    private let done = Atomic<Bool>(false)
    var isClaimed: Bool { done.load(ordering: .acquiring) }
    func claim() -> Bool {
        done.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}
