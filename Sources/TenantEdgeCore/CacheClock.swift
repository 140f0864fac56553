import Foundation
import Synchronization

/// Wall-clock time in seconds since the Unix epoch, injected wherever freshness, ages or lags are
/// computed and wherever background work waits (backoffs, retries, intervals), so tests move time
/// instead of sleeping.
public protocol CacheClock: Sendable {
    func now() -> Double
    /// Returns once `seconds` have passed on this clock; throws `CancellationError` when the task is
    /// cancelled first.
    func sleep(seconds: Double) async throws
}

extension CacheClock {
    public func sleep(seconds: Double) async throws {
        try await Task.sleep(for: .milliseconds(Int64(max(0, min(seconds, 86_400)) * 1000)))
    }
}

/// The real clock: one `SteadyWallClock` for the whole process, so every part agrees on the time.
public struct SystemCacheClock: CacheClock {
    private static let shared = SteadyWallClock()
    public init() {}
    public func now() -> Double { Self.shared.now() }
    /// Seconds the system clock stands behind this one after a backward step it did not follow.
    public var wallBehind: Double { Self.shared.wallBehind }
}

/// A clock that only moves when told to; for tests of TTLs, staleness and backoffs. A sleeper
/// wakes when `advance` passes its deadline, never on its own.
public final class ManualCacheClock: CacheClock {
    private struct Sleeper {
        var deadline: Double
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Double
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    private let state: Mutex<State>  // protects the current instant and the sleepers

    public init(_ start: Double = 1_700_000_000) { state = Mutex(State(now: start)) }
    public func now() -> Double { state.withLock { $0.now } }

    /// Tasks waiting on this clock (for tests that advance only once a sleeper is there).
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    public func advance(by seconds: Double) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now += seconds
            let now = state.now
            let ready = state.sleepers.filter { $0.value.deadline <= now }
            for id in ready.keys { state.sleepers[id] = nil }
            return ready.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    public func sleep(seconds: Double) async throws {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate = state.withLock { state -> (any Error)?? in
                    if Task.isCancelled { return .some(CancellationError()) }
                    if seconds <= 0 { return .some(nil) }
                    state.sleepers[id] = Sleeper(deadline: state.now + seconds, continuation: continuation)
                    return .none
                }
                switch immediate {
                case .some(.some(let error)): continuation.resume(throwing: error)
                case .some(.none): continuation.resume()
                case .none: break
                }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}
