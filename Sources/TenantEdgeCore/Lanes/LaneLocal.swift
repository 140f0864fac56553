/// One value per worker lane, made on the lane's first use and then used by that lane's thread
/// alone, without a lock: a per-event-loop response buffer or digest memo, say. Threads without a
/// lane get nil from `withValue` and use their caller's shared fallback.
///
/// `@unchecked Sendable`: slot `i` is only ever read or written by the thread that holds lane `i`
/// (`WorkerLane` never hands a lane to two threads).
public final class LaneLocal<Value>: @unchecked Sendable {
    @usableFromInline let slots: UnsafeMutablePointer<Value?>

    public init() {
        slots = .allocate(capacity: WorkerLane.capacity)
        slots.initialize(repeating: nil, count: WorkerLane.capacity)
    }

    deinit {
        slots.deinitialize(count: WorkerLane.capacity)
        slots.deallocate()
    }

    /// Runs `body` on the calling lane's value, making it with `make` first if needed. Nil when the
    /// thread has no lane or `make` fails (the caller falls back to its shared path).
    @inlinable
    public func withValue<Result>(make: () -> Value?, _ body: (inout Value) throws -> Result) rethrows -> Result? {
        guard let lane = WorkerLane.current else { return nil }
        let slot = slots + lane
        if slot.pointee == nil {
            guard let made = make() else { return nil }
            slot.pointee = made
        }
        // Specialised where it is used (inlinable), so a hit pays no generic metadata lookups.
        return try body(&slot.pointee!)
    }
}
