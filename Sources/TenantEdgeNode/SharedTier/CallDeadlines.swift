import NIOCore
import Synchronization

/// The `timeout_ms` deadlines of the Redis calls made on one event loop, under one timer.
///
/// A timer per call (`scheduleTask`, then `cancel` when Redis answered) cost an L2 hit about 5,000
/// of its 124,000 instructions: a scheduled task, its promise and future, and a search of the
/// loop's task queue to cancel it (`make bench-instructions`, `TIER=l2`; decision 71). Here a call
/// is a queue entry; its answer only claims the call's `Once`, and the one timer, armed for the
/// earliest deadline, expires the calls still unclaimed at their deadline and arms itself again.
///
/// Every operation is amortised O(1) a call, whatever Redis does:
/// - calls share one `timeout_ms`, so deadlines rise in the order calls arrive and the timer takes
///   overdue calls from the front (a stalled Redis with thousands in flight costs no rescan of
///   them all at each deadline); a deadline earlier than the last one queued (a request's second
///   call, with what is left of its time) waits in `early`, scanned whole at each firing;
/// - answered calls leave from the front as new ones arrive; when an unanswered call at the front
///   holds answered ones behind it (a slow connection among several), the queue is swept once it
///   doubles, so it holds about the calls in flight, not a `timeout_ms` of every call made.
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
    /// Runs once after a firing expired any call (closes connections that stalled).
    private let afterExpiring: () -> Void
    private var inOrder = CircularBuffer<Pending>(initialCapacity: 16)
    private var early: [Pending] = []
    /// Sizes after the last sweep: a queue twice as long is swept of answered calls.
    private var sweptSizes = (inOrder: 0, early: 0)
    private var timer: Scheduled<Void>?
    private var armedFor = NIODeadline.distantFuture
    /// Which arming a firing belongs to: one cancelled too late to stop it (NIO runs a task it has
    /// already taken from its queue) does nothing.
    private var arming: UInt64 = 0

    /// `now`: the loop's clock (an `EmbeddedEventLoop`'s in tests).
    init(
        eventLoop: any EventLoop, now: @escaping () -> NIODeadline = { .now() },
        afterExpiring: @escaping () -> Void = {}
    ) {
        self.eventLoop = eventLoop
        self.now = now
        self.afterExpiring = afterExpiring
    }

    /// Calls waiting for their answer or their deadline (answered ones not yet swept included).
    var count: Int { inOrder.count + early.count }

    /// Expires the call `once` names at `deadline` unless it is claimed first.
    func add(_ deadline: NIODeadline, once: Once, expire: @escaping () -> Void) {
        eventLoop.assertInEventLoop()
        while let first = inOrder.first, first.once.isClaimed { inOrder.removeFirst() }
        let call = Pending(deadline: deadline, once: once, expire: expire)
        if let last = inOrder.last, deadline < last.deadline {
            early.append(call)
            if early.count > 2 * sweptSizes.early + 16 {
                early.removeAll { $0.once.isClaimed }
                sweptSizes.early = early.count
            }
        } else {
            inOrder.append(call)
            if inOrder.count > 2 * sweptSizes.inOrder + 64 { sweepAnswered() }
        }
        if deadline < armedFor { arm(deadline) }
    }

    private func sweepAnswered() {
        var kept = CircularBuffer<Pending>(initialCapacity: inOrder.count)
        for call in inOrder where !call.once.isClaimed { kept.append(call) }
        inOrder = kept
        sweptSizes.inOrder = inOrder.count
    }

    private func arm(_ deadline: NIODeadline) {
        timer?.cancel()
        armedFor = deadline
        arming &+= 1
        let current = arming
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in fire(current) }
    }

    /// Expires the overdue calls and arms for the earliest left. The queues are consistent before
    /// any call is expired: an expiry can make another call, which adds itself.
    private func fire(_ which: UInt64) {
        guard which == arming else { return }
        timer = nil
        armedFor = .distantFuture
        let now = self.now()
        var overdue: [() -> Void] = []
        while let first = inOrder.first, first.once.isClaimed || first.deadline <= now {
            let call = inOrder.removeFirst()
            if !call.once.isClaimed { overdue.append(call.expire) }
        }
        var earliest = inOrder.first?.deadline ?? .distantFuture
        if !early.isEmpty {
            var kept: [Pending] = []
            for call in early where !call.once.isClaimed {
                if call.deadline <= now {
                    overdue.append(call.expire)
                } else {
                    kept.append(call)
                    earliest = min(earliest, call.deadline)
                }
            }
            early = kept
            sweptSizes.early = kept.count
        }
        sweptSizes.inOrder = min(sweptSizes.inOrder, inOrder.count)
        if earliest < armedFor { arm(earliest) }
        for expire in overdue { expire() }
        if !overdue.isEmpty { afterExpiring() }
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
