/// A latency histogram kept per worker lane (`LaneCounters`): recording a request is a bucket
/// search and three adds to its own event loop's memory. Buckets are cumulative only when read.
public final class LaneHistogram: Sendable {
    /// Upper bounds of the buckets, in nanoseconds, ascending (`+Inf` is implied).
    public let bounds: [Int64]
    private let counts: LaneCounters

    /// What a scrape reads: cumulative bucket counts (the last is `+Inf`), the sum and the count.
    public struct Snapshot: Sendable, Equatable {
        public var cumulative: [Int]
        public var sumNanoseconds: Int
        public var count: Int

        /// Several histograms with the same bounds as one (`buckets`: bounds + 1, for none given).
        public static func sum(_ snapshots: [Snapshot], buckets: Int) -> Snapshot {
            var total = Snapshot(cumulative: Array(repeating: 0, count: buckets), sumNanoseconds: 0, count: 0)
            for snapshot in snapshots where snapshot.cumulative.count == buckets {
                for index in 0..<buckets { total.cumulative[index] &+= snapshot.cumulative[index] }
                total.sumNanoseconds &+= snapshot.sumNanoseconds
                total.count &+= snapshot.count
            }
            return total
        }
    }

    /// At most `LaneCounters.maxCount - 3` bounds.
    public init(boundsNanoseconds: [Int64]) {
        precondition(boundsNanoseconds.count <= LaneCounters.maxCount - 3, "too many histogram buckets")
        bounds = boundsNanoseconds.sorted()
        counts = LaneCounters(count: boundsNanoseconds.count + 3)  // buckets, +Inf, sum, count
    }

    @inline(__always)
    public func record(nanoseconds: Int64) {
        let value = max(nanoseconds, 0)
        var bucket = bounds.count
        for index in bounds.indices where value <= bounds[index] {
            bucket = index
            break
        }
        counts.add(bucket)
        counts.add(bounds.count + 1, Int(value))
        counts.add(bounds.count + 2)
    }

    public func snapshot() -> Snapshot {
        var running = 0
        var cumulative: [Int] = []
        for bucket in 0...bounds.count {
            running &+= counts.total(bucket)
            cumulative.append(running)
        }
        return Snapshot(
            cumulative: cumulative, sumNanoseconds: counts.total(bounds.count + 1),
            count: counts.total(bounds.count + 2))
    }
}
