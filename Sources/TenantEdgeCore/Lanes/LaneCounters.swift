import Synchronization

/// A fixed set of counters kept per worker lane and summed when read, so counting a hit writes
/// only memory its own event loop owns: no lock and no cache line bouncing between cores. Threads
/// without a lane add to one shared block with atomic read-modify-writes.
public final class LaneCounters: Sendable {
    /// Most counters one set holds (a request-duration histogram needs 19).
    public static let maxCount = 24

    /// One lane's counters. Written by that lane's thread alone (a relaxed load and store, which is
    /// a plain add on x86 and arm64), read by whoever sums them; the padding keeps two lanes' blocks
    /// from sharing a cache line.
    final class Block: Sendable {
        let values: InlineArray<24, Atomic<Int>> = InlineArray { _ in Atomic(0) }
        private let padding: InlineArray<8, Int> = InlineArray(repeating: 0)

        @inline(__always)
        func addAsOwner(_ index: Int, _ amount: Int) {
            values[index].store(values[index].load(ordering: .relaxed) &+ amount, ordering: .relaxed)
        }
    }

    public let count: Int
    /// Each lane's block, made on the lane's first add and published with a release store (the
    /// address of a retained `Block`, 0 until made), so a reader on another thread sees it whole.
    private let lanes: InlineArray<64, Atomic<UInt>> = InlineArray { _ in Atomic(0) }
    private let shared = Block()

    /// `count` counters (at most `maxCount`).
    public init(count: Int) {
        precondition(count > 0 && count <= Self.maxCount, "LaneCounters holds 1...\(Self.maxCount) counters")
        precondition(WorkerLane.capacity <= 64, "LaneCounters has room for 64 lanes")
        self.count = count
    }

    deinit {
        for lane in 0..<WorkerLane.capacity {
            if let block = block(at: lane) { Unmanaged.passUnretained(block).release() }
        }
    }

    private func block(at lane: Int) -> Block? {
        let bits = lanes[lane].load(ordering: .acquiring)
        guard let pointer = UnsafeRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged<Block>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Adds `amount` to counter `index` (0..<count; anything else is ignored).
    @inline(__always)
    public func add(_ index: Int, _ amount: Int = 1) {
        guard index >= 0, index < count else { return }
        guard let lane = WorkerLane.current else {
            shared.values[index].add(amount, ordering: .relaxed)
            return
        }
        if let block = block(at: lane) {
            block.addAsOwner(index, amount)
            return
        }
        let made = Block()
        made.addAsOwner(index, amount)
        // Only this lane's thread ever stores to its slot, and only this once.
        lanes[lane].store(UInt(bitPattern: Unmanaged.passRetained(made).toOpaque()), ordering: .releasing)
    }

    /// Counter `index` summed over every lane.
    public func total(_ index: Int) -> Int {
        guard index >= 0, index < count else { return 0 }
        var sum = shared.values[index].load(ordering: .relaxed)
        for lane in 0..<WorkerLane.capacity {
            if let block = block(at: lane) { sum &+= block.values[index].load(ordering: .relaxed) }
        }
        return sum
    }

    /// Every counter summed over every lane.
    public func totals() -> [Int] { (0..<count).map(total) }
}
