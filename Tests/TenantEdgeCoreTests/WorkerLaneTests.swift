import Dispatch
import Testing

@testable import TenantEdgeCore

/// Per-lane state (counters, histograms) must add up to exactly what every thread counted, whether
/// it held a lane or used the shared fallback, and lanes are never shared between threads.
@Suite struct WorkerLaneTests {
    @Test func aLaneIsTheThreadsOwnAndStable() {
        let lanes = DispatchQueue(label: "lane-test").sync { () -> (Int?, Int?, Int?) in
            let first = WorkerLane.claim()
            return (first, WorkerLane.claim(), WorkerLane.current)
        }
        #expect(lanes.0 != nil)
        #expect(lanes.0 == lanes.1 && lanes.1 == lanes.2, "claiming again keeps the thread's lane")
    }

    @Test func countersSumOverLanesAndTheSharedFallback() {
        let counters = LaneCounters(count: 3)
        // Eight workers; half claim a lane (per-lane blocks), half do not (the shared atomic block).
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            if worker % 2 == 0 { WorkerLane.claim() }
            for _ in 0..<10_000 { counters.add(worker % 3) }
            counters.add(2, 5)
        }
        let expected = (0..<8).reduce(into: [0, 0, 0]) { sums, worker in
            sums[worker % 3] += 10_000
            sums[2] += 5
        }
        #expect(counters.totals() == expected)
        counters.add(7)  // out of range: ignored, never a trap
        counters.add(-1)
        #expect(counters.totals() == expected)
        #expect(counters.total(9) == 0)
    }

    @Test func histogramBucketsAreCumulativeWithSumAndCount() {
        let histogram = LaneHistogram(boundsNanoseconds: [1_000, 10_000, 100_000])
        for value: Int64 in [500, 1_000, 5_000, 50_000, 500_000, -3] { histogram.record(nanoseconds: value) }
        let snapshot = histogram.snapshot()
        // ≤1 µs: 500, 1000 and the negative one (as 0); ≤10 µs adds 5000; ≤100 µs adds 50000; +Inf all.
        #expect(snapshot.cumulative == [3, 4, 5, 6])
        #expect(snapshot.count == 6)
        #expect(snapshot.sumNanoseconds == 500 + 1_000 + 5_000 + 50_000 + 500_000)
    }

    @Test func laneLocalValuesBelongToOneLaneEach() {
        let values = LaneLocal<Int>()
        let seen = DispatchQueue(label: "lane-local").sync { () -> (Int?, Int?) in
            WorkerLane.claim()
            let made = values.withValue(make: { 41 }) { value -> Int in
                value += 1
                return value
            }
            let again = values.withValue(make: { 0 }) { $0 }  // made once: the lane's value is kept
            return (made, again)
        }
        #expect(seen.0 == 42 && seen.1 == 42)
    }
}
